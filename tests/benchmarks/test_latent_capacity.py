"""Smoke test of benchmarks/latent_capacity.py (tiny settings, JSON to tmp_path; a resumed run reuses the stored
measurements), and the committed measurement's invariants: validation goals only, a baseline to compare with."""

from __future__ import annotations

import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_results_and_resumes(tmp_path, load_benchmark) -> None:
    torch.set_num_threads(1)
    mod = load_benchmark("latent_capacity")
    out = tmp_path / "lc.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert data["command"] == f"python benchmarks/latent_capacity.py --quick --out {out}"
    assert set(data["summary"]) == {"baseline", "cosine", "goal_rows"}
    assert set(data["entries"]) == {"baseline|open:5|s0", "cosine|open:5|s0", "goal_rows|open:5|s0",
                                    "goal_rows|open:5|s1"}
    for key, entry in data["entries"].items():
        assert entry["held_out_goals_used"] == 0
        assert len(entry["oracle_epic"]) == len(entry["validation_goals"]) > 0
        assert len(entry["source_fit"]) == len(entry["source_goals"]) > 0
        assert entry["settings"]["lr_schedule"] == ("cosine" if key.startswith("cosine") else "constant")
        assert entry["settings"].get("goal_rows", False) == key.startswith("goal_rows")
        assert all(0 <= e <= 1 for e in entry["source_fit"] + entry["oracle_epic"])
    row = data["summary"]["baseline"]["open:5"]
    assert row["seconds_ratio"] == 1.0
    assert row["source_fit_median"] == data["entries"]["baseline|open:5|s0"]["source_fit_median"]
    assert set(data["summary"]["goal_rows"]["open:5"]["per_seed"]) == {"0", "1"}
    again = mod.main(["--quick", "--resume", "--out", str(out)])
    assert again["entries"] == data["entries"]  # nothing recomputed


def test_the_committed_measurement_uses_validation_goals_only() -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "latent_capacity.json").read_text())
    assert data["command"].startswith("python benchmarks/latent_capacity.py")
    assert "baseline" in data["settings"]["configs"]
    for entry in data["entries"].values():
        assert entry["held_out_goals_used"] == 0
        assert len(entry["source_fit"]) == data["settings"]["n_source_fit"]
