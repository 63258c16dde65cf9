"""Exact checks of the statistics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from rewardshare.experiments import stats


def test_iqm_is_mean_of_middle_half():
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert stats.iqm([0, 0, 0, 100]) == pytest.approx(0.0)  # the outlier is trimmed
    np.testing.assert_allclose(stats.iqm(np.array([[1, 2, 3, 4], [10, 20, 30, 40]]), axis=1), [2.5, 25.0])


def test_iqm_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        stats.iqm([])
    with pytest.raises(ValueError, match="NaN"):
        stats.iqm([1.0, float("nan")])


def test_bootstrap_of_two_runs_spans_both_values():
    # resampled means of {a, b} are a, (a+b)/2 or b with probabilities 1/4, 1/2, 1/4: the 95% interval is [a, b]
    est = stats.stratified_bootstrap([[2.0, 6.0]], lambda a: a.mean(axis=-1), n_boot=4000, seed=1)
    assert (est.value, est.low, est.high, est.n) == (4.0, 2.0, 6.0, 2)


def test_bootstrap_is_stratified_by_task():
    # every resample keeps both tasks: the pooled mean is always exactly 5 (an unstratified bootstrap would vary)
    est = stats.stratified_bootstrap([[0.0, 0.0], [10.0, 10.0]], lambda a: a.mean(axis=-1), n_boot=500)
    assert (est.value, est.low, est.high) == (5.0, 5.0, 5.0)
    est = stats.iqm_ci(np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]]), n_boot=500)
    assert (est.low, est.high) == (5.0, 5.0)


def test_bootstrap_matches_scipy_percentile_interval_for_one_task():
    x = np.random.default_rng(0).normal(size=40)
    ours = stats.stratified_bootstrap([x], lambda a: a.mean(axis=-1), n_boot=20000, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", random_state=3).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.02)
    assert ours.high == pytest.approx(ref.high, abs=0.02)
    assert ours.low < ours.value < ours.high


def test_bootstrap_is_deterministic_given_seed_and_validates():
    x = [[1.0, 5.0, 2.0], [3.0, 9.0]]
    assert stats.iqm_ci(x, seed=7) == stats.iqm_ci(x, seed=7)
    with pytest.raises(ValueError, match="n_boot=0"):
        stats.iqm_ci(x, n_boot=0)
    with pytest.raises(ValueError, match="confidence=1.5"):
        stats.iqm_ci(x, confidence=1.5)
    with pytest.raises(ValueError, match="at least one task"):
        stats.iqm_ci([])
    with pytest.raises(ValueError, match="paired"):
        stats.speedup_ci([[1.0, 2.0]], [[1.0]])


def test_steps_to_threshold_and_censoring():
    t, s = [100, 200, 300, 400], [0.2, 0.95, 0.85, 1.0]
    assert stats.steps_to_threshold(t, s, 0.9) == (200.0, True)
    assert stats.steps_to_threshold(t, s, 0.99) == (400.0, True)
    assert stats.steps_to_threshold(t, [0.0] * 4, 0.9) == (400.0, False)
    assert stats.steps_to_threshold(t, [0.0] * 4, 0.9, budget=1000) == (1000.0, False)
    with pytest.raises(ValueError, match="equal-length"):
        stats.steps_to_threshold([1, 2], [0.5], 0.9)


def test_success_auc():
    assert stats.success_auc([0, 10], [0.0, 1.0]) == pytest.approx(0.5)
    assert stats.success_auc([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert stats.success_auc([5], [0.4]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="increasing"):
        stats.success_auc([0, 10, 5], [0, 1, 1])


def test_speedup_is_ratio_of_iqm_steps():
    est = stats.speedup_ci([[50.0, 50.0], [100.0, 100.0]], [[100.0, 100.0], [200.0, 200.0]], n_boot=300)
    assert (est.value, est.low, est.high) == (pytest.approx(2.0), pytest.approx(2.0), pytest.approx(2.0))
    est = stats.speedup_ci([[100.0, 400.0]], [[100.0, 100.0]], n_boot=2000)
    assert est.value == pytest.approx(100 / 250)
    assert est.low == pytest.approx(0.25) and est.high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="> 0"):
        stats.speedup_ci([[0.0]], [[1.0]])


def test_probability_of_improvement_known_values():
    assert stats.probability_of_improvement([[1.0, 2.0]], [[0.0, 3.0]]).value == pytest.approx(0.5)
    assert stats.probability_of_improvement([[1.0, 1.0]], [[1.0, 1.0]]).value == pytest.approx(0.5)  # ties count half
    est = stats.probability_of_improvement([[5.0, 6.0], [2.0, 3.0]], [[1.0, 2.0], [0.0, 1.0]], n_boot=300)
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)
    # task-averaged: task 1 always better (1.0), task 2 always worse (0.0)
    assert stats.probability_of_improvement([[5.0], [0.0]], [[1.0], [3.0]]).value == pytest.approx(0.5)


def test_iqm_curve_ci_bands_contain_the_curve():
    rng = np.random.default_rng(0)
    curves = [rng.uniform(size=(4, 6)), rng.uniform(size=(3, 6))]
    mid, lo, hi = stats.iqm_curve_ci(curves, n_boot=300)
    assert mid.shape == lo.shape == hi.shape == (6,)
    assert np.all(lo <= hi)
    np.testing.assert_allclose(mid, sps.trim_mean(np.concatenate(curves), 0.25, axis=0))
    with pytest.raises(ValueError, match="one evaluation grid"):
        stats.iqm_curve_ci([np.zeros((2, 3)), np.zeros((2, 4))])
