"""One artifact layer for everything rewardshare saves: feedback datasets, reward models, benchmark results.

Every artifact carries a *header*, a JSON object with the same keys everywhere::

    {"format": "rewardshare.reward_model",   # what it is (ArtifactFormat.name)
     "format_version": 2,                    # how it is laid out; a newer version than this package reads is refused
     "kind": "reward_model",                 # the sub-kind (dataset kind: transitions | preferences | demonstrations)
     "software": {"rewardshare": "0.1.0", "torch": "2.13.0", "numpy": "...", "python": "..."},
     "provenance": {...},                    # env id and kwargs, task(s), teacher config, seed, method, ...
     "checksum": "sha256:..."}               # over the canonical JSON of everything else in the header

The header's ``checksum`` *seals* it: an edit of any header byte (the provenance included, which decides what a
model is used for) is detected. Files the header describes (weights, arrays) are recorded with their SHA-256 and
size inside it, so one seal covers every file that changes behaviour. Checksums detect damage and careless edits;
they are not signatures (whoever edits a file can recompute them), so sizes, shapes and paths are checked as well,
*before* anything is decompressed, allocated or opened:

- sizes: every file is checked against a maximum (and against its recorded size) before it is read;
- paths: every file name inside an artifact is a plain name confined to the artifact's directory;
- names: artifact names (model store entries) are short ASCII words without separators or control characters.

Directories are written atomically (a temporary sibling directory renamed into place) and never over another
artifact unless ``overwrite=True``; never over files a user made.

This module imports nothing from rewardshare but :mod:`rewardshare.errors`, :mod:`rewardshare._atomic` and the
version, so every layer (feedback, reward models, experiments) uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardshare._atomic import default_dir_mode
from rewardshare._version import __version__
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError, InvalidArgumentError

#: Largest JSON header or config file read (bytes); a grid model's config is a few KB.
MAX_JSON_BYTES = 16 * 2**20
#: Largest weights file read (bytes) unless the caller allows more.
MAX_WEIGHTS_BYTES = 2 * 2**30
#: Largest total *uncompressed* size of a dataset's arrays (bytes) unless the caller allows more.
MAX_DATASET_BYTES = 4 * 2**30
CHECKSUM_KEY = "checksum"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


# -- headers ---------------------------------------------------------------------------------------------------------
def software_versions() -> dict[str, str | None]:
    """The versions that decide how an artifact behaves when loaded: rewardshare, torch, numpy, Python.

    Read from the installed package metadata, so the feedback layer does not have to import torch.
    """
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {"rewardshare": __version__, "torch": ver("torch"), "numpy": ver("numpy"),
            "python": platform.python_version()}


class NotJSONError(InvalidArgumentError, TypeError):
    """Metadata that JSON cannot hold (objects, NaN, infinity): a bad argument, and a ``TypeError`` as the JSON
    module would raise."""


def canonical_json(data: Any) -> bytes:
    """Sorted-key, compact, NaN-free UTF-8 JSON: equal data gives equal bytes (what checksums are taken over).

    Raises:
        NotJSONError: If ``data`` is not JSON-serialisable (NaN and infinity included).
    """
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise NotJSONError(
            f"metadata is not JSON-serializable ({exc}): use str/int/float/bool/None/list/dict, no NaN or inf"
        ) from exc


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def seal(header: Mapping[str, Any]) -> dict[str, Any]:
    """``header`` plus its ``checksum``: ``"sha256:" + sha256(canonical_json(header without checksum))``."""
    body = {k: v for k, v in header.items() if k != CHECKSUM_KEY}
    return {**body, CHECKSUM_KEY: "sha256:" + sha256_hex(canonical_json(body))}


def check_seal(header: Mapping[str, Any], source: object) -> None:
    """Verify :func:`seal`'s checksum.

    Raises:
        CorruptArtifactError: If the checksum is missing or does not match (the header was edited or damaged).
    """
    recorded = header.get(CHECKSUM_KEY)
    body = {k: v for k, v in header.items() if k != CHECKSUM_KEY}
    try:
        actual = "sha256:" + sha256_hex(canonical_json(body))
    except InvalidArgumentError as exc:  # NaN or the like cannot come from save(): the file was edited
        raise CorruptArtifactError(f"{source}: the header holds values rewardshare never writes ({exc})") from None
    if recorded != actual:
        raise CorruptArtifactError(
            f"{source}: the header's checksum {recorded!r} does not match its content ({actual[:19]}...): the file "
            "was edited or damaged after it was saved; save it again from the original"
        )


@dataclass(frozen=True)
class ArtifactFormat:
    """A family of artifacts with its own layout and version number.

    Args:
        name: The ``format`` string in the header, e.g. ``"rewardshare.reward_model"``.
        version: The format version this package writes (and the newest it reads).
        oldest: The oldest format version this package still reads.
        label: How messages call it, e.g. ``"reward model"``.
        kinds: The allowed ``kind`` values (None: any).
    """

    name: str
    version: int
    oldest: int
    label: str
    kinds: tuple[str, ...] | None = None

    def header(self, kind: str, provenance: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        """A new header (not yet sealed) for an artifact of ``kind`` with ``provenance`` and ``extra`` keys."""
        return {"format": self.name, "format_version": self.version, "kind": kind,
                "software": software_versions(), "provenance": dict(provenance), **extra}

    def check(self, header: Any, source: object, kind: str | None = None) -> int:
        """Check the format name, version and kind of a header read from ``source``.

        Args:
            header: The parsed header.
            source: The file or directory it came from (for messages).
            kind: The kind the caller needs (None: any of :attr:`kinds`).

        Returns:
            The header's format version.

        Raises:
            IncompatibleArtifactError: On another format, a version newer than :attr:`version` (message: both
                version numbers and which rewardshare wrote it) or older than :attr:`oldest`, or another kind.
        """
        if not isinstance(header, Mapping) or header.get("format") != self.name:
            found = header.get("format") if isinstance(header, Mapping) else type(header).__name__
            raise IncompatibleArtifactError(f"{source}: not a rewardshare {self.label} (format is {found!r}, not "
                                            f"{self.name!r})")
        version = header.get("format_version")
        software = header.get("software") if isinstance(header.get("software"), Mapping) else {}
        writer = software.get("rewardshare") or header.get("package_version") or header.get("rewardshare_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise IncompatibleArtifactError(f"{source}: format_version={version!r} is not a version number")
        if version > self.version:
            raise IncompatibleArtifactError(
                f"{source}: {self.label} format version {version} (written by rewardshare {writer}) is newer than "
                f"this rewardshare {__version__} reads (format version {self.version}): upgrade rewardshare"
            )
        if version < self.oldest:
            raise IncompatibleArtifactError(
                f"{source}: {self.label} format version {version} (written by rewardshare {writer}) is older than "
                f"this rewardshare {__version__} reads (versions {self.oldest}..{self.version}): save it again"
            )
        found_kind = header.get("kind")
        if self.kinds is not None and found_kind not in self.kinds:
            raise IncompatibleArtifactError(
                f"{source}: unknown {self.label} kind {found_kind!r}; allowed are {list(self.kinds)}"
            )
        if kind is not None and found_kind != kind:
            raise IncompatibleArtifactError(f"{source}: holds a {found_kind!r} {self.label}, not {kind!r}")
        return version


# -- names, paths, sizes ---------------------------------------------------------------------------------------------
def check_name(name: object, what: str = "name") -> str:
    """An artifact name: 1-96 characters from letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit,
    without ``..`` (so it is a safe directory name and a valid model-hub repository name).

    Raises:
        InvalidArgumentError: Otherwise (newlines, separators, spaces, empty, too long...).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidArgumentError(
            f"{what}={name!r} is not allowed: use 1-96 characters from letters, digits, '.', '_' and '-', starting "
            "with a letter or digit, without '..' (no spaces, slashes or newlines)"
        )
    return name


