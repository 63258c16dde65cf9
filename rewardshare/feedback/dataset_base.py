"""The base of the feedback datasets (:mod:`rewardshare.feedback.datasets` holds the three kinds).

Each dataset is a set of numpy arrays plus a JSON-ready ``metadata`` dict (provenance). They share the same
operations: ``len()``, :meth:`~FeedbackDataset.select`, :meth:`~FeedbackDataset.subsample`,
:meth:`~FeedbackDataset.split`, :meth:`~FeedbackDataset.concatenate`, :meth:`~FeedbackDataset.by_task`,
:meth:`~FeedbackDataset.save` and :meth:`~FeedbackDataset.load`; :func:`load_dataset` opens any of them.

File format: see :mod:`rewardshare.feedback.dataset_io` (an ``.npz`` archive of the arrays plus a sealed JSON header
with format version, kind, software versions, provenance and a SHA-256 per array). Collected datasets carry as
provenance (``metadata``): ``env_id``, ``env_kwargs``, ``tasks`` (task dicts), ``teachers`` (teacher configs),
``coverage``, ``seed``, ``budget_spent`` and, for derived datasets, ``history``. Loading checks sizes and shapes
before decompressing, then format, version, kind, checksums and the schema; a file that fails any check raises
:class:`~rewardshare.errors.IncompatibleArtifactError` or :class:`~rewardshare.errors.CorruptArtifactError` (both
a :class:`DatasetFormatError`, a ``ValueError``) naming the file and the reason.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from rewardshare.artifacts import MAX_DATASET_BYTES
from rewardshare.errors import (
    CorruptArtifactError,
    DatasetFormatError,
    IncompatibleArtifactError,
    InvalidArgumentError,
)
from rewardshare.feedback import dataset_io
from rewardshare.feedback.dataset_io import FORMAT_VERSION

D = TypeVar("D", bound="FeedbackDataset")
#: kind name -> class, filled as the kinds are defined (see ``FeedbackDataset.__init_subclass__``)
_KINDS: dict[str, type[FeedbackDataset]] = {}


# -- field specs -----------------------------------------------------------------------------------------------------
# per field: (dtype, trailing shape); "obs" stands for the observation shape, "L" for the segment length
_OBS = "obs"


def step_specs(*lead: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The specs of the fields every kind stores per step (``lead``: the leading axes, e.g. ``("N", "L")``)."""
    return {
        "obs": ("float32", (*lead, _OBS)),
        "action": ("int64", lead),
        "next_obs": ("float32", (*lead, _OBS)),
        "done": ("bool", lead),
        "agent_pos": ("int64", (*lead, 2)),
        "next_agent_pos": ("int64", (*lead, 2)),
    }


def _as_array(name: str, value: Any, dtype: np.dtype | str) -> np.ndarray:
    """Convert to the field's dtype, refusing lossy kinds (floats for ints, numbers for strings)."""
    arr = np.asarray(value)
    want = np.dtype(dtype)
    if want.kind == "U":
        if arr.size and arr.dtype.kind not in ("U", "O"):
            raise TypeError(f"{name} has dtype {arr.dtype}: use strings (numpy unicode)")
        if arr.dtype.kind == "O" and not all(isinstance(v, str) for v in arr.reshape(-1)):
            raise TypeError(f"{name} holds non-string objects: use strings")
        return arr.astype(str) if arr.size else np.zeros(arr.shape, dtype="<U1")
    if want.kind in "iu" and arr.size and arr.dtype.kind not in "iub":
        raise TypeError(f"{name} has dtype {arr.dtype}: use an integer array")
    if want.kind == "b" and arr.size and arr.dtype.kind != "b":
        if arr.dtype.kind in "iu" and np.isin(arr, (0, 1)).all():
            return arr.astype(bool)
        raise TypeError(f"{name} has dtype {arr.dtype}: use a bool array")
    if want.kind == "f" and arr.size and arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} has dtype {arr.dtype}: use a float array")
    return arr.astype(want, copy=False)


