"""Segment preferences: :func:`collect_preferences`, one teacher comparison per pair of segments of one task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
from rewardshare.feedback.datasets import Preferences


def collect_preferences(
    tasks: TaskLike | Sequence[TaskLike],
    n: int,
    *,
    segment_length: int = 10,
    coverage: Coverage = "random",
    reward: str | None = None,
    beta: float | None = None,
    flip_prob: float | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
    expert_epsilon: float = 0.0,
    expert_temperature: float | None = None,
    seed: int = 0,
    env: EnvOptions | None = None,
    options: CollectionOptions | None = None,
) -> Preferences:
    """Collect ``n`` preferences between pairs of segments of length ``segment_length``, split evenly over tasks.

    Both segments of a pair come from the same task. Each segment is drawn from a coverage strategy by its weight
    (so mixtures produce cross-strategy pairs, e.g. expert vs random), then the task's segments are shuffled and
    paired. A segment starts on a cell other than the goal and lies within one episode. Segments that reach the goal
    continue with absorbing steps on the goal (reward 0); without ``absorbing_goal`` those padding steps and the
    terminal step have ``done=True``, with it ``done`` is always False, as in the env.

    Args:
        tasks: As in :func:`collect_transitions`.
        n: Total number of comparisons (one query each), >= 1.
        segment_length: ``L`` >= 1; must not exceed ``max_steps``.
        coverage: ``"random"`` (windows of random-policy episodes), ``"expert"`` (windows of expert episodes),
            ``"uniform"`` (uniform random start cells, random actions) or a mixture dict.
        reward, beta, flip_prob: Teacher options for GoalTasks (defaults ``"dense"``, ``inf``, 0).
        teacher_kwargs, expert_epsilon, expert_temperature, seed, env, options: As in :func:`collect_transitions`;
            ``env.max_steps`` must be at least ``segment_length``.

    Returns:
        A :class:`Preferences` with items grouped by task.

    Raises:
        ValueError: On invalid arguments.
        TypeError: If ``env`` or ``options`` is not its parameter object.
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    n = check_int("n", n, 1)
    length = check_int("segment_length", segment_length, 1)
    cov = normalize_coverage(coverage)
    check_expert(expert_epsilon, expert_temperature)
    env, options = check_options(env, options)
    teachers, per_task, groups = plan(
        tasks, n, seed, {"reward": reward, "flip_prob": flip_prob, "beta": beta}, teacher_kwargs, env
    )
    for group in groups:
        horizon = env.max_steps if env.max_steps is not None else 4 * group.layout.height * group.layout.width
        if length > horizon and set(cov) - {"uniform"}:
            raise ValueError(f"segment_length={length} is not allowed: it must be <= max_steps={horizon}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    names = list(cov)
    # segments[k][coverage] = (cells (m, L), actions (m, L), next cells (m, L))
    segments: dict[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {k: {} for k in range(len(teachers))}
    seg_share = {k: split_count(2 * per_task[k], [cov[c] for c in names]) for k in range(len(teachers))}
    with progress_bar(n, "comparisons", options.progress) as bar:
        for ci, name in enumerate(names):
            for group in groups:
                need = np.array([seg_share[k][ci] for k in group.members], dtype=np.int64)
                if need.sum() == 0:
                    continue
                sub_seed = int(rng.integers(2**31))
                found = _segments(group, name, need, length, options.num_envs, sub_seed, rng, expert_epsilon,
                                  expert_temperature)
                for j, k in enumerate(group.members):
                    segments[k][name] = found[j]
                bar.update(int(need.sum()) // 2)

    group_of = {k: (g, j) for g in groups for j, k in enumerate(g.members)}
    parts = []
    for k, teacher in enumerate(teachers):
        if per_task[k] == 0:
            continue
        group, j = group_of[k]
        cell, action, next_cell = (np.concatenate([segments[k][c][i] for c in names if c in segments[k]])
                                   for i in range(3))
        order = rng.permutation(cell.shape[0])
        a, b = order[: per_task[k]], order[per_task[k] :]
        goal = group.goal_cells[j]
        # terminal and padding steps are "done" in a terminating env; an absorbing env never terminates
        done = ((next_cell == goal) | (cell == goal)) & (not env.absorbing_goal)
        sides = {side: {**group.step_fields(j, cell[sel], action[sel], next_cell[sel]), "done": done[sel]}
                 for side, sel in (("a", a), ("b", b))}
        sa, sb = sides["a"], sides["b"]
        label = teacher.prefer(sa["agent_pos"], sa["action"], sa["next_agent_pos"],
                               sb["agent_pos"], sb["action"], sb["next_agent_pos"])
        part = {f"{key}_{side}": value for side, side_fields in sides.items() for key, value in side_fields.items()}
        # a skipped query (B-Pref "skip": both segments too poor to judge) was paid for but gives no label
        keep = ~np.isnan(label)
        part = {key: value[keep] for key, value in part.items()}
        parts.append({**part, "label": label[keep], "task_id": np.full(int(keep.sum()), teacher.task.id)})
    arrays = concat(parts)
    meta = make_metadata("preferences", teachers, cov, seed, env, options, n, segment_length=length,
                         expert_epsilon=expert_epsilon, expert_temperature=expert_temperature)
    return Preferences(metadata=meta, **arrays)


def _segments(
    group: TaskGroup,
    kind: str,
    need: np.ndarray,
    length: int,
    num_envs: int | None,
    seed: int,
    rng: np.random.Generator,
    epsilon: float,
    temperature: float | None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``need[j]`` distinct segments of ``length`` steps for each task ``j`` of the group."""
    n_tasks = len(group.members)
    # windows overlap, so ask for twice as many candidate windows as segments (except one-window uniform episodes)
    want = need if kind == "uniform" else 2 * need
    # a uniform episode gives one window; a long episode gives many
    per = envs_per_task(int(want.max()), n_tasks, num_envs, 8 if kind == "uniform" else 128)
    env_task = np.tile(np.arange(n_tasks), per)
    goal_of_env = group.goal_cells[env_task]
    counts = np.zeros(n_tasks, dtype=np.int64)
    history: list[dict[str, np.ndarray]] = []

    def stop(step: dict[str, np.ndarray]) -> bool:
        history.append(step)
        if len(history) >= length:  # windows ending at this step
            first = history[-length]
            ok = (first["episode"] >= 0) & (first["episode"] == step["episode"]) & (first["cell"] != goal_of_env)
            counts[:] += np.bincount(env_task[ok], minlength=n_tasks)
        return bool((counts >= want).all())

    # a window starting on the last step before the goal ends after `length` steps on it; then reset the sub-env
    def early_reset(next_cell: np.ndarray, at_goal: np.ndarray) -> np.ndarray:
        return at_goal >= length

    overrides: dict[str, Any] = {"absorbing_goal": True}  # padding after the goal = the absorbing env's steps
    if kind == "uniform":
        overrides["max_steps"] = length
    policy = make_policy("random" if kind == "uniform" else kind, group, env_task, rng, epsilon, temperature)
    trace = rollout(group, env_task, policy, seed, stop, overrides, early_reset if kind != "uniform" else None)
    steps = trace.episode.shape[0]
    ep = trace.episode
    ok = (ep[: steps - length + 1] >= 0) & (ep[: steps - length + 1] == ep[length - 1 :])
    ok &= trace.cell[: steps - length + 1] != goal_of_env
    t_idx, i_idx = np.nonzero(ok)
    out = []
    offsets = np.arange(length)
    for j in range(n_tasks):
        mine = np.flatnonzero(env_task[i_idx] == j)
        chosen = mine[np.sort(rng.choice(mine.size, size=int(need[j]), replace=False))]
        tt = t_idx[chosen][:, None] + offsets
        ii = np.broadcast_to(i_idx[chosen][:, None], tt.shape)
        out.append((trace.cell[tt, ii], trace.action[tt, ii], trace.next_cell[tt, ii]))
    return out
