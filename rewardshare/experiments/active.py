"""Actively chosen target labels for the learning-curve benchmark (``BenchConfig.query``).

A reuse method that holds a belief about the task (:data:`BELIEF_METHODS`: the latent model, whose posterior over
its task latent is a :class:`~rewardshare.rewardmodels.reuse.queries.LatentBelief`) may choose its ``k`` target
labels instead of receiving a uniform draw: :func:`active_labels` asks the run's teacher one label at a time from
the pool of every ``(cell, action)`` pair of the grid (:meth:`LabelPool.grid`), chosen by the config's strategy
(``"disagreement"`` or ``"information_gain"``, :func:`~rewardshare.rewardmodels.reuse.queries.active_feedback`),
conditioning the belief after each. Methods without a belief (scratch, transfer, ...) keep the uniform draw, so a
comparison with scratch is at the same budget ``k``: k actively chosen labels vs k uniformly drawn ones.

The names here are plain data so that :mod:`~rewardshare.experiments.config` can read them without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Values of ``BenchConfig.query``: ``"uniform"`` is the benchmark's plain draw (``collect_transitions`` with
#: uniform coverage, as before the field existed); the others are strategies of
#: :mod:`rewardshare.rewardmodels.reuse.queries` (whose ``STRATEGIES`` hold the same names).
QUERY_MODES: tuple[str, ...] = ("uniform", "disagreement", "information_gain")

#: Reuse methods whose pre-trained model gives a belief to choose queries with (``queries.as_belief``).
BELIEF_METHODS: tuple[str, ...] = ("latent",)


def uses_active(config: Any, method: str) -> bool:
    """Whether ``method``'s target labels under ``config`` are chosen actively (a belief method, ``query`` not
    ``"uniform"``)."""
    return config.query != "uniform" and method in BELIEF_METHODS


def active_labels(config: Any, method: Any, task: Any, k: int, seed: int) -> Any:
    """``k`` labels of ``task`` chosen by ``config.query`` under ``method``'s belief.

    Args:
        config: The sweep's :class:`~rewardshare.experiments.config.BenchConfig` (teacher reward and noise, the
            env's observation mode and horizon, the strategy).
        method: A pre-trained reuse method with a belief (a :class:`~rewardshare.rewardmodels.reuse.LatentTask`).
        task: The task to ask about (its teacher answers).
        k: Number of labels, ``1 <= k <=`` the grid's ``(cell, action)`` pairs.
        seed: Seeds the teacher's noise, the belief's inference and the tie-breaking.

    Returns:
        A :class:`~rewardshare.feedback.Transitions` of ``k`` labels whose metadata records ``query_strategy`` and
        the chosen ``query_indices`` of the grid pool.
    """
    from rewardshare.feedback import EnvOptions, Teacher
    from rewardshare.rewardmodels.reuse.queries import LabelPool, active_feedback

    teacher = Teacher(task, reward=config.teacher_reward, noise=config.teacher_noise, seed=int(seed))
    env = EnvOptions(obs_mode=config.obs_mode, max_steps=config.max_steps)
    pool = LabelPool.grid(task.resolve_layout())
    return active_feedback(method, teacher, pool, int(k), config.query, seed=int(seed), env=env)


def active_draw(config: Any, method: Any, to_objective: Callable[[Any], Any]) -> Callable[[Any, int, int], Any]:
    """``select_budget``'s draw when validation labels are chosen actively: its "pool" is the validation task
    itself, and a draw asks ``k`` labels of it with :func:`active_labels` (seeded by the selection seed).

    Args:
        config: The sweep's config.
        method: The pre-trained method whose belief chooses the queries.
        to_objective: Turns the labels into the objective the method adapts on.
    """

    def draw(task: Any, k: int, seed: int) -> Any:
        return to_objective(active_labels(config, method, task, k, seed))

    return draw


__all__ = ["BELIEF_METHODS", "QUERY_MODES", "active_draw", "active_labels", "uses_active"]