def confined_path(directory: str | os.PathLike[str], name: object, source: object = None) -> Path:
    """The path of file ``name`` inside ``directory``, refusing any name that could leave it.

    Raises:
        CorruptArtifactError: If ``name`` is not a plain file name (absolute, with a separator, ``..``, hidden) or
            resolves (through a symlink) outside ``directory``.
    """
    directory = Path(directory)
    ok = (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
          and "\x00" not in name and not name.startswith(".") and not Path(name).is_absolute())
    if ok:
        path = directory / name  # type: ignore[operator]
        try:
            ok = path.resolve().parent == directory.resolve()
        except OSError:
            ok = False
    if not ok:
        raise CorruptArtifactError(
            f"{source or directory}: the file name {name!r} is not a plain file name inside {directory}: an "
            "artifact may only refer to its own files"
        )
    return path


def read_limited(path: str | os.PathLike[str], max_bytes: int, what: str, expected_size: int | None = None) -> bytes:
    """Read a whole file after checking its size against ``max_bytes`` (and ``expected_size`` if recorded).

    Raises:
        FileNotFoundError: If ``path`` is missing.
        CorruptArtifactError: If it is larger than ``max_bytes`` or not of the recorded size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file ({what})")
    size = path.stat().st_size
    if size > max_bytes:
        raise CorruptArtifactError(
            f"{path}: {what} is {size} bytes, over the limit of {max_bytes} bytes; if the file is genuine, pass a "
            "larger max_bytes"
        )
    if expected_size is not None and size != expected_size:
        raise CorruptArtifactError(f"{path}: {what} is {size} bytes but {expected_size} were saved: truncated or "
                                   "replaced")
    return path.read_bytes()


def read_json(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of at most ``max_bytes``.

    Raises:
        FileNotFoundError: If ``path`` is missing.
        CorruptArtifactError: If it is too large or not valid UTF-8 JSON.
    """
    raw = read_limited(path, max_bytes, what)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{path}: {what} is not valid JSON ({exc}); the file is damaged") from exc


