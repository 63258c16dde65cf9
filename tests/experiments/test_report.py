"""The report on a fake sweep whose every metric is known exactly."""

from __future__ import annotations

import csv
import json

import pytest
from fake_executor import execute

from rewardshare.experiments import get_profile, make_report, run_sweep
from rewardshare.experiments.report import run_metrics


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    c = get_profile("smoke", methods=("scratch", "transfer", "true"), algos=("ppo", "dqn"), seeds=(0, 1, 2),
                    n_eval_tasks=2, ks=(4, 8), rl_ks=(8,), total_timesteps=1000, eval_every=100)
    root = tmp_path_factory.mktemp("sweep")
    assert run_sweep(c, root, workers=1, progress=False, executor=execute).ok
    return c, root, make_report(root, n_boot=200)


def test_run_metrics_of_a_step_curve():
    c = get_profile("smoke", total_timesteps=1000, eval_every=100, success_threshold=0.9)
    t = list(range(100, 1001, 100))
    rec = {"algo": "ppo", "method": "m", "k": 8, "task_id": "x", "seed": 0, "epic": None,
           "curve": {"timesteps": t, "success": [0.0] * 7 + [1.0] * 3}}
    row = run_metrics(rec, c)
    assert row["steps_to_threshold"] == 800 and row["reached"] and row["final_success"] == 1.0
    assert row["auc"] == pytest.approx(250 / 900)
    rec["curve"]["success"] = [0.5] * 10
    row = run_metrics(rec, c)
    assert (row["steps_to_threshold"], row["reached"]) == (1000, False)


def test_aggregate_has_exact_speedups(swept):
    c, root, rep = swept
    runs = {(e["algo"], e["method"]): e for e in rep["runs"]}
    assert set(runs) == {(a, m) for a in ("ppo", "dqn") for m in ("scratch", "transfer", "true")}
    for algo in ("ppo", "dqn"):
        assert runs[(algo, "scratch")]["speedup"] is None
        sp = runs[(algo, "transfer")]["speedup"]  # fake curves: scratch solves at 800 steps, transfer at 400
        assert (sp["value"], sp["low"], sp["high"], sp["n"]) == (2.0, 2.0, 2.0, 6)
        assert runs[(algo, "true")]["speedup"]["value"] == 4.0
        assert runs[(algo, "transfer")]["p_improve"]["value"] == 1.0
        assert runs[(algo, "transfer")]["reached"] == 1.0
        assert runs[(algo, "scratch")]["steps_to_threshold"]["value"] == 800
        assert runs[(algo, "transfer")]["n"] == 6 and runs[(algo, "transfer")]["tasks"] == 2
    epic = {(e["method"], e["k"]): e["epic"]["value"] for e in rep["epic"]}
    assert epic == {("scratch", 4): 0.5, ("scratch", 8): 0.5, ("transfer", 4): 0.125, ("transfer", 8): 0.0625}


def test_report_files(swept):
    c, root, rep = swept
    for name in ("runs.csv", "epic.csv", "aggregate.json", "report.md", "learning_curves.png", "speedup.png",
                 "epic_vs_k.png"):
        assert (root / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(root / "runs.csv")))
    assert len(rows) == 2 * 3 * 2 * 3  # algos x methods x tasks x seeds
    agg = json.loads((root / "aggregate.json").read_text())
    assert agg["config_hash"] == c.config_hash()
    md = (root / "report.md").read_text()
    assert c.config_hash() in md and "![Learning curves](learning_curves.png)" in md
    assert "| ppo | transfer | 8 |" in md and "2.00 [2.00, 2.00]" in md
    # every evaluated held-out task is named in the report
    from rewardshare.experiments import task_split

    assert all(t.id in md for t in task_split(c)["eval"])


def test_report_of_a_partial_sweep(tmp_path):
    c = get_profile("smoke", methods=("scratch", "transfer"), algos=("ppo", "dqn"), total_timesteps=1000,
                    eval_every=100)
    assert run_sweep(c, tmp_path, workers=1, progress=False, executor=execute).ok
    for p in (tmp_path / "runs" / "ppo" / "scratch").glob("*/*.json"):
        p.unlink()  # PPO's scratch runs are missing: no paired PPO speedup, but the report is still written
    rep = make_report(tmp_path, n_boot=50)
    speedup = {e["algo"]: e["speedup"] for e in rep["runs"] if e["method"] == "transfer"}
    assert speedup["ppo"] is None and speedup["dqn"]["value"] == 2.0
    assert (tmp_path / "report.md").exists()
