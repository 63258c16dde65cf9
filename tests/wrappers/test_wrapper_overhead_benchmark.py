"""Smoke test of benchmarks/wrapper_overhead.py: tiny settings, JSON written to tmp_path with every field."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "wrapper_overhead.py"


def test_quick_run_writes_results(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("wrapper_overhead", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "wo.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert set(data["ppo_training"]["median_steps_per_s"]) == {"true", "batched", "batched_table", "per_env"}
    assert data["ppo_training"]["median_ratio_to_true"]["true"] == 1.0
    assert set(data["single_env"]["median_steps_per_s"]) == {"bare", "table", "forward"}
    assert all(v > 0 for v in data["native_vector_env"]["median_steps_per_s"].values())
    assert set(data["headline"]["targets"]) == {
        "batched_overhead_le_5pct", "batched_overhead_le_1pct_stretch", "batched_table_overhead_le_5pct",
        "batched_table_time_share_le_5pct", "table_ge_100k_steps_per_s",
    }
    shares = data["ppo_training"]["median_wrapper_time_share"]
    assert set(shares) == {"batched", "batched_table"} and all(0 < v < 1 for v in shares.values())
    assert data["machine"]["cpu_count"] >= 1 and data["settings"]["repeats"] == 1
    assert "--quick" in data["command"]
