"""The machinery every collector shares: teachers per task, tasks grouped by layout, vector-env rollouts, metadata.

Rollouts run in :class:`~rewardshare.envs.GridGoalVectorEnv` (one per layout), with ``goals_per_env`` so a single
batch holds every task; the env drives starts, dynamics, truncation, absorbing goals and autoresets, and the
collector records cells and actions. Observations are then looked up from per-goal tables built with
``GridGoalEnv.observation_for`` (the same arrays the env emits), so recording stays small and fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardshare._version import __version__
from rewardshare.envs.grid_env import GridGoalEnv
from rewardshare.envs.layouts import Layout
from rewardshare.envs.planner import N_ACTIONS
from rewardshare.envs.tasks import GoalTask, TaskFamily
from rewardshare.envs.vector_env import GridGoalVectorEnv
from rewardshare.feedback.collection.options import DEFAULT_ENV_ID, CollectionOptions, EnvOptions
from rewardshare.feedback.teacher import BudgetExhausted, Teacher, expert_actions

MAX_ROLLOUT_STEPS = 100_000  # a guard against collections that cannot finish (e.g. unreachable goals)

TaskLike = GoalTask | Teacher


def make_teachers(
    tasks: TaskLike | Sequence[TaskLike],
    seed: int,
    reward: str | None = None,
    noise: float | None = None,
    flip_prob: float | None = None,
    beta: float | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
) -> list[Teacher]:
    """Teachers for the tasks: given Teachers are used as they are; GoalTasks get a new Teacher each."""
    if isinstance(tasks, TaskFamily):
        raise TypeError(f"tasks={tasks.name!r} is a TaskFamily: pass one of its splits, e.g. family.train or "
                        "family.split('held_out')")
    items = [tasks] if isinstance(tasks, (GoalTask, Teacher)) else list(tasks)
    if not items:
        raise ValueError("tasks=[] is not allowed: give a GoalTask, a Teacher or a non-empty sequence of them")
    options = {"reward": reward, "noise": noise, "flip_prob": flip_prob, "beta": beta}
    options = {k: v for k, v in options.items() if v is not None}
    options.update(teacher_kwargs or {})
    out: list[Teacher] = []
    for k, item in enumerate(items):
        if isinstance(item, Teacher):
            if options:
                raise ValueError(
                    f"teacher options {sorted(options)} were given together with Teacher objects: configure the "
                    "Teachers themselves, or pass GoalTasks"
                )
            out.append(item)
        elif isinstance(item, GoalTask):
            task_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            out.append(Teacher(item, seed=task_seed, **options))
        else:
            raise TypeError(f"tasks[{k}]={item!r} is not allowed: use a GoalTask or a Teacher")
    ids = [t.task.id for t in out]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"tasks contain the same task more than once ({dup}): give each task once")
    return out


def check_budgets(teachers: Sequence[Teacher], needs: Sequence[int]) -> None:
    """Refuse a collection that some teacher's remaining budget cannot pay for, before anything is collected.

    Raises:
        BudgetExhausted: For the first teacher whose need exceeds what it has left.
    """
    for teacher, need in zip(teachers, needs, strict=True):
        left = teacher.remaining
        if left is not None and need > left:
            raise BudgetExhausted(int(need), left, int(teacher.budget or 0))


def per_task_shares(n: int, n_tasks: int) -> list[int]:
    """``n`` split evenly over ``n_tasks`` (the first ``n % n_tasks`` tasks get one more)."""
    return [n // n_tasks + (1 if k < n % n_tasks else 0) for k in range(n_tasks)]


# -- layouts, observations and rollouts ------------------------------------------------------------------------------
@dataclass
class TaskGroup:
    """Tasks that share one layout, and thus one vector env."""

    layout: Layout
    members: list[int]  # indices into the teacher list
    teachers: list[Teacher]
    env_kwargs: dict[str, Any]
    obs_tables: np.ndarray  # (n_members, H*W, *obs_shape) float32
    goal_cells: np.ndarray  # (n_members,) flat goal index

    @property
    def width(self) -> int:
        """The layout's width (flat cell index = ``row * width + col``)."""
        return self.layout.width

    def cells(self, flat: np.ndarray) -> np.ndarray:
        """int64 ``(..., 2)`` (row, col) of flat cell indices."""
        return np.stack([flat // self.width, flat % self.width], axis=-1).astype(np.int64)

    def step_fields(self, j: int, cell: np.ndarray, action: np.ndarray, next_cell: np.ndarray) -> dict[str, np.ndarray]:
        """The dataset fields of recorded steps of member ``j`` (any leading shape): ``obs`` and ``next_obs`` from
        its observation table, ``action``, and ``agent_pos`` / ``next_agent_pos`` from the flat cells."""
        table = self.obs_tables[j]
        return {"obs": table[cell], "action": action, "next_obs": table[next_cell],
                "agent_pos": self.cells(cell), "next_agent_pos": self.cells(next_cell)}


def concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-(task, ...) parts into dataset arrays, field by field."""
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def group_by_layout(teachers: Sequence[Teacher], env_kwargs: dict[str, Any]) -> list[TaskGroup]:
    """The tasks grouped by layout, each group with its observation tables (built by an env of ``env_kwargs``)."""
    by_layout: dict[Layout, list[int]] = {}
    for k, teacher in enumerate(teachers):
        by_layout.setdefault(teacher.layout, []).append(k)
    groups = []
    for layout, members in by_layout.items():
        task = teachers[members[0]].task
        kwargs = {"layout": task.layout, "size": task.size, "layout_seed": task.layout_seed, **env_kwargs}
        # one env per layout renders every (cell, goal) observation, exactly as the env emits it
        env = GridGoalEnv(**{**kwargs, "goal": task.goal, "start": "random"})
        cells = [(i // layout.width, i % layout.width) for i in range(layout.height * layout.width)]
        if env.observe_goal:
            tables = np.stack([np.stack([env.observation_for(c, teachers[k].goal) for c in cells]) for k in members])
        else:  # the observation does not depend on the goal: share one table
            one = np.stack([env.observation_for(c) for c in cells])
            tables = np.broadcast_to(one, (len(members), *one.shape))
        goals = np.array([teachers[k].goal[0] * layout.width + teachers[k].goal[1] for k in members], dtype=np.int64)
        tables = tables.astype(np.float32, copy=False)
        groups.append(TaskGroup(layout, members, [teachers[k] for k in members], kwargs, tables, goals))
    return groups


@dataclass
class Trace:
    """A recorded vector-env rollout; arrays are ``(steps, num_envs)``."""

    cell: np.ndarray
    action: np.ndarray
    next_cell: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray  # a unique id per episode; -1 on autoreset steps (no real transition)


Policy = Callable[[np.ndarray], np.ndarray]


def rollout(
    group: TaskGroup,
    env_task: np.ndarray,
    policy: Policy,
    seed: int,
    stop: Callable[[dict[str, np.ndarray]], bool],
    env_overrides: Mapping[str, Any] | None = None,
    early_reset: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Trace:
    """Run the group's vector env (sub-env ``i`` pursues task ``env_task[i]``) until ``stop`` says so.

    ``stop(step)`` is called after every step with that step's arrays (``cell``, ``action``, ``next_cell``,
    ``terminated``, ``truncated``, ``episode``, each ``(num_envs,)``). ``early_reset(next_cell, steps_at_goal)``
    may return a mask of sub-envs to reset now (used by preference collection, whose segments stop being useful once
    the agent has sat on the goal long enough).
    """
    kwargs = {**group.env_kwargs, "start": "random", **(env_overrides or {})}
    goals = [tuple(group.teachers[k].goal) for k in env_task.tolist()]
    venv = GridGoalVectorEnv(len(goals), goals_per_env=goals, **kwargs)
    n = venv.num_envs
    w = group.width
    venv.reset(seed=seed)
    cell = venv.agent_positions @ np.array([w, 1])
    pending = np.zeros(n, dtype=bool)  # the env autoresets this sub-env at its next step
    episode = np.arange(n, dtype=np.int64)
    next_id = n
    goal_of_env = group.goal_cells[env_task]
    at_goal = np.zeros(n, dtype=np.int64)
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("cell", "action", "next_cell", "terminated", "truncated",
                                                         "episode")}
    for _ in range(MAX_ROLLOUT_STEPS):
        action = policy(cell)
        _, _, terminated, truncated, info = venv.step(action)
        next_cell = info["agent_pos"] @ np.array([w, 1])
        step = {
            "cell": cell, "action": action, "next_cell": next_cell, "terminated": terminated,
            "truncated": truncated, "episode": np.where(pending, -1, episode),
        }
        for key, value in step.items():
            rec[key].append(value)
        # a sub-env that was reset during this step starts a new episode at next_cell
        if pending.any():
            episode[pending] = np.arange(next_id, next_id + int(pending.sum()))
            next_id += int(pending.sum())
        pending = terminated | truncated
        if early_reset is not None:
            at_goal = np.where(next_cell == goal_of_env, at_goal + 1, 0)
            mask = early_reset(next_cell, at_goal) & ~pending
            if mask.any():
                venv.reset(options={"reset_mask": mask})
                next_cell = np.where(mask, venv.agent_positions @ np.array([w, 1]), next_cell)
                episode[mask] = np.arange(next_id, next_id + int(mask.sum()))
                next_id += int(mask.sum())
                at_goal[mask] = 0
        cell = next_cell
        if stop(step):
            break
    else:
        raise RuntimeError(
            f"collection did not finish within {MAX_ROLLOUT_STEPS} vector-env steps on layout {group.layout.name!r}: "
            "check that the goals are reachable and the segment length fits max_steps"
        )
    return Trace(**{k: np.stack(v) for k, v in rec.items()})


def make_policy(
    kind: str,
    group: TaskGroup,
    env_task: np.ndarray,
    rng: np.random.Generator,
    epsilon: float | np.ndarray = 0.0,
    temperature: float | np.ndarray | None = None,
) -> Policy:
    """A batched policy over flat cells: ``"random"`` (uniform) or ``"expert"`` (each sub-env's task's planner)."""
    n = env_task.shape[0]
    if kind == "random":
        return lambda cell: rng.integers(N_ACTIONS, size=n)
    optimal = np.stack([t.optimal for t in group.teachers])  # (tasks, H*W, 4)
    next_dist = np.stack([t.next_dist for t in group.teachers])
    return lambda cell: expert_actions(optimal[env_task, cell], next_dist[env_task, cell], rng, epsilon, temperature)


def envs_per_task(want: int, n_slots: int, num_envs: int | None, items_per_env: int) -> int:
    """Sub-envs per task (or per task and noise level): ``num_envs`` shared out, or enough that each sub-env
    contributes about ``items_per_env`` items, at most 2048 sub-envs in all."""
    if num_envs is not None:
        return max(1, num_envs // n_slots)
    return int(np.clip(math.ceil(want / items_per_env), 1, max(1, 2048 // n_slots)))



def make_metadata(
    kind: str,
    teachers: Sequence[Teacher],
    coverage: dict[str, float],
    seed: int,
    env: EnvOptions,
    options: CollectionOptions,
    spent: int,
    **more: Any,
) -> dict[str, Any]:
    """A dataset's provenance: env id and kwargs (with the layout when all tasks share one), tasks, teachers,
    coverage, seed, budget spent, package version, the kind's own entries (``more``) and ``options.metadata``."""
    layouts = {(t.task.layout, t.task.size, t.task.layout_seed) for t in teachers}
    kwargs = env.env_kwargs()
    if len(layouts) == 1:
        task = teachers[0].task
        kwargs = {"layout": task.layout, "size": task.size, "layout_seed": task.layout_seed, **kwargs}
    else:  # no single env fits: layout None makes GridGoalEnv(**env_kwargs) fail rather than pick a default layout
        kwargs = {"layout": None, **kwargs}
    meta = {
        "kind": kind,
        "env_id": options.env_id or DEFAULT_ENV_ID,
        "env_kwargs": kwargs,
        "tasks": [t.task.to_dict() for t in teachers],
        "teachers": [t.config() for t in teachers],
        "coverage": coverage,
        "seed": int(seed),
        "budget_spent": int(spent),
        "package_version": __version__,
        **more,
    }
    if options.metadata:
        meta.update(dict(options.metadata))
    return meta


def plan(
    tasks: TaskLike | Sequence[TaskLike],
    total: int,
    seed: int,
    teacher_options: Mapping[str, float | str | None],
    teacher_kwargs: Mapping[str, Any] | None,
    env: EnvOptions,
    check_budget: bool = True,
) -> tuple[list[Teacher], list[int], list[TaskGroup]]:
    """What every collector sets up, in one validation order: the teachers, each one's share of ``total`` (checked
    against its budget unless ``check_budget`` is False, for collections whose cost is known only afterwards) and
    the tasks grouped by layout."""
    teachers = make_teachers(tasks, seed, teacher_kwargs=teacher_kwargs, **teacher_options)
    per_task = per_task_shares(total, len(teachers))
    if check_budget:
        check_budgets(teachers, per_task)
    return teachers, per_task, group_by_layout(teachers, env.env_kwargs())


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` items (disabled unless ``enabled``); import deferred, as only progress needs it."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False)