# -- writing directories -------------------------------------------------------------------------------------------
def write_directory(
    directory: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    overwrite: bool = False,
    is_artifact: bool = False,
    replaceable: Iterable[str] = (),
) -> Path:
    """Write ``files`` as a new directory, atomically: into a temporary sibling, then renamed into place.

    Args:
        directory: The artifact's directory. It may be missing or an empty directory; an existing artifact is
            replaced only with ``overwrite=True``; a directory holding anything else is never written into.
        files: File name -> content (plain names, see :func:`confined_path`).
        overwrite: Replace an existing artifact.
        is_artifact: Whether ``directory`` (if it exists) holds an artifact of this format (the caller checks).
        replaceable: Names that an existing artifact may hold besides ``files`` (e.g. an older layout's files);
            with ``overwrite`` they go with it. Any other file makes the directory off limits.

    Returns:
        The directory.

    Raises:
        FileExistsError: If ``directory`` holds an artifact and ``overwrite`` is False, or holds other files.
        NotADirectoryError: If ``directory`` is a file.
    """
    directory = Path(directory)
    for name in files:
        confined_path(directory, name)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file: give a directory path for the artifact")
    existing = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    if existing:
        foreign = sorted(set(existing) - set(files) - set(replaceable))
        if not is_artifact or foreign:
            raise FileExistsError(
                f"{directory} is not empty and does not hold a saved artifact only ({', '.join(existing[:5])}...): "
                "nothing was written; give a new or empty directory"
            )
        if not overwrite:
            raise FileExistsError(
                f"{directory} already holds a saved artifact: nothing was written; pass overwrite=True (CLI: "
                "--overwrite) to replace it, or give another directory"
            )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        os.chmod(tmp, default_dir_mode())  # mkdtemp makes it owner-only; artifacts are meant to be shared
        for name, content in files.items():
            path = tmp / name
            with open(path, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        if existing:
            trash = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=directory.parent))
            os.replace(directory, trash / "old")
            os.replace(tmp, directory)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            if directory.is_dir():
                directory.rmdir()  # empty: rename() needs the name free on some systems
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


__all__ = [
    "CHECKSUM_KEY", "MAX_DATASET_BYTES", "MAX_JSON_BYTES", "MAX_WEIGHTS_BYTES", "ArtifactFormat", "NotJSONError",
    "canonical_json", "check_name", "check_seal", "confined_path", "read_json", "read_limited", "seal", "sha256_hex",
    "software_versions", "write_directory",
]
