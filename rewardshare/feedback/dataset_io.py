"""The feedback dataset file: one ``.npz`` archive of named arrays plus a sealed JSON header.

Layout (format ``rewardshare.feedback``, version :data:`FORMAT_VERSION`): one zip entry ``<field>.npy`` per array and
``__header__.npy``, a uint8 array holding the header's UTF-8 JSON (see :mod:`rewardshare.artifacts`)::

    {"format": "rewardshare.feedback", "format_version": 2, "kind": "transitions" | "preferences" | "demonstrations",
     "software": {...}, "provenance": {env_id, env_kwargs, tasks, teachers, coverage, seed, budget_spent, ...},
     "fields": {name: {"dtype": "<f4", "shape": [...], "sha256": "..."}}, "checksum": "sha256:..."}

Reading never trusts the archive: before any array is decompressed, the header is read (size-limited), its format,
version and seal are checked, and every entry's declared uncompressed size is compared with the shape and dtype the
header records and with a maximum total (:data:`~rewardshare.artifacts.MAX_DATASET_BYTES`); then each array's own
``.npy`` header must match, and its bytes its SHA-256. Nothing is unpickled (``allow_pickle=False``, no object
dtypes). Version 1 files (rewardshare 0.1: no checksums) are still read.

This module knows nothing of the dataset classes (:mod:`rewardshare.feedback.datasets` calls it), so the two never
import each other.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare._atomic import atomic_open
from rewardshare.artifacts import (
    MAX_DATASET_BYTES,
    MAX_JSON_BYTES,
    ArtifactFormat,
    check_seal,
    seal,
    sha256_hex,
)
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError

FORMAT_NAME = "rewardshare.feedback"
FORMAT_VERSION = 2
HEADER_KEY = "__header__"
KINDS: tuple[str, ...] = ("transitions", "preferences", "demonstrations")
FORMAT = ArtifactFormat(FORMAT_NAME, FORMAT_VERSION, oldest=1, label="feedback dataset", kinds=KINDS)
# an .npy entry's own header is at most 64 KiB (format 2.0 allows 4 GiB, numpy writes 1.0 for our arrays)
_NPY_HEADER_MAX = 65_536 + 16


def _field_record(arr: np.ndarray) -> dict[str, Any]:
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "sha256": sha256_hex(np.ascontiguousarray(arr).data)}


def make_header(kind: str, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The sealed header of a dataset of ``kind`` with these arrays and provenance ``metadata``.

    Raises:
        InvalidArgumentError: If ``metadata`` is not JSON-serialisable.
    """
    fields = {name: _field_record(arr) for name, arr in arrays.items()}
    return seal(FORMAT.header(kind, dict(metadata), fields=fields))


def write(path: str | os.PathLike[str], kind: str, arrays: Mapping[str, np.ndarray],
          metadata: Mapping[str, Any]) -> Path:
    """Write the arrays and their header to ``path`` atomically (temp file in the same directory, then rename).

    Raises:
        InvalidArgumentError: If ``metadata`` is not JSON-serialisable (``path`` is then not touched).
    """
    path = Path(path)
    header = json.dumps(make_header(kind, arrays, metadata), allow_nan=False)
    entries = dict(arrays)
    entries[HEADER_KEY] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **entries)  # a file object: numpy adds no ".npz" suffix
    return path


def _corrupt(path: Path, exc: BaseException) -> CorruptArtifactError:
    return CorruptArtifactError(
        f"{path}: cannot read the dataset, the file is truncated or corrupted ({type(exc).__name__}: {exc})"
    )


