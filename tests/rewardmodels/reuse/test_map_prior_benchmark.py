"""Smoke test of benchmarks/map_prior.py (tiny settings, JSON to tmp_path), and the committed measurement: on
validation goals of the train split the low-rank prior beats isotropic L2 around the same mean at every k."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quick_run_writes_results(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("map_prior")
    out = tmp_path / "mp.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert set(data["summary"]) == set(mod.KINDS) and data["settings"]["held_out_goals_used"] == 0
    assert not set(data["settings"]["eval_goals"]) & set(data["settings"]["select_goals"])


def test_the_committed_measurement_shows_the_low_rank_prior_beating_isotropic_l2() -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "map_prior.json").read_text())
    assert data["command"].startswith("python benchmarks/map_prior.py")
    assert data["settings"]["held_out_goals_used"] == 0
    for k, row in data["summary"]["lowrank"].items():
        assert row["minus_isotropic"] < 0 and row["minus_isotropic_ci95"][1] < 0, (k, row)
    # the first version's estimator put most weights on its clip floor: an almost flat prior
    assert data["diagnostics"]["legacy_at_floor_fraction"] > 0.5
