"""``LearningCurve``: an agent's progress on the *true* reward, saved as JSON or CSV on the artifact layer.

A saved curve carries the artifact header of :mod:`rewardshare.artifacts` (format ``rewardshare.learning_curve``,
version :data:`CURVE_FORMAT_VERSION`, kind, software versions, the curve's metadata as provenance), sealed by a
checksum; the header also records the number of evaluations and the SHA-256 of the column values, so an edited or
truncated curve is refused with the reason, and a curve of a newer format with both version numbers. In a JSON file
the header's keys sit beside ``"columns"``; a CSV file starts with one ``# {header}`` line. Version 1 files
(rewardshare 0.1: no checksums, metadata under ``"metadata"``) are still read.
"""

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
from rewardshare.artifacts import (
    MAX_JSON_BYTES,
    ArtifactFormat,
    canonical_json,
    check_seal,
    read_limited,
    seal,
    sha256_hex,
)
from rewardshare.errors import (
    ArtifactError,
    CorruptArtifactError,
    IncompatibleArtifactError,
    InvalidArgumentError,
)

CURVE_FORMAT = "rewardshare.learning_curve"
CURVE_FORMAT_VERSION = 2
CURVE_KIND = "learning_curve"
#: The learning-curve artifact: version 2 is sealed; version 1 (rewardshare 0.1) is still read.
FORMAT = ArtifactFormat(CURVE_FORMAT, CURVE_FORMAT_VERSION, oldest=1, label="learning curve")
#: The per-evaluation columns, in file order.
COLUMNS: tuple[str, ...] = (
    "timesteps", "success_rate", "true_return", "true_return_std", "learned_return", "episode_length", "wall_time",
)
#: Columns that depend on the machine's speed rather than on the run (excluded by :meth:`LearningCurve.same_values`).
TIMING_COLUMNS: tuple[str, ...] = ("wall_time",)

