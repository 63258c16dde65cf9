"""``LearningCurve``: an agent's progress on the *true* reward, saved as JSON or CSV with its provenance."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare._atomic import atomic_write_json, atomic_write_text
from rewardshare._version import __version__

CURVE_FORMAT = "rewardshare.learning_curve"
CURVE_FORMAT_VERSION = 1
#: The per-evaluation columns, in file order.
COLUMNS: tuple[str, ...] = (
    "timesteps", "success_rate", "true_return", "true_return_std", "learned_return", "episode_length", "wall_time",
)
#: Columns that depend on the machine's speed rather than on the run (excluded by :meth:`LearningCurve.same_values`).
TIMING_COLUMNS: tuple[str, ...] = ("wall_time",)


class CurveFormatError(ValueError):
    """A file is not a learning curve of a supported format version."""


def _json_float(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


@dataclass
class LearningCurve:
    """Evaluations of one training run, on separate eval envs with the true reward.

    Attributes:
        timesteps: Env steps taken by the agent (over all training sub-envs) at each evaluation, int ``(E,)``.
        success_rate: Fraction of eval episodes that reached the goal (``info["is_success"]``); NaN for envs that
            report no success.
        true_return: Mean undiscounted return of the eval episodes under the env's own reward.
        true_return_std: Standard deviation of those returns.
        learned_return: Mean return of the same episodes under the reward the agent was trained on (the reward
            source's raw output, before normalisation/scaling; equals ``true_return`` for ``reward="true"``).
        episode_length: Mean eval episode length.
        wall_time: Seconds of training (evaluation time excluded) when the evaluation ran.
        metadata: Provenance: algorithm, reward, env/task, seed, hyperparameters, versions.
    """

    timesteps: list[int] = field(default_factory=list)
    success_rate: list[float] = field(default_factory=list)
    true_return: list[float] = field(default_factory=list)
    true_return_std: list[float] = field(default_factory=list)
    learned_return: list[float] = field(default_factory=list)
    episode_length: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {c: len(getattr(self, c)) for c in COLUMNS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"learning curve columns have different lengths: {lengths}")

    def __len__(self) -> int:
        return len(self.timesteps)

    def append(self, **values: float) -> None:
        """Add one evaluation (every column of :data:`COLUMNS` by keyword)."""
        missing = set(COLUMNS) - set(values)
        extra = set(values) - set(COLUMNS)
        if missing or extra:
            raise ValueError(f"append() needs exactly the columns {COLUMNS}; missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        for c in COLUMNS:
            v = values[c]
            getattr(self, c).append(int(v) if c == "timesteps" else float(v))

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Each column as a numpy array (``timesteps`` int64, the rest float64)."""
        return {c: np.asarray(getattr(self, c), dtype=np.int64 if c == "timesteps" else np.float64) for c in COLUMNS}

    @property
    def final_success_rate(self) -> float:
        """The last evaluation's success rate (NaN for an empty curve)."""
        return self.success_rate[-1] if self.success_rate else math.nan

    def timesteps_to(self, success_rate: float = 0.9) -> int | None:
        """The first evaluated timestep whose success rate is at least ``success_rate`` (``None`` if never)."""
        for t, s in zip(self.timesteps, self.success_rate, strict=True):
            if s >= success_rate:
                return t
        return None

    def same_values(self, other: LearningCurve) -> bool:
        """Whether two curves agree in every column except wall time (NaN equals NaN): the determinism check."""
        cols = [c for c in COLUMNS if c not in TIMING_COLUMNS]
        return all(
            np.array_equal(self.as_arrays()[c], other.as_arrays()[c], equal_nan=True) for c in cols
        )

    # -- persistence ----------------------------------------------------------------------------------------------
    def _header(self) -> dict[str, Any]:
        return {
            "format": CURVE_FORMAT, "format_version": CURVE_FORMAT_VERSION,
            "rewardshare_version": __version__, "metadata": self.metadata,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the header (format, version, metadata) and the columns (NaN as ``null``)."""
        cols = {c: [_json_float(v) for v in getattr(self, c)] for c in COLUMNS}
        return {**self._header(), "columns": cols}

    def save(self, path: str | Path) -> Path:
        """Write the curve atomically: ``.json`` (header + columns) or ``.csv`` (a ``#`` header line with the JSON
        header, then one row per evaluation).

        Raises:
            ValueError: On another file suffix.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            atomic_write_json(path, self.to_dict(), allow_nan=False)
        elif suffix == ".csv":
            buf = io.StringIO()
            buf.write("# " + json.dumps(self._header(), allow_nan=False) + "\n")
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(COLUMNS)
            for i in range(len(self)):
                writer.writerow([repr(getattr(self, c)[i]) for c in COLUMNS])
            atomic_write_text(path, buf.getvalue())
        else:
            raise ValueError(f"path={str(path)!r} is not allowed: use a .json or .csv file name")
        return path

    @classmethod
    def _check_header(cls, header: Any, path: Path) -> dict[str, Any]:
        if not isinstance(header, dict) or header.get("format") != CURVE_FORMAT:
            raise CurveFormatError(f"{path}: not a rewardshare learning curve (no format={CURVE_FORMAT!r} header)")
        version = header.get("format_version")
        if version != CURVE_FORMAT_VERSION:
            raise CurveFormatError(
                f"{path}: learning curve format_version={version!r}; this rewardshare ({__version__}) reads version "
                f"{CURVE_FORMAT_VERSION}"
            )
        meta = header.get("metadata", {})
        if not isinstance(meta, dict):
            raise CurveFormatError(f"{path}: metadata must be a JSON object")
        return meta

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path = "<dict>") -> LearningCurve:
        """Inverse of :meth:`to_dict`.

        Raises:
            CurveFormatError: If the format or version is not supported, or columns are missing.
        """
        meta = cls._check_header(data, Path(path))
        cols = data.get("columns")
        if not isinstance(cols, dict) or set(cols) != set(COLUMNS):
            raise CurveFormatError(f"{path}: the columns must be exactly {COLUMNS}")
        values = {c: [math.nan if v is None else v for v in cols[c]] for c in COLUMNS}
        values["timesteps"] = [int(v) for v in values["timesteps"]]
        try:
            return cls(**values, metadata=meta)
        except ValueError as err:
            raise CurveFormatError(f"{path}: {err}") from err

    @classmethod
    def load(cls, path: str | Path) -> LearningCurve:
        """Read a curve written by :meth:`save` (``.json`` or ``.csv``).

        Raises:
            CurveFormatError: If the file is not a learning curve of a supported version.
            FileNotFoundError: If the file does not exist.
        """
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".csv":
            first, _, rest = text.partition("\n")
            if not first.startswith("# "):
                raise CurveFormatError(f"{path}: not a rewardshare learning curve (no '# ' header line)")
            try:
                header = json.loads(first[2:])
            except json.JSONDecodeError as err:
                raise CurveFormatError(f"{path}: the header line is not JSON ({err})") from err
            meta = cls._check_header(header, path)
            rows = list(csv.reader(io.StringIO(rest)))
            if not rows or tuple(rows[0]) != COLUMNS:
                raise CurveFormatError(f"{path}: the CSV columns must be exactly {COLUMNS}")
            values: dict[str, list] = {c: [] for c in COLUMNS}
            for row in rows[1:]:
                if len(row) != len(COLUMNS):
                    raise CurveFormatError(f"{path}: a row has {len(row)} fields, expected {len(COLUMNS)}")
                for c, v in zip(COLUMNS, row, strict=True):
                    values[c].append(int(v) if c == "timesteps" else float(v))
            return cls(**values, metadata=meta)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CurveFormatError(f"{path}: not JSON ({err})") from err
        return cls.from_dict(data, path)
