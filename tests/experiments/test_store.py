"""Atomic writes and the refusal to mix results of different configs."""

from __future__ import annotations

import json
import os

import pytest

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
