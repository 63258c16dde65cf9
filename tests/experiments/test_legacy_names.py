"""Results written before the method registry (``multitask`` for today's ``task_embedding``) are read under today's
names, keep the hash they were written with, and are never resumed by a sweep of today's config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rewardshare.experiments import get_profile, make_report
from rewardshare.experiments.config import LEGACY_METHOD_NAMES, BenchConfig
from rewardshare.experiments.store import ConfigMismatchError, ResultStore
from rewardshare.rewardmodels import list_methods

COMMITTED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "learning_curves" / "quick"


def test_legacy_names_map_to_registered_names():
    assert set(LEGACY_METHOD_NAMES.values()) <= set(list_methods())
    assert not set(LEGACY_METHOD_NAMES) & set(list_methods())


def test_a_legacy_config_reads_under_today_s_names_and_keeps_its_hash():
    today = get_profile("smoke")
    legacy = today.to_dict()
    legacy["methods"] = ["multitask" if m == "task_embedding" else m for m in legacy["methods"]]
    read = BenchConfig.from_dict(legacy)
    assert read == today and "task_embedding" in read.methods
    assert read.config_hash() != today.config_hash()  # the hash the legacy results were stamped with
    assert BenchConfig.from_dict(today.to_dict()).config_hash() == today.config_hash()


@pytest.mark.skipif(not (COMMITTED / "config.json").exists(), reason="no committed quick-profile results")
def test_committed_legacy_results_report_under_today_s_names(tmp_path):
    root = tmp_path / "quick"
    shutil.copytree(COMMITTED, root, ignore=shutil.ignore_patterns("*.png", "cache"))
    report = make_report(root, n_boot=50, plots=False)
    methods = {e["method"] for e in report["runs"]} | {e["method"] for e in report["epic"]}
    assert "task_embedding" in methods and not methods & set(LEGACY_METHOD_NAMES)
    with pytest.raises(ConfigMismatchError):
        ResultStore(root, get_profile("quick")).init()  # today's sweep never resumes into (and mixes with) it