def _open_archive(path: Path) -> zipfile.ZipFile:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise IncompatibleArtifactError(
            f"{path}: a single numpy array (.npy), not a rewardshare feedback dataset: give the .npz file written by "
            "`rewardshare collect` or Dataset.save"
        )
    if not magic.startswith(b"PK"):
        raise IncompatibleArtifactError(
            f"{path}: not a rewardshare feedback dataset (not an .npz archive): give the .npz file written by "
            "`rewardshare collect` or Dataset.save"
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt(path, exc) from exc


def _declared(path: Path, name: str, rec: Any) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape the header records for field ``name``, checked to be plain data."""
    try:
        dtype = np.dtype(rec["dtype"])
        shape = tuple(rec["shape"])
        ok = dtype.kind in "biufU" and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise CorruptArtifactError(f"{path}: the header records field {name!r} as {rec!r}, which is not a plain "
                                   "numeric or string array")
    return dtype, shape


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str,
              dtype: np.dtype | None, shape: tuple[int, ...] | None) -> np.ndarray:
    """One entry; its ``.npy`` header is compared with the declared dtype and shape before the data is read."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            found_shape, _, found_dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            found_shape, _, found_dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise CorruptArtifactError(f"{path}: field {name!r} is stored as .npy version {version}, which "
                                       "rewardshare never writes")
    if found_dtype.hasobject:
        raise CorruptArtifactError(f"{path}: field {name!r} holds Python objects; nothing is unpickled")
    if dtype is not None and (found_dtype != dtype or tuple(found_shape) != shape):
        raise CorruptArtifactError(
            f"{path}: field {name!r} has dtype {found_dtype.str} and shape {list(found_shape)} but the header records "
            f"dtype {dtype.str} and shape {list(shape or ())}: the file is inconsistent or was modified"
        )
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def read(path: str | os.PathLike[str], max_bytes: int = MAX_DATASET_BYTES) -> tuple[dict[str, Any],
                                                                                    dict[str, np.ndarray]]:
    """Read and check a dataset file (see the module docstring for the order of the checks).

    Args:
        path: The ``.npz`` file.
        max_bytes: Largest total uncompressed size of the arrays accepted.

    Returns:
        ``(header, arrays)``; a version 1 header gets its ``metadata`` under ``provenance`` too.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        IncompatibleArtifactError: Not a dataset (a plain ``.npy`` or ``.npz``, another format), a format version
            newer than this package reads, or an unknown kind.
        CorruptArtifactError: Truncated or damaged, sizes over the limit or not matching the header, checksums that
            do not match.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset file")
    if path.is_dir():
        raise IncompatibleArtifactError(f"{path} is a directory: give a dataset .npz file")
    zf = _open_archive(path)
    with zf:
        infos = {info.filename: info for info in zf.infolist()}
        head = infos.get(HEADER_KEY + ".npy")
        if head is None:
            raise IncompatibleArtifactError(f"{path}: not a rewardshare feedback dataset (no {HEADER_KEY!r} entry)")
        if head.file_size > MAX_JSON_BYTES + _NPY_HEADER_MAX:
            raise CorruptArtifactError(f"{path}: the header entry is {head.file_size} bytes, over the limit of "
                                       f"{MAX_JSON_BYTES}")
        try:
            raw = _read_npy(zf, head, path, HEADER_KEY, None, None)
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptArtifactError(f"{path}: the dataset header is not valid JSON ({exc}); the file is "
                                       "corrupted") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise _corrupt(path, exc) from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise IncompatibleArtifactError(f"{path}: not a rewardshare feedback dataset (format is not "
                                            f"{FORMAT_NAME!r})")
        version = FORMAT.check(header, path)
        if version >= 2:
            check_seal(header, path)
        else:
            header["provenance"] = header.get("metadata")
        fields = header.get("fields")
        if not isinstance(fields, dict):
            raise CorruptArtifactError(f"{path}: the header has no 'fields' record")
        names = {n.removesuffix(".npy") for n in infos} - {HEADER_KEY}
        undeclared = sorted(names - set(fields))
        if undeclared:
            raise CorruptArtifactError(f"{path}: entries {undeclared} are not recorded in the header: the file was "
                                       "modified")
        declared = {name: _declared(path, name, fields[name]) for name in sorted(names)}
        total = sum(math.prod(shape) * dtype.itemsize for dtype, shape in declared.values())
        if total > max_bytes:
            raise CorruptArtifactError(
                f"{path}: the arrays declare {total} bytes uncompressed, over the limit of max_bytes={max_bytes}; if "
                "the file is genuine, load it with a larger max_bytes"
            )
        for name, (dtype, shape) in declared.items():
            size = infos[name + ".npy"].file_size
            if size > math.prod(shape) * dtype.itemsize + _NPY_HEADER_MAX:
                raise CorruptArtifactError(
                    f"{path}: entry {name!r} expands to {size} bytes but the header records shape {list(shape)} "
                    f"of {dtype.str} ({math.prod(shape) * dtype.itemsize} bytes): refused before decompressing"
                )
        arrays: dict[str, np.ndarray] = {}
        try:
            for name, (dtype, shape) in declared.items():
                arrays[name] = _read_npy(zf, infos[name + ".npy"], path, name, dtype, shape)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise _corrupt(path, exc) from exc
    if version >= 2:
        for name, arr in arrays.items():
            if sha256_hex(np.ascontiguousarray(arr).data) != fields[name].get("sha256"):
                raise CorruptArtifactError(f"{path}: field {name!r} does not match the sha256 recorded in the "
                                           "header: the arrays were changed after saving")
    return header, arrays


__all__ = ["FORMAT", "FORMAT_NAME", "FORMAT_VERSION", "HEADER_KEY", "KINDS", "make_header", "read", "write"]
