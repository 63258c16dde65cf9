"""Statistics for few-run RL results: IQM, stratified bootstrap CIs, speedup ratios, probability of improvement.

Scores are grouped by task: ``scores[t]`` is a 1-D array over the runs (seeds) of task ``t``; tasks may have
different numbers of runs. A 2-D array ``(n_tasks, n_runs)`` is accepted too. The bootstrap is *stratified*:
each resample draws, for every task separately, that task's runs with replacement (Agarwal et al. 2021, "Deep RL
at the edge of the statistical precipice"), so every resample keeps every task. Two score sets that come from the
same seeds (a method and scratch) are resampled with the *same* indices, which keeps their pairing.

``rliable`` implements the same ideas but version 1.2 does not import with current pandas; these few functions
over numpy and ``scipy.stats.trim_mean`` replace what we need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ScoresByTask = Sequence[Sequence[float]] | np.ndarray


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval.

    Attributes:
        value: The statistic on the observed scores.
        low: Lower end of the percentile bootstrap interval.
        high: Upper end.
        n: Number of runs the statistic was computed over.
    """

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        """JSON-ready ``{"value", "low", "high", "n"}``."""
        return {"value": float(self.value), "low": float(self.low), "high": float(self.high), "n": int(self.n)}


def iqm(x: np.ndarray | Sequence[float], axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``).

    Args:
        x: Scores; NaNs are not allowed.
        axis: Axis to reduce (None: all values).

    Returns:
        The IQM (a float for ``axis=None``, else an array with ``axis`` removed).

    Raises:
        ValueError: If ``x`` is empty or contains NaN.
    """
    arr = np.asarray(x, dtype=float)
    if arr.size == 0:
        raise ValueError("x is empty: the IQM needs at least one score")
    if np.isnan(arr).any():
        raise ValueError("x contains NaN: drop or impute missing scores before taking the IQM")
    if axis is None:
        return float(sps.trim_mean(arr.ravel(), 0.25))
    return sps.trim_mean(arr, 0.25, axis=axis)


def _as_groups(scores: ScoresByTask, name: str) -> list[np.ndarray]:
    groups = [np.asarray(g, dtype=float).ravel() for g in scores]
    if not groups or any(g.size == 0 for g in groups):
        sizes = [g.size for g in groups]
        raise ValueError(f"{name} must hold at least one task with at least one run, got {sizes} runs per task")
    if any(np.isnan(g).any() for g in groups):
        raise ValueError(f"{name} contains NaN: drop or impute missing scores first")
    return groups


def _check_paired(a: list[np.ndarray], b: list[np.ndarray], names: tuple[str, str]) -> None:
    if [g.size for g in a] != [g.size for g in b]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be paired (same tasks, same runs per task): got runs per task "
            f"{[g.size for g in a]} and {[g.size for g in b]}"
        )


def _resample_indices(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per task, ``(n_boot, n_t)`` run indices drawn with replacement from that task's runs only."""
    return [rng.integers(0, g.size, size=(n_boot, g.size)) for g in groups]


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    finite = boot[np.isfinite(boot)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _check_boot_args(n_boot: int, confidence: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} is not allowed: use an int >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is not allowed: use a float in (0, 1)")


def stratified_bootstrap(
    scores: ScoresByTask,
    statistic: Callable[..., np.ndarray] | None = None,
    *others: ScoresByTask,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A statistic over all runs with a stratified percentile-bootstrap confidence interval.

    Args:
        scores: Scores grouped by task (see the module docstring).
        statistic: ``f(a, *others) -> values`` reducing the last axis of arrays shaped ``(..., n_runs)`` (runs of
            all tasks concatenated in task order); default :func:`iqm` over the last axis.
        *others: Further score sets paired with ``scores`` (same tasks, same runs per task), resampled with the
            same indices and passed to ``statistic`` after ``scores``.
        n_boot: Bootstrap resamples.
        confidence: Interval coverage, e.g. 0.95.
        seed: Seed of the resampling (the interval is deterministic given it).

    Returns:
        The :class:`Estimate`; ``value`` is the statistic on the observed scores.

    Raises:
        ValueError: On empty groups, NaN, unpaired ``others`` or bad ``n_boot``/``confidence``.
    """
    _check_boot_args(n_boot, confidence)
    if statistic is None:
        statistic = lambda a: iqm(a, axis=-1)  # noqa: E731
    sets = [_as_groups(scores, "scores")] + [_as_groups(o, f"others[{i}]") for i, o in enumerate(others)]
    for i, s in enumerate(sets[1:]):
        _check_paired(sets[0], s, ("scores", f"others[{i}]"))
    observed = [np.concatenate(s) for s in sets]
    value = float(np.asarray(statistic(*observed)))
    idx = _resample_indices(sets[0], n_boot, np.random.default_rng(seed))
    boot_sets = [np.concatenate([g[i] for g, i in zip(s, idx, strict=True)], axis=1) for s in sets]
    boot = np.asarray(statistic(*boot_sets), dtype=float).reshape(n_boot)
    lo, hi = _percentiles(boot, confidence)
    return Estimate(value, lo, hi, int(observed[0].size))


def iqm_ci(scores: ScoresByTask, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """IQM over all runs with a stratified bootstrap CI (see :func:`stratified_bootstrap`)."""
    return stratified_bootstrap(scores, None, n_boot=n_boot, confidence=confidence, seed=seed)


def iqm_curve_ci(
    curves: np.ndarray | Sequence[np.ndarray], n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM learning curve with pointwise stratified bootstrap bands.

    Args:
        curves: Per task, an array ``(n_runs_t, T)`` of curves on a common evaluation grid of length ``T``.
        n_boot: Bootstrap resamples.
        confidence: Band coverage.
        seed: Resampling seed.

    Returns:
        ``(iqm, low, high)``, each of shape ``(T,)``.

    Raises:
        ValueError: On an empty input or curves of different lengths.
    """
    _check_boot_args(n_boot, confidence)
    groups = [np.atleast_2d(np.asarray(c, dtype=float)) for c in curves]
    if not groups or any(g.shape[0] == 0 for g in groups):
        raise ValueError("curves must hold at least one task with at least one run")
    lengths = {g.shape[1] for g in groups}
    if len(lengths) != 1:
        raise ValueError(f"curves must share one evaluation grid: got lengths {sorted(lengths)}")
    rng = np.random.default_rng(seed)
    point = sps.trim_mean(np.concatenate(groups, axis=0), 0.25, axis=0)
    idx = [rng.integers(0, g.shape[0], size=(n_boot, g.shape[0])) for g in groups]
    boot = np.concatenate([g[i] for g, i in zip(groups, idx, strict=True)], axis=1)  # (n_boot, N, T)
    stat = sps.trim_mean(boot, 0.25, axis=1)  # (n_boot, T)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stat, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return np.asarray(point, dtype=float), lo, hi


def steps_to_threshold(
    timesteps: Sequence[float], success: Sequence[float], threshold: float, budget: float | None = None
) -> tuple[float, bool]:
    """The first evaluated timestep at which the success rate reaches ``threshold``.

    Args:
        timesteps: Evaluation timesteps, increasing, shape ``(T,)``.
        success: Success rates at those timesteps, shape ``(T,)``.
        threshold: Success rate that counts as solved.
        budget: Value returned when the threshold is never reached (default: the last timestep). A run that never
            gets there is *censored*: its true value is larger than what is returned.

    Returns:
        ``(steps, reached)``.

    Raises:
        ValueError: On empty or mismatched inputs.
    """
    t = np.asarray(timesteps, dtype=float)
    s = np.asarray(success, dtype=float)
    if t.ndim != 1 or t.shape != s.shape or t.size == 0:
        raise ValueError(f"timesteps and success must be equal-length 1-D arrays, got shapes {t.shape} and {s.shape}")
    hit = np.flatnonzero(s >= threshold)
    if hit.size:
        return float(t[hit[0]]), True
    return float(t[-1] if budget is None else budget), False


def success_auc(timesteps: Sequence[float], success: Sequence[float]) -> float:
    """Area under the success curve, normalised to [0, 1]: the trapezoidal mean success over the evaluated range.

    Args:
        timesteps: Evaluation timesteps, increasing, shape ``(T,)``.
        success: Success rates, shape ``(T,)``.

    Returns:
        ``trapezoid(success, timesteps) / (timesteps[-1] - timesteps[0])``; with a single point, that point.
    """
    t = np.asarray(timesteps, dtype=float)
    s = np.asarray(success, dtype=float)
    if t.ndim != 1 or t.shape != s.shape or t.size == 0:
        raise ValueError(f"timesteps and success must be equal-length 1-D arrays, got shapes {t.shape} and {s.shape}")
    if t.size == 1 or t[-1] == t[0]:
        return float(s.mean())
    if np.any(np.diff(t) <= 0):
        raise ValueError("timesteps must be strictly increasing")
    return float(np.trapezoid(s, t) / (t[-1] - t[0]))


def speedup_ci(
    method_steps: ScoresByTask,
    scratch_steps: ScoresByTask,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Speedup over scratch: ``IQM(scratch steps-to-threshold) / IQM(method steps-to-threshold)``.

    Runs are paired by task and seed (the same target feedback draw and agent seed), and resampled together.
    A value above 1 means the method reaches the threshold in fewer steps.

    Args:
        method_steps: Steps-to-threshold of the method, grouped by task.
        scratch_steps: Steps-to-threshold of scratch, paired with ``method_steps``.
        n_boot: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Resampling seed.

    Returns:
        The ratio with its stratified bootstrap CI.

    Raises:
        ValueError: On unpaired inputs or non-positive steps.
    """
    for name, s in (("method_steps", method_steps), ("scratch_steps", scratch_steps)):
        if any(np.any(np.asarray(g, dtype=float) <= 0) for g in s):
            raise ValueError(f"{name} must be > 0 (steps to reach the threshold)")

    def ratio(m: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.asarray(iqm(s, axis=-1)) / np.asarray(iqm(m, axis=-1))

    return stratified_bootstrap(method_steps, ratio, scratch_steps, n_boot=n_boot, confidence=confidence, seed=seed)


def _poi(x_groups: list[np.ndarray], y_groups: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of P(X > Y) + 0.5 P(X = Y); groups are ``(B, n_t)`` arrays, result ``(B,)``."""
    per_task = []
    for x, y in zip(x_groups, y_groups, strict=True):
        gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
        eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
        per_task.append(gt + 0.5 * eq)
    return np.mean(per_task, axis=0)


def probability_of_improvement(
    x: ScoresByTask,
    y: ScoresByTask,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Probability that a run of X beats a run of Y on the same task, averaged over tasks, with a CI.

    ``P(X > Y) = mean_t [ P(X_t > Y_t) + 0.5 P(X_t = Y_t) ]`` over all run pairs of task ``t`` (higher scores are
    better; pass negated steps for a lower-is-better metric). Both sets are resampled per task with the same
    indices.

    Args:
        x: Scores of the method, grouped by task.
        y: Scores of the baseline, same tasks and runs per task.
        n_boot: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Resampling seed.

    Returns:
        The probability with its stratified bootstrap CI.
    """
    _check_boot_args(n_boot, confidence)
    xg, yg = _as_groups(x, "x"), _as_groups(y, "y")
    _check_paired(xg, yg, ("x", "y"))
    value = float(_poi(xg, yg))
    idx = _resample_indices(xg, n_boot, np.random.default_rng(seed))
    boot = _poi([g[i] for g, i in zip(xg, idx, strict=True)], [g[i] for g, i in zip(yg, idx, strict=True)])
    lo, hi = _percentiles(boot, confidence)
    return Estimate(value, lo, hi, int(sum(g.size for g in xg)))


__all__ = [
    "Estimate", "iqm", "iqm_ci", "iqm_curve_ci", "probability_of_improvement", "speedup_ci",
    "steps_to_threshold", "stratified_bootstrap", "success_auc",
]


def hierarchical_bootstrap(
    scores: ScoresByTask,
    statistic: Callable[[np.ndarray], float] = np.median,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A statistic over all runs with a two-level percentile-bootstrap CI: resample the *tasks* (e.g. held-out
    goals) with replacement, then the runs (seeds) within each drawn task.

    Unlike :func:`stratified_bootstrap`, which keeps every task, this treats the tasks as a sample of the family too,
    so the interval covers the variation between goals as well as between seeds. Scores may be ``inf`` (e.g. a run
    that never reached a threshold): quantiles are taken on the resampled values themselves (``inverted_cdf``), so an
    upper end of ``inf`` means "not reached within the budget" rather than NaN.

    Args:
        scores: Scores grouped by task (``scores[t]`` the runs of task ``t``; sizes may differ).
        statistic: ``f(values_1d) -> float``; default the median.
        n_boot: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Seed of the resampling.

    Returns:
        The :class:`Estimate` (``value`` is the statistic on all observed runs).

    Raises:
        ValueError: On empty groups, NaN or bad ``n_boot`` / ``confidence``.
    """
    _check_boot_args(n_boot, confidence)
    groups = _as_groups(scores, "scores")
    rng = np.random.default_rng(seed)
    observed = np.concatenate(groups)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(groups), size=len(groups))
        boot[b] = statistic(np.concatenate([groups[t][rng.integers(0, groups[t].size, size=groups[t].size)]
                                            for t in picked]))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], method="inverted_cdf")
    return Estimate(float(statistic(observed)), float(lo), float(hi), int(observed.size))


def first_reaching(ks: Sequence[float], values: Sequence[float], threshold: float, *, stay: bool = False) -> float:
    """The smallest ``k`` whose value is ``<= threshold`` (e.g. the feedback a run needs to reach EPIC 0.2), or
    ``inf`` if none does.

    Args:
        ks: Increasing feedback amounts.
        values: The run's value at each ``k`` (``None``/NaN counts as not reached).
        threshold: The target.
        stay: Count only a ``k`` from which every later value stays ``<= threshold`` (a run whose curve dips below
            the threshold and rises again has not reached it at the dip).

    Raises:
        ValueError: If ``ks`` and ``values`` differ in length.
    """
    if len(ks) != len(values):
        raise ValueError(f"ks has {len(ks)} entries and values {len(values)}: give one value per k")
    ok = [v is not None and bool(np.isfinite(v)) and v <= threshold for v in values]
    for i, k in enumerate(ks):
        if ok[i] and (not stay or all(ok[i:])):
            return float(k)
    return float("inf")
