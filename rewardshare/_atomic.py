"""Atomic file writes: write to a temporary file in the target's directory, flush it to disk, then rename.

``os.replace`` is atomic on POSIX, so a reader (or a resumed run) sees either the old file or the whole new one, never
a half-written file; an interrupted or failed write leaves the old file untouched and no temporary file behind.

This module imports nothing from rewardshare, so every layer (feedback datasets, reward models, learning curves,
benchmark results) can use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# the process umask, read once (reading it means setting it); mkstemp ignores it and creates 0600 files
_UMASK = os.umask(0)
os.umask(_UMASK)


def default_file_mode() -> int:
    """The permissions a plain ``open()`` gives a new file here (``0o666 & ~umask``)."""
    return 0o666 & ~_UMASK


def default_dir_mode() -> int:
    """The permissions a plain ``mkdir()`` gives a new directory here (``0o777 & ~umask``); ``tempfile.mkdtemp``
    makes owner-only directories, which a shared results or model directory must not stay."""
    return 0o777 & ~_UMASK


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on a clean exit it replaces ``path`` atomically.

    Parent directories are created. The file gets the permissions a plain ``open()`` would give it
    (``0o666 & ~umask``): results and models are meant to be read by others.

    Args:
        path: The destination.
        mode: ``"wb"`` (binary) or ``"w"`` (text, written as given: no newline translation).
        encoding: Text mode only; default UTF-8.

    Yields:
        The open temporary file. If the body raises, the temporary file is removed and ``path`` is left unchanged.

    Raises:
        ValueError: If ``mode`` is neither ``"wb"`` nor ``"w"``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r} is not allowed: use 'wb' or 'w'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, default_file_mode())
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Returns:
        The path written.
    """
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, as given (no newline translation; see :func:`atomic_open`).

    Returns:
        The path written.
    """
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(
    path: str | os.PathLike[str], data: Any, *, indent: int | None = 1, sort_keys: bool = False, allow_nan: bool = True
) -> Path:
    """Write ``data`` as JSON (UTF-8, with a final newline) to ``path`` atomically (see :func:`atomic_open`).

    The JSON is fully serialised before the file is touched, so data that cannot be serialised leaves ``path``
    as it was.

    Args:
        path: The destination.
        data: JSON-serialisable data.
        indent: As in :func:`json.dumps`.
        sort_keys: As in :func:`json.dumps`.
        allow_nan: ``True`` writes NaN/inf as ``NaN``/``Infinity`` (which :mod:`json` reads back); ``False`` refuses
            them with a ``ValueError``.

    Returns:
        The path written.

    Raises:
        TypeError: If ``data`` is not JSON-serialisable.
        ValueError: On NaN/inf with ``allow_nan=False``.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"
    return atomic_write_text(path, text)
