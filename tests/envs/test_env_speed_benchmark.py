"""Smoke test of benchmarks/env_speed.py: a tiny run writes a complete JSON record."""

from __future__ import annotations

import json
from pathlib import Path


def test_quick_run_writes_json(tmp_path: Path, load_benchmark) -> None:
    out = tmp_path / "env_speed.json"
    record = load_benchmark("env_speed").main(["--quick", "--num-envs", "16", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["format_version"] == 1 and saved["benchmark"] == "env_speed"
    assert saved["config"]["quick"] is True and saved["config"]["num_envs"] == 16
    assert "--quick" in saved["command"]
    assert saved["machine"]["rewardshare"] and saved["machine"]["gymnasium"]
    names = {"gridgoal", "minigrid", "frozenlake", "gridgoal_vector", "gridgoal_vector_multigoal", "gridgoal_sync"}
    assert set(saved["results"]) == names
    for res in saved["results"].values():
        assert len(res["samples"]) == 2 and res["median"] > 0
    assert set(saved["ratios"]) >= {"single_vs_minigrid", "vector_vs_single", "vector_vs_sync"}
    assert all(isinstance(v, bool) for v in saved["targets_met"].values())
    assert saved["ratios"] == record["ratios"]
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves no temp file behind
