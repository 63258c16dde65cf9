"""The collapse metric on hand-made curves, its hierarchical CI, and the report of a fake sweep with reward-uncertainty
variants whose every collapse number is known exactly (see fake_executor)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from fake_executor import execute

from rewardshare.experiments import get_profile, make_report, run_sweep
from rewardshare.experiments.collapse import collapse_of, collapse_rate, collapse_stats
from rewardshare.experiments.report import run_metrics


@pytest.mark.parametrize(
    ("success", "drop", "peak", "collapsed"),
    [
        ([0.0, 0.7, 0.2], 0.5, 0.7, True),  # a fall of exactly 0.5 (0.7 - 0.5 is 0.19999999999999996)
        ([0.0, 0.7, 0.25], 0.5, 0.7, False),  # 0.45 is not enough
        ([0.0, 0.7, 0.75, 0.0], 0.5, 0.75, True),
        ([0.4, 0.0, 0.0], 0.5, 0.4, False),  # a peak below the drop cannot collapse
        ([0.8, 0.2, 0.8], 0.5, 0.8, True),  # after *first* reaching the peak; a recovery still counts
        ([0.2, 0.8, 0.8], 0.5, 0.8, False),
        ([0.6, 0.0, 0.7, 0.7], 0.5, 0.7, False),  # the fall before the peak is not a collapse
        ([1.0, 0.9, 0.6, 0.5], 0.5, 1.0, True),
        ([1.0], 0.5, 1.0, False),  # nothing after the peak
        ([0.0, 0.7, 0.4], 0.3, 0.7, True),
        ([0.0, 1.0, 0.05], 1.0, 1.0, False),
        ([0.0, 1.0, 0.0], 1.0, 1.0, True),
    ],
)
def test_collapse_of_hand_made_curves(success, drop, peak, collapsed):
    assert collapse_of(success, drop) == (peak, collapsed)


@pytest.mark.parametrize(("success", "drop", "match"), [([], 0.5, "non-empty"), ([0.1, float("nan")], 0.5, "NaN"),
                                                        ([[0.1]], 0.5, "1-D"), ([0.1], 0.0, r"drop=0.0")])
def test_collapse_of_refuses_bad_input(success, drop, match):
    with pytest.raises(ValueError, match=match):
        collapse_of(success, drop)


def test_collapse_rate_is_the_fraction_with_a_goals_then_seeds_ci():
    est = collapse_rate([[1, 0], [0, 0]], n_boot=500)
    assert (est["value"], est["n"]) == (0.25, 4)
    assert 0.0 <= est["low"] <= 0.25 <= est["high"] <= 1.0
    # goals resampled: two goals that always / never collapse give 0, 0.5 or 1 with prob 1/4, 1/2, 1/4
    assert collapse_rate([[1, 1], [0, 0]], n_boot=2000) == {"value": 0.5, "low": 0.0, "high": 1.0, "n": 4}
    assert collapse_rate([[1, 1], [1]], n_boot=100) == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 3}


def _row(task, seed, collapsed, final, peak=1.0):
    return {"task_id": task, "seed": seed, "collapsed": collapsed, "final_success": final, "peak_success": peak}


def test_collapse_stats_pairs_a_variant_with_the_plain_reward_by_goal_and_seed():
    plain = [_row("a", 0, True, 0.0), _row("a", 1, True, 0.1), _row("b", 0, False, 0.9), _row("b", 1, True, 0.0)]
    variant = [_row("a", 0, False, 1.0), _row("a", 1, True, 0.0), _row("b", 0, False, 0.9), _row("b", 1, False, 0.8),
               _row("c", 0, True, 0.0)]  # goal c has no plain run: left out of the paired differences
    variant[3]["peak_success"] = 0.4  # could not collapse
    st = collapse_stats(variant, plain, 0.5, n_boot=200)
    assert st["collapse_rate"]["value"] == pytest.approx(2 / 5)
    assert (st["n_collapsed"], st["n_could_collapse"]) == (2, 4)
    vs = st["vs_plain"]
    assert vs["n_pairs"] == 4
    assert vs["collapse_rate"]["value"] == pytest.approx(-0.5)  # (-1, 0, 0, -1) / 4
    assert vs["final_success"]["value"] == pytest.approx((1.0 - 0.1 + 0.0 + 0.8) / 4)
    assert collapse_stats(plain, None, n_boot=50)["vs_plain"] is None


def test_run_metrics_label_peak_and_collapse():
    c = get_profile("smoke", total_timesteps=500, eval_every=100)
    rec = {"algo": "ppo", "method": "latent", "uncertainty": "pessimistic", "k": 8, "task_id": "x", "seed": 0,
           "epic": 0.3, "curve": {"timesteps": [100, 200, 300, 400, 500], "success": [0.1, 0.75, 0.7, 0.25, 0.3]}}
    row = run_metrics(rec, c)
    assert (row["method"], row["base_method"], row["uncertainty"]) == ("latent+pessimistic", "latent", "pessimistic")
    assert (row["peak_success"], row["collapsed"], row["final_success"]) == (0.75, True, 0.3)
    del rec["uncertainty"]  # a record written before reward variants existed is a plain run
    assert run_metrics(rec, get_profile("smoke", collapse_drop=0.6))[("method")] == "latent"
    assert not run_metrics(rec, get_profile("smoke", collapse_drop=0.6))["collapsed"]


@pytest.fixture(scope="module")
def variant_sweep(tmp_path_factory):
    c = get_profile("smoke", methods=("scratch", "latent", "teacher"), algos=("ppo",), seeds=(0, 1, 2), n_eval_tasks=2,
                    ks=(4, 8), rl_ks=(8,), total_timesteps=1000, eval_every=100,
                    reward_uncertainty=("none", "mean", "pessimistic"), pessimism_beta=2.0)
    root = tmp_path_factory.mktemp("variants")
    assert run_sweep(c, root, workers=1, progress=False, executor=execute).ok
    return c, root, make_report(root, n_boot=300)


def test_fake_sweep_collapse_rates_are_exact(variant_sweep):
    c, root, rep = variant_sweep
    runs = {e["method"]: e for e in rep["runs"]}
    assert set(runs) == {"scratch", "scratch+mean", "scratch+pessimistic", "latent", "latent+mean",
                         "latent+pessimistic", "teacher"}
    assert runs["latent"]["collapse_rate"] == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 6}
    assert runs["latent+pessimistic"]["collapse_rate"]["value"] == 0.0
    assert runs["latent+mean"]["collapse_rate"]["value"] == pytest.approx(1 / 3)  # seed 0 of each of 2 goals
    assert runs["latent+mean"]["vs_plain"]["collapse_rate"]["value"] == pytest.approx(-2 / 3)
    pess = runs["latent+pessimistic"]["vs_plain"]
    assert (pess["collapse_rate"]["value"], pess["final_success"]["value"], pess["n_pairs"]) == (-1.0, 1.0, 6)
    assert runs["latent"]["vs_plain"] is None and runs["scratch"]["collapse_rate"]["value"] == 0.0
    assert runs["latent"]["peak_success"]["value"] == 1.0 and runs["latent"]["final_success"]["value"] == 0.0
    # every variant is compared with plain scratch: the same (task, seed) pairs
    assert runs["scratch+mean"]["speedup"]["value"] == 1.0 and runs["latent+pessimistic"]["speedup"]["n"] == 6


def test_fake_sweep_report_shows_variants_as_rows(variant_sweep):
    c, root, rep = variant_sweep
    md = (root / "report.md").read_text()
    assert "## Collapse" in md
    assert "| ppo | latent+pessimistic | 8 | 6 | 0.00 [0.00, 0.00] | 0 / 6 | -1.00 [-1.00, -1.00] |" in md
    assert "| ppo | latent | 8 | 6 | 1.00 [1.00, 1.00] | 6 / 6 | – |" in md
    assert "pessimistic = posterior mean - 2 std" in md
    rows = list(csv.DictReader(open(root / "runs.csv")))
    assert {r["method"] for r in rows} >= {"latent+mean", "scratch+pessimistic"}
    assert sum(r["collapsed"] == "True" for r in rows) == 6 + 2
    assert np.isclose(sum(float(r["peak_success"]) for r in rows), len(rows))  # every fake run reaches 1.0