@dataclass(eq=False, kw_only=True)
class FeedbackDataset:
    """Base class: a dataclass of arrays with a common leading item axis, plus ``metadata``."""

    KIND: ClassVar[str] = ""
    #: field -> (dtype, trailing-shape spec); the leading axis is the item axis
    SPECS: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.KIND:  # each kind registers itself, so loading can dispatch on the kind stored in a file
            _KINDS[cls.KIND] = cls

    metadata: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata={self.metadata!r} is not allowed: use a JSON-ready dict")
        self.metadata = dict(self.metadata)
        for name, (dtype, _) in self.SPECS.items():
            setattr(self, name, _as_array(name, getattr(self, name), dtype))
        self._check_shapes()

    @classmethod
    def _array_fields(cls) -> list[str]:
        return list(cls.SPECS)

    def _check_shapes(self) -> None:
        """Check every array against its spec: the leading axis (items, steps or episodes) agrees across fields,
        ``L`` and the observation shape agree across fields, fixed sizes match."""
        bound: dict[str, tuple[int, ...]] = {}
        for name, (_, spec) in self.SPECS.items():
            arr: np.ndarray = getattr(self, name)
            expect: list[int] = []
            pos = 0
            for dim in spec:
                if dim == _OBS:  # always last: the rest of the shape
                    size = bound.setdefault(_OBS, arr.shape[pos:])
                elif isinstance(dim, str):
                    size = bound.setdefault(dim, arr.shape[pos : pos + 1] or (-1,))
                else:
                    size = (dim,)
                expect.extend(size)
                pos += len(size)
            if arr.shape != tuple(expect):
                named = ", ".join(str(d) for d in spec)
                raise InvalidArgumentError(
                    f"{self.KIND}: field {name!r} has shape {arr.shape} but its spec ({named}) with the other fields "
                    f"requires {tuple(expect)}: all fields must agree in length, segment length and observation shape"
                )

    # -- basic protocol -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        first = next(iter(self.SPECS))
        return int(getattr(self, first).shape[0])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""
        for name, (_, spec) in self.SPECS.items():
            if _OBS in spec:
                return tuple(getattr(self, name).shape[len(spec) - 1 :])  # the obs entry is last
        return ()

    @property
    def task_ids(self) -> list[str]:
        """The distinct task ids, in order of first appearance."""
        return list(dict.fromkeys(self._item_task_ids().tolist()))

    def _item_task_ids(self) -> np.ndarray:
        return self.task_id  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, obs_shape={self.obs_shape}, tasks={len(self.task_ids)}, "
            f"coverage={self.metadata.get('coverage')!r})"
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in self._array_fields()}

    def equals(self, other: object) -> bool:
        """Exact equality of type, every array (values, dtype, shape) and metadata."""
        if type(other) is not type(self):
            return False
        for name, arr in self.arrays().items():
            theirs = getattr(other, name)
            if arr.dtype != theirs.dtype or arr.shape != theirs.shape or not np.array_equal(arr, theirs):
                return False
        return json.dumps(self.metadata, sort_keys=True) == json.dumps(other.metadata, sort_keys=True)  # type: ignore

    # -- selection ----------------------------------------------------------------------------------------------
    def _take(self: D, index: np.ndarray, op: dict[str, Any]) -> D:
        meta = copy.deepcopy(self.metadata)
        meta["history"] = [*meta.get("history", []), op]
        kwargs = {name: arr[index] for name, arr in self.arrays().items()}
        return type(self)(metadata=meta, **kwargs)

    def _indices(self, mask_or_indices: Any) -> np.ndarray:
        idx = np.asarray(mask_or_indices)
        n = len(self)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise InvalidArgumentError(f"mask has shape {idx.shape}: a boolean mask needs shape ({n},)")
            return np.flatnonzero(idx)
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
            raise InvalidArgumentError(
                f"indices with dtype {idx.dtype} and shape {idx.shape} are not allowed: use 1-D ints or a bool mask"
            )
        if idx.min() < -n or idx.max() >= n:
            raise InvalidArgumentError(f"indices out of range for a dataset of {n} items: allowed is -{n}..{n - 1}")
        return idx.astype(np.int64)

    def select(self: D, mask_or_indices: Any) -> D:
        """A new dataset of the chosen items (a boolean ``(n,)`` mask or int indices, order kept)."""
        idx = self._indices(mask_or_indices)
        return self._take(idx, {"op": "select", "n": int(idx.size)})

    def subsample(self: D, k: int, seed: int = 0) -> D:
        """``k`` items drawn without replacement (kept in their original order), e.g. for few-shot experiments.

        Raises:
            ValueError: If ``k`` is not an int in ``0..len(self)``.
        """
        n = len(self)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
            raise InvalidArgumentError(f"k={k!r} is not allowed: use an int in 0..{n} (the dataset has {n} items)")
        idx = np.sort(np.random.default_rng(seed).choice(n, size=int(k), replace=False))
        return self._take(idx, {"op": "subsample", "k": int(k), "seed": int(seed)})

    def split(self: D, fraction: float, seed: int = 0) -> tuple[D, D]:
        """Split into two disjoint datasets (e.g. train / validation) by a seeded permutation.

        Args:
            fraction: Share of items in the first part, in (0, 1); with at least 2 items both parts are non-empty.
            seed: Seed of the permutation.

        Returns:
            ``(first, second)``, each in original item order.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (float, int)) or not 0.0 < fraction < 1.0:
            raise InvalidArgumentError(f"fraction={fraction!r} is not allowed: use a float in (0, 1)")
        n = len(self)
        n_first = int(round(fraction * n))
        if n >= 2:
            n_first = min(max(n_first, 1), n - 1)
        perm = np.random.default_rng(seed).permutation(n)
        first, second = np.sort(perm[:n_first]), np.sort(perm[n_first:])
        op = {"op": "split", "fraction": float(fraction), "seed": int(seed)}
        return self._take(first, {**op, "part": 0}), self._take(second, {**op, "part": 1})

    def by_task(self: D) -> dict[str, D]:
        """One dataset per task id, in order of first appearance."""
        ids = self._item_task_ids()
        return {tid: self._take(np.flatnonzero(ids == tid), {"op": "by_task", "task_id": tid}) for tid in self.task_ids}

    @classmethod
    def concatenate(cls: type[D], datasets: Sequence[D]) -> D:
        """Join datasets of this kind with equal observation shapes (and segment lengths).

        Metadata: keys whose values agree across all parts are kept; ``budget_spent`` is summed; the parts' full
        metadata goes to ``"parts"``.

        Raises:
            ValueError: On an empty list, or parts of another kind or shape.
        """
        parts = list(datasets)
        if not parts:
            raise InvalidArgumentError("datasets=[] is not allowed: give at least one dataset to concatenate")
        for p in parts:
            if type(p) is not cls:
                raise TypeError(f"cannot concatenate a {type(p).__name__} into {cls.__name__}: use one kind only")
        for name in cls._array_fields():
            found = {tuple(getattr(p, name).shape[1:]) for p in parts}
            if len(found) > 1:
                raise InvalidArgumentError(
                    f"cannot concatenate: field {name!r} has different shapes per item {sorted(found)}"
                )
        meta = cls._merge_metadata([p.metadata for p in parts])
        return cls._join(parts, meta)

    @classmethod
    def _join(cls: type[D], parts: list[D], meta: dict[str, Any]) -> D:
        kwargs = {name: np.concatenate([getattr(p, name) for p in parts]) for name in cls._array_fields()}
        return cls(metadata=meta, **kwargs)

    @staticmethod
    def _merge_metadata(metas: list[dict[str, Any]]) -> dict[str, Any]:
        if len(metas) == 1:
            return copy.deepcopy(metas[0])
        dumped = [{k: json.dumps(v, sort_keys=True) for k, v in m.items()} for m in metas]
        common = {k: copy.deepcopy(v) for k, v in metas[0].items() if all(d.get(k) == dumped[0][k] for d in dumped)}
        if all(isinstance(m.get("budget_spent"), int) for m in metas):
            common["budget_spent"] = sum(m["budget_spent"] for m in metas)
        common.pop("parts", None)
        common["parts"] = copy.deepcopy(metas)
        return common

    # -- persistence --------------------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        """The sealed JSON header written with the arrays (format, version, kind, software versions, provenance
        = ``metadata``, each field's dtype, shape and SHA-256; see :mod:`rewardshare.feedback.dataset_io`).

        Raises:
            InvalidArgumentError: If the metadata is not JSON-serialisable.
        """
        return dataset_io.make_header(self.KIND, self.arrays(), self.metadata)

    def save(self, path: str | os.PathLike[str], overwrite: bool = True) -> Path:
        """Write the dataset to ``path`` (an ``.npz`` file; written to a temp file first, then renamed).

        Args:
            path: The file (missing parent directories are created).
            overwrite: Replace an existing file (default, as ``np.save`` does); False refuses it.

        Returns:
            The path written.

        Raises:
            NotJSONError: If the metadata is not JSON-serializable (an ``InvalidArgumentError`` and a
                ``TypeError``); nothing is written then.
            FileExistsError: If ``path`` exists and ``overwrite`` is False.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: nothing was written; pass overwrite=True to replace it")
        return dataset_io.write(path, self.KIND, self.arrays(), self.metadata)

    @classmethod
    def load(cls: type[D], path: str | os.PathLike[str], max_bytes: int = MAX_DATASET_BYTES) -> D:
        """Read a dataset written by :meth:`save`, checking it before anything is decompressed.

        Args:
            path: The ``.npz`` file.
            max_bytes: Largest total uncompressed size of the arrays accepted (a guard against archives that
                expand to far more than their file size).

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            IncompatibleArtifactError: Not a rewardshare dataset (e.g. a ``.npy`` file), a format version newer than
                this package reads, or another kind than this class.
            CorruptArtifactError: Truncated, damaged or edited (checksums), sizes over ``max_bytes``, arrays that do
                not match the header or the schema.
            (Both are :class:`~rewardshare.errors.DatasetFormatError`, a ``ValueError``.)
        """
        header, arrays = dataset_io.read(path, max_bytes=max_bytes)
        kind = header.get("kind")
        if cls is not FeedbackDataset and kind != cls.KIND:
            raise IncompatibleArtifactError(
                f"{path}: holds a {kind!r} dataset, not {cls.KIND!r}: use {_KINDS[kind].__name__}.load or "
                "rewardshare.feedback.load_dataset"
            )
        target = _KINDS[kind]
        return target._from_arrays(path, header, arrays)  # type: ignore[return-value]

    @classmethod
    def _from_arrays(cls: type[D], path: Any, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> D:
        expected, found = set(cls._array_fields()), set(arrays)
        if expected != found:
            raise CorruptArtifactError(
                f"{path}: fields do not match the {cls.KIND!r} schema: missing {sorted(expected - found)}, "
                f"unexpected {sorted(found - expected)}"
            )
        meta = header.get("provenance")
        if not isinstance(meta, dict):
            raise CorruptArtifactError(f"{path}: the header's provenance is {type(meta).__name__}, expected a JSON "
                                       "object")
        try:
            return cls(metadata=meta, **arrays)
        except (ValueError, TypeError) as exc:
            raise CorruptArtifactError(f"{path}: arrays fail the {cls.KIND!r} schema: {exc}") from exc


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked JSON header of a dataset file (format, version, kind, fields, provenance).

    Raises:
        FileNotFoundError, IncompatibleArtifactError, CorruptArtifactError: As :meth:`FeedbackDataset.load`.
    """
    return dataset_io.read(path)[0]


def load_dataset(path: str | os.PathLike[str], max_bytes: int = MAX_DATASET_BYTES) -> FeedbackDataset:
    """Load any feedback dataset (a ``Transitions``, ``Preferences`` or ``Demonstrations``), dispatching on the kind
    stored in the file.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        IncompatibleArtifactError, CorruptArtifactError: See :meth:`FeedbackDataset.load`.
    """
    return FeedbackDataset.load(path, max_bytes=max_bytes)  # type: ignore[return-value]


__all__ = [
    "FORMAT_VERSION", "DatasetFormatError", "FeedbackDataset", "load_dataset", "read_header",
]
