"""Smoke test of benchmarks/wrapper_overhead.py: tiny settings, JSON written to tmp_path with every field."""

from __future__ import annotations

import json


def test_quick_run_writes_results(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("wrapper_overhead")
    out = tmp_path / "wo.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    wrapped = {"batched", "batched_table", "mean_table", "pessimistic_table", "mean_forward", "pessimistic_forward"}
    assert set(data["ppo_training"]["median_steps_per_s"]) == {"true", "per_env"} | wrapped
    assert data["ppo_training"]["median_ratio_to_true"]["true"] == 1.0
    assert set(data["single_env"]["median_steps_per_s"]) == {"bare", "table", "forward", "pessimistic_table"}
    assert set(data["native_vector_env"]["median_steps_per_s"]) == {
        "bare", "table", "forward", "pessimistic_table", "pessimistic_forward"}
    assert all(v > 0 for v in data["native_vector_env"]["median_steps_per_s"].values())
    assert set(data["headline"]["targets"]) == {
        "batched_overhead_le_5pct", "batched_overhead_le_1pct_stretch", "batched_table_overhead_le_5pct",
        "batched_table_time_share_le_5pct", "posterior_table_overhead_le_5pct", "posterior_table_time_share_le_5pct",
        "batched_forward_overhead_le_10pct", "batched_forward_cpu_time_overhead_le_10pct",
        "posterior_table_cpu_time_overhead_le_5pct", "batched_forward_time_share_le_10pct",
        "posterior_forward_time_share_le_10pct", "table_ge_100k_steps_per_s",
    }
    lo, hi = data["ppo_training"]["ratio_range_to_true"]["batched"]
    assert lo <= data["ppo_training"]["median_ratio_to_true"]["batched"] <= hi
    assert data["single_env"]["ratio_range_to_bare"]["bare"] == [1.0, 1.0]
    cpu = data["ppo_training"]["cpu_time"]
    assert set(cpu["median_steps_per_s"]) == {"true", "per_env"} | wrapped and cpu["median_ratio_to_true"]["true"] == 1
    assert set(data["headline"]["ppo_cpu_time_overhead_vs_true"]) == {"per_env"} | wrapped
    ppo = data["ppo_training"]
    shares, source = ppo["median_wrapper_time_share"], ppo["median_source_time_share"]
    assert set(shares) == set(source) == set(ppo["median_wrapper_us_per_step"]) == wrapped
    assert all(0 < v < 1 for v in shares.values())
    # the source is clocked inside the wrapper; on the table path it is only called on a table miss (never here)
    assert all(source[v] <= shares[v] for v in wrapped) and source["batched_table"] == 0.0
    assert data["settings"]["posterior"]["n_modes"] == 17
    assert data["machine"]["cpu_count"] >= 1 and data["settings"]["repeats"] == 1
    assert "--quick" in data["command"]
