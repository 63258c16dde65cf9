"""Smoke test of benchmarks/amortized_validation.py (tiny settings, JSON to tmp_path), and the committed
measurements' invariant: validation (and source) goals only, never held-out goals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardshare.experiments.fewshot import family_split
from rewardshare.experiments.fewshot_config import FewShotConfig

ROOT = Path(__file__).resolve().parents[3]


def test_quick_run_writes_results(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("amortized_validation")
    out = tmp_path / "av.json"
    res = mod.main(["--quick", "--source-goals", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert data["command"] == f"python benchmarks/amortized_validation.py --quick --source-goals 1 --out {out}"
    (result,) = data["results"].values()
    assert result["held_out_goals_used"] == 0
    assert set(result["summary"]) == set(mod.VARIANTS)
    for per in result["summary"].values():
        assert per["4"]["runs"] == len(result["validation_goals"])
    assert result["summary_source"]["bayes"]["4"]["runs"] == 1


@pytest.mark.parametrize(
    "name", ["amortized_validation.json", "amortized_validation_mean64.json", "amortized_validation_s1_source.json"]
)
def test_the_committed_measurements_use_no_held_out_goal(name: str) -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / name).read_text())
    assert data["command"].startswith("python benchmarks/amortized_validation.py")
    cfg = FewShotConfig()
    for key, result in data["results"].items():
        spec, _, seed = key.rpartition("/s")
        held_out = {t.id for t in family_split(cfg, spec, int(seed)).held_out}
        goals = {r["goal"] for r in result["runs"]}
        assert result["held_out_goals_used"] == 0 and not goals & held_out


def test_paired_comparison_of_the_committed_units(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("amortized_paired")
    res = mod.main(["--n-boot", "50", "--out", str(tmp_path / "p.json")])
    row = res["by_k"]["32"]
    assert row["runs"] == 51 and row["goals"] == 17 and 0 <= row["wins"] <= row["runs"]
    assert row["ci95"][0] <= row["ci95"][1]
    committed = json.loads((ROOT / "benchmarks" / "results" / "amortized_paired.json").read_text())
    assert committed["by_k"]["32"]["mean_diff"] == row["mean_diff"]  # regenerated from the committed units
