"""Labelled transitions: :func:`collect_transitions`, one teacher label per ``(s, a, s')``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardshare.envs.planner import N_ACTIONS
from rewardshare.feedback.collection.options import (
    CollectionOptions,
    Coverage,
    EnvOptions,
    check_expert,
    check_int,
    check_options,
    normalize_coverage,
    split_count,
)
from rewardshare.feedback.collection.rollouts import (
    TaskGroup,
    TaskLike,
    concat,
    envs_per_task,
    make_metadata,
    make_policy,
    plan,
    progress_bar,
    rollout,
)
from rewardshare.feedback.datasets import Transitions


def collect_transitions(
    tasks: TaskLike | Sequence[TaskLike],
    n: int,
    *,
    coverage: Coverage = "uniform",
    reward: str | None = None,
    noise: float | None = None,
    flip_prob: float | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
    expert_epsilon: float = 0.0,
    expert_temperature: float | None = None,
    seed: int = 0,
    env: EnvOptions | None = None,
    options: CollectionOptions | None = None,
) -> Transitions:
    """Collect ``n`` labelled transitions, split evenly over the tasks.

    Args:
        tasks: A :class:`GoalTask`, a :class:`Teacher`, or a sequence of them (e.g. ``family.train``). GoalTasks get
            a fresh teacher each (seeded from ``seed`` and the task's position); Teachers are used and charged as
            they are.
        n: Total number of labels (one query each), >= 1.
        coverage: ``"uniform"``, ``"random"``, ``"expert"`` or a mixture dict (see
            :mod:`rewardshare.feedback.collection`).
        reward, noise, flip_prob: Teacher options for GoalTasks (defaults ``"dense"``, 0, 0).
        teacher_kwargs: Further :class:`Teacher` arguments for GoalTasks (``budget``, ``goal_reward``, ...).
        expert_epsilon, expert_temperature: The expert's noise for ``"expert"`` coverage.
        seed: Seeds the env, the policies, the uniform draws and new teachers.
        env: The rollout env (:class:`EnvOptions`: observation mode, absorbing goal, horizon); default ``coords``
            observations, terminating episodes.
        options: How the collection runs (:class:`CollectionOptions`: vector-env size, progress bar, env id and
            extra metadata recorded).

    Returns:
        A :class:`Transitions` with items grouped by task (in ``tasks`` order) and coverage strategy.

    Raises:
        ValueError: On invalid arguments.
        TypeError: If ``env`` or ``options`` is not its parameter object.
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    n = check_int("n", n, 1)
    cov = normalize_coverage(coverage)
    check_expert(expert_epsilon, expert_temperature)
    env, options = check_options(env, options)
    teachers, per_task, groups = plan(
        tasks, n, seed, {"reward": reward, "noise": noise, "flip_prob": flip_prob}, teacher_kwargs, env
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    names = list(cov)
    shares = {k: split_count(per_task[k], [cov[c] for c in names]) for k in range(len(teachers))}
    # picked[(task, coverage)] = (group, local task index, flat cell, action, flat next cell, done)
    picked: dict[tuple[int, str], tuple[TaskGroup, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    with progress_bar(n, "labels", options.progress) as bar:
        for ci, name in enumerate(names):
            for group in groups:
                need = np.array([shares[k][ci] for k in group.members], dtype=np.int64)
                if need.sum() == 0:
                    continue
                if name == "uniform":
                    for j, k in enumerate(group.members):
                        picked[(k, name)] = (group, j, *_uniform_pairs(group, j, int(need[j]), env.absorbing_goal, rng))
                    bar.update(int(need.sum()))
                else:
                    sub_seed = int(rng.integers(2**31))
                    for j, sel in enumerate(_rollout_transitions(group, name, need, options.num_envs, sub_seed, rng,
                                                                 expert_epsilon, expert_temperature, bar.update)):
                        picked[(group.members[j], name)] = (group, j, *sel)

    parts: list[dict[str, np.ndarray]] = []
    for k, teacher in enumerate(teachers):
        for name in names:
            if (k, name) not in picked:
                continue
            group, j, cell, action, next_cell, done = picked[(k, name)]
            fields = group.step_fields(j, cell, action, next_cell)
            label = teacher.label(fields["agent_pos"], action, fields["next_agent_pos"])
            parts.append({**fields, "done": done, "label": label, "task_id": np.full(cell.shape[0], teacher.task.id)})
    arrays = concat(parts)
    meta = make_metadata("transitions", teachers, cov, seed, env, options, n,
                         expert_epsilon=expert_epsilon, expert_temperature=expert_temperature)
    return Transitions(metadata=meta, **arrays)


def _uniform_pairs(
    group: TaskGroup, j: int, need: int, absorbing_goal: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (free cell, action) pair of task ``j`` equally often, the remainder as distinct random pairs."""
    layout = group.layout
    goal = int(group.goal_cells[j])
    free = np.array([r * layout.width + c for r, c in layout.free_cells], dtype=np.int64)
    if not absorbing_goal:
        free = free[free != goal]
    pairs_cell = np.repeat(free, N_ACTIONS)
    pairs_action = np.tile(np.arange(N_ACTIONS, dtype=np.int64), free.size)
    reps, rest = divmod(need, pairs_cell.size)
    idx = np.concatenate([np.tile(np.arange(pairs_cell.size), reps),
                          np.sort(rng.choice(pairs_cell.size, size=rest, replace=False))])
    cell, action = pairs_cell[idx], pairs_action[idx]
    next_cell = group.teachers[j].next_table[cell, action]
    at_goal = cell == goal
    next_cell = np.where(at_goal, goal, next_cell)  # absorbing: the goal keeps the agent
    done = (next_cell == goal) & ~at_goal & (not absorbing_goal)
    return cell, action, next_cell, done


def _rollout_transitions(
    group: TaskGroup,
    kind: str,
    need: np.ndarray,
    num_envs: int | None,
    seed: int,
    rng: np.random.Generator,
    epsilon: float,
    temperature: float | None,
    on_progress: Callable[[int], Any],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Roll out ``kind`` policies until every task of the group has ``need[j]`` real transitions; take the first."""
    n_tasks = len(group.members)
    per = envs_per_task(int(need.max()), n_tasks, num_envs, 256)  # fewer, longer rollouts: resets cost more
    env_task = np.tile(np.arange(n_tasks), per)
    counts = np.zeros(n_tasks, dtype=np.int64)

    def stop(step: dict[str, np.ndarray]) -> bool:
        before = np.minimum(counts, need).sum()
        counts[:] += np.bincount(env_task[step["episode"] >= 0], minlength=n_tasks)
        on_progress(int(np.minimum(counts, need).sum() - before))
        return bool((counts >= need).all())

    policy = make_policy(kind, group, env_task, rng, epsilon, temperature)
    trace = rollout(group, env_task, policy, seed, stop)
    valid = (trace.episode >= 0).reshape(-1)
    task_flat = np.broadcast_to(env_task, trace.episode.shape).reshape(-1)
    out = []
    for j in range(n_tasks):
        idx = np.flatnonzero(valid & (task_flat == j))[: need[j]]  # step-major order: the earliest transitions
        out.append((trace.cell.reshape(-1)[idx], trace.action.reshape(-1)[idx], trace.next_cell.reshape(-1)[idx],
                    trace.terminated.reshape(-1)[idx]))
    return out
