"""Demonstrations: :func:`collect_demonstrations`, whole expert episodes over several noise levels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardshare.feedback.collection.options import (
    NOISE_KINDS,
    CollectionOptions,
    EnvOptions,
    check_int,
    check_options,
    split_count,
)
from rewardshare.feedback.collection.rollouts import (
    TaskGroup,
    TaskLike,
    check_budgets,
    concat,
    envs_per_task,
    make_metadata,
    make_policy,
    plan,
    progress_bar,
    rollout,
)
from rewardshare.feedback.datasets import Demonstrations


def collect_demonstrations(
    tasks: TaskLike | Sequence[TaskLike],
    n_episodes: int | None = None,
    *,
    budget: int | None = None,
    noise_levels: Sequence[float] = (0.0,),
    noise_kind: str = "epsilon",
    reward: str | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    env: EnvOptions | None = None,
    options: CollectionOptions | None = None,
) -> Demonstrations:
    """Collect expert demonstrations, whole episodes from the env's random starts, over several noise levels.

    Give either ``n_episodes`` (split evenly over tasks, then over noise levels) or ``budget``, a number of
    demonstrated steps (split the same way; each (task, level) keeps its episodes in completion order while they fit).
    Each demonstrated step costs one query. Episodes end at the goal, or at ``env.max_steps`` (truncated; with
    ``env.absorbing_goal`` every episode lasts ``max_steps`` steps).

    Args:
        tasks: As in :func:`collect_transitions`.
        n_episodes: Total number of episodes, >= 1.
        budget: Total number of demonstrated steps, >= 1 (instead of ``n_episodes``).
        noise_levels: The demonstrators' epsilons (in [0, 1]) or temperatures (>= 0; 0 is greedy).
        noise_kind: ``"epsilon"`` or ``"temperature"``.
        reward: Teacher reward for GoalTasks, used for ``episode_return``.
        teacher_kwargs, seed, env, options: As in :func:`collect_transitions`.

    Returns:
        A :class:`Demonstrations` with episodes grouped by task, then noise level, in completion order.

    Raises:
        ValueError: On invalid arguments (including neither or both of ``n_episodes`` and ``budget``).
        TypeError: If ``env`` or ``options`` is not its parameter object.
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    if (n_episodes is None) == (budget is None):
        raise ValueError(f"n_episodes={n_episodes!r}, budget={budget!r}: give exactly one of them")
    by_budget = budget is not None
    total = check_int("budget" if by_budget else "n_episodes", budget if by_budget else n_episodes, 1)
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind={noise_kind!r} is not allowed: use one of {NOISE_KINDS}")
    levels = [float(x) for x in noise_levels]
    if not levels:
        raise ValueError("noise_levels=[] is not allowed: give at least one level, e.g. (0.0,)")
    for x in levels:
        if not (0 <= x <= 1 if noise_kind == "epsilon" else 0 <= x < math.inf):
            allowed = "in [0, 1]" if noise_kind == "epsilon" else "finite and >= 0"
            raise ValueError(
                f"noise_levels holds {x!r}, which is not allowed for noise_kind={noise_kind!r}: use values {allowed}"
            )
    env, options = check_options(env, options)
    # with n_episodes the cost (demonstrated steps) is known only after the rollouts; it is checked then
    teachers, per_task, groups = plan(
        tasks, total, seed, {"reward": reward}, teacher_kwargs, env, check_budget=by_budget
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    n_levels = len(levels)
    quota = {k: split_count(per_task[k], [1.0] * n_levels) for k in range(len(teachers))}
    episodes: dict[int, list[tuple[int, list[tuple[TaskGroup, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                  bool]]]]] = {}
    with progress_bar(total, "demo steps" if by_budget else "episodes", options.progress) as bar:
        for group in groups:
            episodes.update(_demo_episodes(group, levels, noise_kind, {k: quota[k] for k in group.members}, by_budget,
                                           options.num_envs, int(rng.integers(2**31)), rng, bar))

    parts: list[dict[str, np.ndarray]] = []
    ep_parts: list[dict[str, np.ndarray]] = []
    kept = {k: [(lvl, ep) for lvl, eps in episodes.get(k, []) for ep in eps] for k in range(len(teachers))}
    steps = [sum(ep[2].size for _, ep in kept[k]) for k in range(len(teachers))]
    check_budgets(teachers, steps)  # with n_episodes, the steps to pay for are known only now
    for k, teacher in enumerate(teachers):
        teacher.spend(steps[k])  # one query per demonstrated step
        for lvl, (group, j, cell, action, next_cell, term, success) in kept[k]:
            fields = group.step_fields(j, cell, action, next_cell)
            parts.append({**fields, "done": term, "task_id": np.full(cell.size, teacher.task.id)})
            ret = teacher.true_reward(fields["agent_pos"], action, fields["next_agent_pos"]).sum()
            ep_parts.append({
                "episode_task_id": np.array([teacher.task.id]),
                "episode_return": np.array([ret], dtype=np.float32),
                "demonstrator_noise": np.array([levels[lvl]], dtype=np.float32),
                "episode_success": np.array([success]),
            })
    if not parts:
        raise ValueError(
            f"budget={budget!r} is too small: no whole episode fits in any task's share; give a larger budget"
        )
    arrays = {**concat(parts), **concat(ep_parts)}
    arrays["episode"] = np.repeat(np.arange(len(parts), dtype=np.int64), [p["action"].size for p in parts])
    meta = make_metadata("demonstrations", teachers, {"expert": 1.0}, seed, env, options, sum(steps),
                         noise_kind=noise_kind, noise_levels=levels,
                     requested={"budget": budget} if by_budget else {"n_episodes": n_episodes})
    return Demonstrations(metadata=meta, **arrays)


def _demo_episodes(
    group: TaskGroup,
    levels: list[float],
    noise_kind: str,
    quota: dict[int, list[int]],
    by_budget: bool,
    num_envs: int | None,
    seed: int,
    rng: np.random.Generator,
    bar: Any,
) -> dict[int, list[tuple[int, list[Any]]]]:
    """Roll out each (task, level) demonstrator until its quota (episodes or steps) is filled.

    Episodes are considered in an order fixed before their lengths are known — the first episode of each of the
    slot's sub-envs, then the second of each, ... — so short episodes are not favoured by finishing first.
    """
    n_tasks, n_levels = len(group.members), len(levels)
    slots = n_tasks * n_levels
    want = np.array([quota[k][lvl] for k in group.members for lvl in range(n_levels)], dtype=np.int64)
    per = envs_per_task(int(want.max()), slots, num_envs, 16 if by_budget else 1)
    env_slot = np.tile(np.arange(slots), per)  # slot = task * n_levels + level; slot s owns sub-envs s + slots*m
    env_task, env_level = env_slot // n_levels, env_slot % n_levels
    noise = np.array(levels)[env_level]
    if noise_kind == "epsilon":
        policy = make_policy("expert", group, env_task, rng, epsilon=noise)
    else:
        policy = make_policy("expert", group, env_task, rng, temperature=noise)
    done_eps: list[list[tuple[int, int]]] = [[] for _ in range(env_slot.size)]  # env -> [(end step, length)]
    open_len = np.zeros(env_slot.size, dtype=np.int64)
    filled = np.zeros(slots, dtype=np.int64)  # episodes or steps kept
    closed = want == 0  # full, or (by budget) its next episode does not fit
    cursor = np.zeros(slots, dtype=np.int64)  # position p in the slot's order: rank p // per, sub-env p % per
    kept: dict[int, list[tuple[int, int, int]]] = {s: [] for s in range(slots)}  # slot -> [(env, end, length)]
    t = [0]

    def stop(step: dict[str, np.ndarray]) -> bool:
        live = step["episode"] >= 0
        open_len[live] += 1
        for i in np.flatnonzero(live & (step["terminated"] | step["truncated"])).tolist():
            done_eps[i].append((t[0], int(open_len[i])))
            open_len[i] = 0
        t[0] += 1
        for s in np.flatnonzero(~closed).tolist():
            while not closed[s]:
                rank, m = divmod(int(cursor[s]), per)
                i = s + slots * m
                if len(done_eps[i]) <= rank:
                    break  # the next episode in order is still running
                end, length = done_eps[i][rank]
                cost = length if by_budget else 1
                if filled[s] + cost > want[s]:
                    closed[s] = True
                    break
                kept[s].append((i, end, length))
                filled[s] += cost
                bar.update(cost)
                cursor[s] += 1
                closed[s] = filled[s] >= want[s]
        return bool(closed.all())

    trace = rollout(group, env_task, policy, seed, stop)
    out: dict[int, list[tuple[int, list[Any]]]] = {}
    for j, k in enumerate(group.members):
        per_level = []
        for lvl in range(n_levels):
            eps = []
            for i, end, length in kept[j * n_levels + lvl]:
                sl = slice(end - length + 1, end + 1)
                eps.append((group, j, trace.cell[sl, i], trace.action[sl, i], trace.next_cell[sl, i],
                            trace.terminated[sl, i], bool(trace.next_cell[end, i] == group.goal_cells[j])))
            per_level.append((lvl, eps))
        out[k] = per_level
    return out
