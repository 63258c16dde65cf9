"""Smoke test of benchmarks/latent_diagnosis.py (tiny settings, JSON to tmp_path), and the committed measurement's
invariants: validation goals only, and the decomposition's counts add up."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quick_run_writes_results(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("latent_diagnosis")
    out = tmp_path / "ld.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert data["command"] == f"python benchmarks/latent_diagnosis.py --quick --out {out}"
    (family,) = data["families"].values()
    assert family["held_out_goals_used"] == 0
    fitted = [r for r in family["results"].values() if r["fitted"]]
    assert len(fitted) == 1 and len(family["results"]) == 2
    for result in family["results"].values():
        row = result["summary"]["4"]
        assert row["runs"] == len(family["validation_goals"]) == len(result["runs"])
        # every run either beats the oracle's posterior or is a search failure
        assert row["map_beats_oracle_posterior"] + row["search_failures"] <= row["runs"]


def test_demonstrations_run_only_the_fitted_likelihood(tmp_path, load_benchmark) -> None:
    out = tmp_path / "ld.json"
    bench = load_benchmark("latent_diagnosis")
    bench.main(["--quick", "--feedback", "demonstrations", "--goal-rows", "--out", str(out)])
    data = json.loads(out.read_text())
    assert (data["settings"]["feedback"], data["settings"]["goal_rows"], data["settings"]["ks"]) == (
        "demonstrations", True, [1])
    (family,) = data["families"].values()
    (result,) = family["results"].values()  # the noise variance plays no part in a demonstration's likelihood
    assert result["fitted"] and result["summary"]["1"]["runs"] == len(family["validation_goals"])
    assert family["held_out_goals_used"] == 0


def test_the_committed_measurement_uses_validation_goals_only() -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "latent_diagnosis.json").read_text())
    assert data["command"].startswith("python benchmarks/latent_diagnosis.py")
    for family in data["families"].values():
        assert family["held_out_goals_used"] == 0
        for result in family["results"].values():
            for row in result["summary"].values():
                assert 0 <= row["search_failures"] <= row["runs"]
