"""Choosing how far to adapt: the adaptation budget of a method, chosen on validation tasks.

:func:`select_budget` tries every candidate budget of a method (steps x learning rate x trained parameters x prior
weight) on *validation* tasks (drawn from the ``train`` split, never ``held_out``) with the same ``k`` the method will
adapt with, and always includes "do not adapt" (``steps=0``), so the chosen budget is never worse than not adapting
on those validation tasks.

A grid can be too narrow: when the winner sits on the edge of its grid (the most steps tried, the largest or smallest
learning rate or positive prior weight), the best value may lie outside it. :func:`select_budget` then *widens* the
grid one step outward on that axis (steps x :data:`STEP_FACTOR`, learning rate and prior weight x or /
:data:`RATE_FACTOR`), runs the new candidates around the winner and selects again, at most ``max_widen`` times; every
widening is recorded in :attr:`BudgetSelection.widenings`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import NO_ADAPTATION, AdaptationBudget
from rewardshare.rewardmodels.reuse.base import ReuseMethod

#: A widened step grid adds ``STEP_FACTOR x`` its largest step count.
STEP_FACTOR = 3
#: A widened learning-rate or prior-weight grid adds ``RATE_FACTOR x`` its largest (or ``1 / RATE_FACTOR x`` its
#: smallest) value.
RATE_FACTOR = 10.0


@dataclass
class BudgetSelection:
    """The outcome of :func:`select_budget`.

    Attributes:
        budget: The chosen budget (lowest mean validation score; ties go to fewer steps).
        score: Its mean validation score.
        no_adapt_score: The mean validation score of the start model (``steps=0``); ``score <= no_adapt_score``.
        k: Target items per validation task.
        table: Every candidate: ``{"budget": ..., "score": mean, "scores": per task and seed}``.
        seconds: Wall-clock time of the selection.
        widenings: One entry per widening of the grid: the winner on the edge (``"edge_of"``: its budget) and the
            values added on each axis (``"steps"``, ``"lrs"``, ``"prior_weights"``).
    """

    budget: AdaptationBudget
    score: float
    no_adapt_score: float
    k: int
    table: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    widenings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "budget": self.budget.to_dict(),
            "score": self.score,
            "no_adapt_score": self.no_adapt_score,
            "k": self.k,
            "table": [
                {**row, "score": _finite_or_none(row["score"]), "scores": [_finite_or_none(v) for v in row["scores"]]}
                for row in self.table
            ],
            "seconds": self.seconds,
            "widenings": self.widenings,
        }


def select_budget(
    method: ReuseMethod,
    validation: Sequence[tuple[Any, Objective]],
    k: int,
    score: Callable[[RewardModel, Any], float],
    *,
    steps: Sequence[int] | None = None,
    lrs: Sequence[float] | None = None,
    params: Sequence[str | tuple[str, ...]] | None = None,
    prior_weights: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    draw: Callable[[Objective, int, int], Objective] | None = None,
    max_widen: int = 2,
) -> BudgetSelection:
    """Choose the adaptation budget of ``method`` for ``k`` target items on validation tasks.

    For every validation task and seed, ``k`` items are drawn from the task's pool; every (lr, params,
    prior_weight) is run once up to ``max(steps)`` and scored at each step count in ``steps``. The budget with the
    lowest mean score wins; ``steps=0`` (no adaptation) is always a candidate, so the winner is never worse than not
    adapting *on these validation tasks*. Pass validation tasks from the ``train`` split only (never ``held_out``).

    When the winner is on the edge of the grid (see the module docstring) the grid is widened outward around it and
    the selection repeated, at most ``max_widen`` times:

    - steps: ``s_max -> s_max * STEP_FACTOR`` when the winner ran the most steps;
    - lr: ``lr * RATE_FACTOR`` (``lr / RATE_FACTOR``) when the winner has the largest (smallest) learning rate;
    - prior weight: likewise for the largest (smallest, when ``0`` is not a candidate) positive weight.

    A widening round runs only the winner's parameter choice, as a line search on each axis: the winner's run goes
    on to the added step count; an added learning rate or prior weight runs (with the winner's other values) over
    the step counts of the grid before the round (a value that then wins at its most steps goes further in the next
    round).

    Args:
        method: A pretrained reuse method.
        validation: ``(task, pool)`` pairs: the task (as :meth:`ReuseMethod.start_model` takes it) and an Objective
            with at least ``k`` of its items (or, with a custom ``draw``, whatever ``draw`` reads).
        k: Target items per adaptation (the few-shot budget being tuned for).
        score: ``score(model, task) -> float``, lower is better (e.g. EPIC distance to the task's teacher).
        steps: Step counts to try (``0`` is added if missing); default ``method.candidate_steps()``.
        lrs: Learning rates to try; default ``method.candidate_lrs()``.
        params: Parameter choices; default ``method.candidate_params()``.
        prior_weights: Prior strengths to try; default ``method.candidate_prior_weights()``.
        seeds: Draws of the ``k`` items per task.
        draw: ``draw(pool, k, seed) -> Objective``; default ``k`` distinct random items of the pool. A custom draw
            can collect fresh feedback, e.g. ``k`` labels along demonstrations.
        max_widen: Largest number of widening rounds (``0``: the grid as given).

    Returns:
        A :class:`BudgetSelection`.

    Raises:
        ValueError: If ``validation`` is empty, ``k < 1``, ``max_widen < 0`` or a pool has fewer than ``k`` items.
    """
    if not validation:
        raise ValueError("validation is empty: pass (task, pool) pairs from the train split")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} is not allowed: use an int >= 1")
    if isinstance(max_widen, bool) or not isinstance(max_widen, (int, np.integer)) or max_widen < 0:
        raise ValueError(f"max_widen={max_widen!r} is not allowed: use an int >= 0")
    if draw is None:
        for _, pool in validation:
            if len(pool) < k:
                raise ValueError(f"a validation pool has {len(pool)} items: need at least k={k}")
    draw = draw or _draw_k
    start = time.perf_counter()
    steps = method.candidate_steps() if steps is None else steps
    lrs = method.candidate_lrs() if lrs is None else lrs
    prior_weights = method.candidate_prior_weights() if prior_weights is None else prior_weights
    step_list = sorted({0, *(int(s) for s in steps)})
    lr_list = sorted({float(v) for v in lrs})
    weight_list = sorted({float(w) for w in prior_weights})
    params = list(params) if params is not None else method.candidate_params()
    # results[(steps, lr, params, w)] -> list of scores
    results: dict[tuple[int, float, Any, float], list[float]] = {}
    runs = [(task, draw(pool, int(k), int(seed))) for task, pool in validation for seed in seeds]
    run_tasks = [task for task, _ in runs]
    # "no adaptation" is the start model a run would get: zero-shot for most methods, the inferred one for a method
    # that reads its feedback before any gradient step (ReuseMethod.start_models)
    starts = method.adapt_many([t for _, t in runs], NO_ADAPTATION, run_tasks, on_divergence="stop")
    zero_scores = [float(score(m, task)) for m, task in zip(starts, run_tasks, strict=True)]
    zero_scores = [v if math.isfinite(v) else math.inf for v in zero_scores]

    def evaluate(p: Any, w: float, run_lrs: list[float], checks: list[int]) -> None:
        """Run (p, w) at every lr in one batched call up to max(checks); record the scores not yet known."""
        if not checks or not run_lrs:
            return
        known = set(results)
        # runs are (lr, task, seed), lr-major
        budgets = [AdaptationBudget(max(checks), lr, p, w) for lr in run_lrs for _ in runs]

        def record(step: int, models: list[RewardModel]) -> None:
            if step <= 0:
                return
            for i, m in enumerate(models):
                key = (step, run_lrs[i // len(runs)], p, w)
                if key in known:
                    continue
                value = float(score(m, run_tasks[i % len(runs)]))
                results.setdefault(key, []).append(value if math.isfinite(value) else math.inf)

        method.adapt_many(
            [t for _, t in runs] * len(run_lrs),
            budgets,
            run_tasks * len(run_lrs),
            checkpoints=checks,
            on_checkpoint=record,
            on_divergence="stop",
        )

    checks = [s for s in step_list if s > 0]
    for p in params:
        for w in weight_list:
            evaluate(p, w, lr_list, checks)
    no_adapt = float(np.mean(zero_scores))
    best, best_score = _best(results, no_adapt)
    widenings: list[dict[str, Any]] = []
    for _ in range(int(max_widen)):
        if best.steps == 0:
            break  # no adaptation won: nothing to widen around
        added = _widen(best, step_list, lr_list, weight_list)
        if not any(added.values()):
            break
        widenings.append({"edge_of": best.to_dict(), **added})
        lr_list = sorted({*lr_list, *added["lrs"]})
        weight_list = sorted({*weight_list, *added["prior_weights"]})
        # a line search around the winner on each axis, not their cross product (the cost of a round is then about
        # one run of the winner to the added steps): an added lr or weight runs over the grid's old step counts
        grid_checks = [s for s in step_list if s > 0]
        step_list = sorted({*step_list, *added["steps"]})
        if added["steps"]:
            evaluate(best.params, best.prior_weight, [best.lr], [s for s in step_list if s > 0])
        evaluate(best.params, best.prior_weight, added["lrs"], grid_checks)
        for w in added["prior_weights"]:
            evaluate(best.params, w, [best.lr], grid_checks)
        best, best_score = _best(results, no_adapt)
    table = [{"budget": NO_ADAPTATION.to_dict(), "score": no_adapt, "scores": zero_scores}]
    for (s, lr, p, w), vals in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3])):
        table.append({"budget": AdaptationBudget(s, lr, p, w).to_dict(), "score": float(np.mean(vals)), "scores": vals})
    return BudgetSelection(best, best_score, no_adapt, int(k), table, time.perf_counter() - start, widenings)


def _best(
    results: dict[tuple[int, float, Any, float], list[float]], no_adapt: float
) -> tuple[AdaptationBudget, float]:
    """The lowest mean score (ties: fewer steps, then the order of the sorted table); "no adaptation" included."""
    best, best_score = NO_ADAPTATION, no_adapt
    for (s, lr, p, w), vals in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3])):
        mean = float(np.mean(vals))
        if mean < best_score - 1e-12 or (math.isclose(mean, best_score) and s < best.steps):
            best, best_score = AdaptationBudget(s, lr, p, w), mean
    return best, best_score


def _widen(
    best: AdaptationBudget, step_list: list[int], lr_list: list[float], weight_list: list[float]
) -> dict[str, list[Any]]:
    """The values one widening adds around ``best`` on each axis where it sits on the edge of the grid."""
    steps = [best.steps * STEP_FACTOR] if best.steps >= max(step_list) else []
    lrs = []
    if math.isclose(best.lr, max(lr_list)):
        lrs.append(best.lr * RATE_FACTOR)
    if math.isclose(best.lr, min(lr_list)):
        lrs.append(best.lr / RATE_FACTOR)
    weights = []
    positive = [w for w in weight_list if w > 0]
    if best.prior_weight > 0:
        if math.isclose(best.prior_weight, max(positive)):
            weights.append(best.prior_weight * RATE_FACTOR)
        if math.isclose(best.prior_weight, min(positive)) and 0.0 not in weight_list:
            weights.append(best.prior_weight / RATE_FACTOR)
    return {"steps": steps, "lrs": lrs, "prior_weights": weights}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _draw_k(pool: Objective, k: int, seed: int) -> Objective:
    idx = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
    return pool.subset(np.sort(idx))
