"""Atomic writes and the refusal to mix results of different configs."""

from __future__ import annotations

import json
import os

import pytest

from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError
from rewardshare.experiments import ConfigMismatchError, ResultStore, get_profile
from rewardshare.experiments.store import atomic_write_json, slug


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [q.name for q in p.parent.iterdir()] == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(); mkstemp alone would leave it 0600


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"x": object()})  # not JSON-serialisable: fails midway through the dump
    assert json.loads(p.read_text()) == {"x": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]


def test_store_refuses_a_directory_of_another_config(tmp_path):
    ResultStore(tmp_path, get_profile("smoke")).init()
    ResultStore(tmp_path, get_profile("smoke")).init()  # same config: fine
    with pytest.raises(ConfigMismatchError, match="never mixed"):
        ResultStore(tmp_path, get_profile("smoke", seeds=(5,))).init()
    assert ResultStore.load_config(tmp_path) == get_profile("smoke")


def test_store_refuses_a_file_of_another_config(tmp_path):
    a = ResultStore(tmp_path, get_profile("smoke"))
    b = ResultStore(tmp_path, get_profile("smoke", seeds=(5,)))
    path = a.run_path("ppo", "scratch", 8, "open-5x5/g0_1", 0)
    a.write(path, {"hello": 1})
    assert a.done(path) and a.read(path)["hello"] == 1
    assert a.read(path)["config_hash"] == get_profile("smoke").config_hash()
    with pytest.raises(ConfigMismatchError, match="never mixed"):
        b.done(path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="format"):
        a.read(path)


def test_load_config_of_a_non_results_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a benchmark results directory"):
        ResultStore.load_config(tmp_path)


def test_slug():
    assert slug("open-8x8/g7_7") == "open-8x8_g7_7"
    assert slug("a b//c") == "a_b_c"


def test_a_rerun_with_another_config_says_which_fields_differ_and_how_to_resume(tmp_path):
    ResultStore(tmp_path, get_profile("smoke", seeds=(0, 1), layout="maze")).init()
    with pytest.raises(ConfigMismatchError) as err:
        ResultStore(tmp_path, get_profile("smoke", seeds=(5,))).init()
    text = str(err.value)
    assert "differs in 2 field(s): layout: 'maze' there, 'open' requested; seeds: [0, 1] there, [5] requested" in text
    assert "To resume that run: rewardshare bench --profile smoke --set layout=\"maze\" --set seeds=[0,1]" in text
    assert f"To start fresh: use another --out directory (or delete {tmp_path})" in text


def test_a_results_file_of_a_newer_format_is_refused_with_both_versions(tmp_path):
    store = ResultStore(tmp_path, get_profile("smoke"))
    path = store.run_path("ppo", "scratch", 4, "open-5x5/g0_1", 0)
    store.write(path, {"hello": 1})
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": 3, "rewardshare_version": "9.0"}))
    newer = r"benchmark result format version 3 \(written by rewardshare 9.0\) is newer than .* \(format version 1\)"
    with pytest.raises(IncompatibleArtifactError, match=newer):
        store.read(path)
    path.write_text("{half a fi")
    with pytest.raises(CorruptArtifactError, match="is not valid JSON .* delete it to recompute that unit"):
        store.read(path)
