"""Choosing how far to adapt: the adaptation budget of a method, chosen on validation tasks.

:func:`select_budget` tries every candidate budget of a method (steps x learning rate x trained parameters x prior
weight) on *validation* tasks (drawn from the ``train`` split, never ``held_out``) with the same ``k`` the method will
adapt with, and always includes "do not adapt" (``steps=0``), so the chosen budget is never worse than not adapting
on those validation tasks.
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
    """

    budget: AdaptationBudget
    score: float
    no_adapt_score: float
    k: int
    table: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

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
) -> BudgetSelection:
    """Choose the adaptation budget of ``method`` for ``k`` target items on validation tasks.

    For every validation task and seed, ``k`` items are drawn from the task's pool; every (lr, params,
    prior_weight) is run once up to ``max(steps)`` and scored at each step count in ``steps``. The budget with the
    lowest mean score wins; ``steps=0`` (no adaptation) is always a candidate, so the winner is never worse than not
    adapting *on these validation tasks*. Pass validation tasks from the ``train`` split only (never ``held_out``).

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

    Returns:
        A :class:`BudgetSelection`.

    Raises:
        ValueError: If ``validation`` is empty, ``k < 1`` or a pool has fewer than ``k`` items.
    """
    if not validation:
        raise ValueError("validation is empty: pass (task, pool) pairs from the train split")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} is not allowed: use an int >= 1")
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
    max_steps = step_list[-1]
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
    checks = [s for s in step_list if s > 0]
    lrs = [float(v) for v in lrs]
    for p in params:
        for w in prior_weights:
            if max_steps == 0:
                break
            # every learning rate in one batched call: runs are (lr, task, seed), lr-major
            budgets = [AdaptationBudget(max_steps, lr, p, w) for lr in lrs for _ in runs]

            def record(step: int, models: list[RewardModel], p: Any = p, w: float = w) -> None:
                if step > 0:
                    for i, m in enumerate(models):
                        lr = lrs[i // len(runs)]
                        value = float(score(m, run_tasks[i % len(runs)]))
                        results.setdefault((step, lr, p, w), []).append(value if math.isfinite(value) else math.inf)

            method.adapt_many(
                [t for _, t in runs] * len(lrs),
                budgets,
                run_tasks * len(lrs),
                checkpoints=checks,
                on_checkpoint=record,
                on_divergence="stop",
            )
    no_adapt = float(np.mean(zero_scores))
    table = [{"budget": NO_ADAPTATION.to_dict(), "score": no_adapt, "scores": zero_scores}]
    best, best_score = NO_ADAPTATION, no_adapt
    for (s, lr, p, w), vals in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3])):
        mean = float(np.mean(vals))
        budget = AdaptationBudget(s, lr, p, w)
        table.append({"budget": budget.to_dict(), "score": mean, "scores": vals})
        if mean < best_score - 1e-12 or (math.isclose(mean, best_score) and s < best.steps):
            best, best_score = budget, mean
    return BudgetSelection(best, best_score, no_adapt, int(k), table, time.perf_counter() - start)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _draw_k(pool: Objective, k: int, seed: int) -> Objective:
    idx = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
    return pool.subset(np.sort(idx))