#: What rewardshare 0.1 raised for a bad curve file: now another name of :class:`~rewardshare.errors.ArtifactError`,
#: so ``except CurveFormatError`` still catches every problem of a curve file (incompatible or corrupt).
CurveFormatError = ArtifactError


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
    def _columns(self) -> dict[str, list[Any]]:
        """The columns as JSON holds them (NaN as ``null``): what the checksum is taken over."""
        return {c: [_json_float(v) for v in getattr(self, c)] for c in COLUMNS}

    def header(self) -> dict[str, Any]:
        """The sealed artifact header (:mod:`rewardshare.artifacts`): format, version, kind, software versions,
        provenance (:attr:`metadata`), the number of evaluations and the SHA-256 of the columns.

        Raises:
            NotJSONError: If :attr:`metadata` is not JSON-serialisable (NaN included).
        """
        digest = sha256_hex(canonical_json(self._columns()))
        return seal(FORMAT.header(CURVE_KIND, self.metadata, n_evaluations=len(self), columns_sha256=digest))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the sealed header and the columns (NaN as ``null``)."""
        return {**self.header(), "columns": self._columns()}

    def save(self, path: str | Path) -> Path:
        """Write the curve atomically: ``.json`` (header + columns) or ``.csv`` (a ``#`` line with the JSON header,
        then one row per evaluation).

        Raises:
            ValueError: On another file suffix.
            NotJSONError: If :attr:`metadata` is not JSON-serialisable (nothing is written).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            atomic_write_json(path, self.to_dict(), allow_nan=False)
        elif suffix == ".csv":
            buf = io.StringIO()
            buf.write("# " + json.dumps(self.header(), allow_nan=False) + "\n")
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(COLUMNS)
            for i in range(len(self)):
                writer.writerow([repr(getattr(self, c)[i]) for c in COLUMNS])
            atomic_write_text(path, buf.getvalue())
        else:
            raise InvalidArgumentError(f"path={str(path)!r} is not allowed: use a .json or .csv file name")
        return path

    @staticmethod
    def _check_header(header: Any, path: object) -> tuple[int, dict[str, Any]]:
        """The header's format version and provenance, after the format, version, kind and seal checks."""
        version = FORMAT.check(header, path)
        if version >= 2:
            if header.get("kind") != CURVE_KIND:
                raise IncompatibleArtifactError(f"{path}: holds a {header.get('kind')!r}, not a {CURVE_KIND!r}")
            check_seal(header, path)
        meta = header.get("provenance" if version >= 2 else "metadata", {})
        if not isinstance(meta, dict):
            raise CorruptArtifactError(f"{path}: the curve's metadata is not a JSON object")
        return version, meta

    @classmethod
    def _build(cls, values: dict[str, list[Any]], header: dict[str, Any], version: int, meta: dict[str, Any],
               path: object) -> LearningCurve:
        """The curve from parsed column values, after the row count and column checksum checks (version 2)."""
        try:
            values = {c: [math.nan if v is None else float(v) for v in values[c]] for c in COLUMNS}
            if not all(math.isfinite(t) and t == int(t) for t in values["timesteps"]):
                raise ValueError("timesteps must be whole numbers")
            curve = cls(**{**values, "timesteps": [int(t) for t in values["timesteps"]]}, metadata=meta)
        except (TypeError, ValueError) as err:
            raise CorruptArtifactError(f"{path}: the columns are damaged ({err})") from err
        if version >= 2:
            if header.get("n_evaluations") != len(curve):
                raise CorruptArtifactError(f"{path}: {len(curve)} evaluations, but {header.get('n_evaluations')!r} "
                                           "were saved: the file is truncated or was edited")
            digest = sha256_hex(canonical_json(curve._columns()))
            if header.get("columns_sha256") != digest:
                raise CorruptArtifactError(f"{path}: the columns' checksum does not match the header "
                                           f"({digest[:12]}... vs {str(header.get('columns_sha256'))[:12]}...): the "
                                           "values were edited or damaged after the curve was saved")
        return curve

    @classmethod
    def from_dict(cls, data: Any, path: str | Path = "<dict>") -> LearningCurve:
        """Inverse of :meth:`to_dict` (also reads version 1, rewardshare 0.1's unsealed layout).

        Raises:
            IncompatibleArtifactError: Not a learning curve, or a format version newer than this package reads (the
                message gives both version numbers).
            CorruptArtifactError: A header, column or checksum that does not match (edited or damaged).
        """
        header = {k: v for k, v in data.items() if k != "columns"} if isinstance(data, dict) else data
        version, meta = cls._check_header(header, path)
        cols = data.get("columns")
        if not isinstance(cols, dict) or set(cols) != set(COLUMNS) or not all(isinstance(v, list)
                                                                              for v in cols.values()):
            raise CorruptArtifactError(f"{path}: the columns must be exactly {COLUMNS}, each a list")
        return cls._build(cols, header, version, meta, path)

    @classmethod
    def load(cls, path: str | Path, max_bytes: int = MAX_JSON_BYTES) -> LearningCurve:
        """Read a curve written by :meth:`save` (``.json`` or ``.csv``; version 1 files of rewardshare 0.1 too).

        Args:
            path: The file.
            max_bytes: Largest file accepted (checked before it is read).

        Raises:
            FileNotFoundError: If the file does not exist.
            IncompatibleArtifactError: Not a learning curve, or a format version newer than this package reads (the
                message gives both version numbers).
            CorruptArtifactError: Not valid JSON/CSV, over ``max_bytes``, or a header, column or checksum that does
                not match (the message says which).
        """
        path = Path(path)
        raw = read_limited(path, max_bytes, "learning curve")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptArtifactError(f"{path}: not a text file ({err})") from err
        if path.suffix.lower() != ".csv":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise CorruptArtifactError(f"{path}: not JSON ({err})") from err
            return cls.from_dict(data, path)
        first, _, rest = text.partition("\n")
        if not first.startswith("# "):
            raise IncompatibleArtifactError(f"{path}: not a rewardshare learning curve (no '# ' header line)")
        try:
            header = json.loads(first[2:])
        except json.JSONDecodeError as err:
            raise CorruptArtifactError(f"{path}: the header line is not JSON ({err})") from err
        version, meta = cls._check_header(header, path)
        rows = list(csv.reader(io.StringIO(rest)))
        if not rows or tuple(rows[0]) != COLUMNS:
            raise CorruptArtifactError(f"{path}: the CSV columns must be exactly {COLUMNS}")
        values: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        for i, row in enumerate(rows[1:], start=3):
            if len(row) != len(COLUMNS):
                raise CorruptArtifactError(f"{path}: line {i} has {len(row)} fields, expected {len(COLUMNS)}")
            for c, v in zip(COLUMNS, row, strict=True):
                values[c].append(v)
        return cls._build(values, header, version, meta, path)
