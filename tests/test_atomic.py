"""The shared atomic writes: whole files or the old file, no temp files left, open()'s permissions."""

from __future__ import annotations

import json
import math
import os

import pytest

from rewardshare._atomic import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_each_writer_replaces_the_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "f"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write_text(p, "a\r\nb")  # written as given: no newline translation
    assert p.read_bytes() == b"a\r\nb"
    assert atomic_write_json(p, {"b": 1, "a": [1.5]}, sort_keys=True) == p
    assert p.read_text() == '{\n "a": [\n  1.5\n ],\n "b": 1\n}\n'
    assert [q.name for q in p.parent.iterdir()] == ["f"]
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"x": object()})
    with pytest.raises(ValueError):
        atomic_write_json(p, {"x": math.nan}, allow_nan=False)
    with pytest.raises(RuntimeError), atomic_open(p, "wb") as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert json.loads(p.read_text()) == {"x": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode='a' is not allowed"), atomic_open(tmp_path / "x", "a"):
        pass
