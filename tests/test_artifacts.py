"""The artifact layer shared by datasets, models and benchmark results: headers, seals, names, paths, sizes."""

from __future__ import annotations

import os

import pytest

from rewardshare.artifacts import (
    ArtifactFormat,
    check_name,
    check_seal,
    confined_path,
    read_json,
    read_limited,
    seal,
    software_versions,
    write_directory,
)
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError, InvalidArgumentError

FMT = ArtifactFormat("rewardshare.test", 3, oldest=2, label="test artifact", kinds=("a", "b"))


def test_header_carries_versions_and_provenance_and_is_sealed():
    header = seal(FMT.header("a", {"env_id": "x", "seed": 1}, extra=[1, 2]))
    assert header["format_version"] == 3 and header["kind"] == "a" and header["provenance"]["seed"] == 1
    assert set(header["software"]) == {"rewardshare", "torch", "numpy", "python"} == set(software_versions())
    check_seal(header, "h")
    assert FMT.check(header, "h", kind="a") == 3
    with pytest.raises(CorruptArtifactError, match="h: the header's checksum .* does not match its content"):
        check_seal({**header, "provenance": {"env_id": "y", "seed": 1}}, "h")
    with pytest.raises(CorruptArtifactError, match="does not match"):
        check_seal({k: v for k, v in header.items() if k != "checksum"}, "h")


@pytest.mark.parametrize(("patch", "message"), [
    ({"format_version": 4}, r"test artifact format version 4 \(written by rewardshare \S+\) is newer than this "
                            r"rewardshare \S+ reads \(format version 3\): upgrade rewardshare"),
    ({"format_version": 1}, r"format version 1 .* is older than this rewardshare \S+ reads \(versions 2..3\)"),
    ({"format_version": "3"}, r"format_version='3' is not a version number"),
    ({"format": "other"}, r"not a rewardshare test artifact \(format is 'other'"),
    ({"kind": "z"}, r"unknown test artifact kind 'z'; allowed are \['a', 'b'\]"),
])
def test_incompatible_headers_are_refused_with_the_reason(patch, message):
    with pytest.raises(IncompatibleArtifactError, match=message):
        FMT.check({**FMT.header("a", {}), **patch}, "src")
    with pytest.raises(IncompatibleArtifactError, match="holds a 'a' test artifact, not 'b'"):
        FMT.check(FMT.header("a", {}), "src", kind="b")


@pytest.mark.parametrize("name", ["ok-name_1.2", "A", "x" * 96])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "bad\nname", "a b", "a/b", "a\\b", "..", "a..b", ".hidden", "-x", "x" * 97,
                                  "é", None, 3])
def test_bad_names(name):
    with pytest.raises(InvalidArgumentError, match=r"name=.* is not allowed: use 1-96 characters"):
        check_name(name)


def test_paths_are_confined(tmp_path):
    assert confined_path(tmp_path, "model.safetensors") == tmp_path / "model.safetensors"
    for name in ("../x", "/etc/passwd", "a/b", ".", "", ".hidden", "x\x00y", None):
        with pytest.raises(CorruptArtifactError, match="is not a plain file name inside"):
            confined_path(tmp_path, name)
    os.symlink("/etc/hostname", tmp_path / "link")
    with pytest.raises(CorruptArtifactError, match="is not a plain file name inside"):
        confined_path(tmp_path, "link")


def test_sizes_are_checked_before_reading(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_limited(tmp_path / "f", 100, "f", 100) == b"x" * 100
    with pytest.raises(CorruptArtifactError, match="f is 100 bytes, over the limit of 99 bytes"):
        read_limited(tmp_path / "f", 99, "f")
    with pytest.raises(CorruptArtifactError, match="100 bytes but 50 were saved"):
        read_limited(tmp_path / "f", 1000, "f", 50)
    with pytest.raises(CorruptArtifactError, match="not valid JSON"):
        read_json(tmp_path / "f", "f")
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "missing", 1, "f")


def test_write_directory_is_atomic_and_never_clobbers(tmp_path):
    out = write_directory(tmp_path / "a", {"x.bin": b"1"})
    assert (out / "x.bin").read_bytes() == b"1"
    with pytest.raises(FileExistsError, match="already holds a saved artifact"):
        write_directory(out, {"x.bin": b"2"}, is_artifact=True)
    write_directory(out, {"x.bin": b"2"}, is_artifact=True, overwrite=True)
    assert (out / "x.bin").read_bytes() == b"2"
    (out / "user.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty and does not hold a saved artifact only"):
        write_directory(out, {"x.bin": b"3"}, is_artifact=True, overwrite=True)
    assert (out / "user.txt").read_text() == "mine" and (out / "x.bin").read_bytes() == b"2"
    (tmp_path / "file").write_text("f")
    with pytest.raises(NotADirectoryError):
        write_directory(tmp_path / "file", {"x.bin": b"1"})
    with pytest.raises(CorruptArtifactError, match="not a plain file name"):
        write_directory(tmp_path / "b", {"../x.bin": b"1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]  # no temp dirs left
