"""Collecting feedback: labelled transitions, segment preferences and demonstrations, for one task or many.

Rollouts run in :class:`~rewardshare.envs.GridGoalVectorEnv` (one per layout), with ``goals_per_env`` so a single
batch holds every task; the env drives starts, dynamics, truncation, absorbing goals and autoresets, and the
collector records cells and actions. Observations are then looked up from per-goal tables built with
``GridGoalEnv.observation_for`` (the same arrays the env emits), so recording stays small and fast.

Coverage (which ``(s, a)`` pairs the teacher is asked about):

- ``"uniform"``: transitions — every (free cell, action) pair of a task equally often (the goal cell only with
  ``absorbing_goal=True``, where moves out of it are part of the episode); the remainder of ``n`` is spread over
  distinct random pairs. Preferences — segments of uniform random actions from uniform random start cells.
- ``"random"``: rollouts of the uniform random policy from the env's random starts.
- ``"expert"``: rollouts of the teacher's planner expert (``expert_epsilon`` / ``expert_temperature``).
- a mixture ``{"uniform": 0.5, "expert": 0.5}``: each task's items are split by these weights (largest remainder).

Budget: collection charges each task's teacher exactly what it returns (one query per label, per comparison, per
demonstrated step) and checks the remaining budgets before starting, so it never fails half-way.
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
from rewardshare.feedback.datasets import Demonstrations, Preferences, Transitions
from rewardshare.feedback.teacher import BudgetExhausted, Teacher, expert_actions

COVERAGES: tuple[str, ...] = ("uniform", "random", "expert")
NOISE_KINDS: tuple[str, ...] = ("epsilon", "temperature")
DEFAULT_ENV_ID = "rewardshare/GridGoal-v0"
_MAX_ROLLOUT_STEPS = 100_000  # a guard against collections that cannot finish (e.g. unreachable goals)

TaskLike = GoalTask | Teacher
Coverage = str | Mapping[str, float]


# -- argument handling -----------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
    return int(value)


def normalize_coverage(coverage: Coverage) -> dict[str, float]:
    """Turn a coverage argument into ``{strategy: weight}`` with weights summing to 1.

    Raises:
        ValueError: On an unknown strategy, a negative weight or weights summing to 0.
    """
    if isinstance(coverage, str):
        if coverage not in COVERAGES:
            raise ValueError(f"coverage={coverage!r} is not allowed: use one of {COVERAGES} or a mixture dict")
        return {coverage: 1.0}
    if not isinstance(coverage, Mapping) or not coverage:
        raise ValueError(f"coverage={coverage!r} is not allowed: use one of {COVERAGES} or e.g. {{'uniform': 0.5, "
                         "'expert': 0.5}")
    out: dict[str, float] = {}
    for name, weight in coverage.items():
        if name not in COVERAGES:
            raise ValueError(f"coverage has strategy {name!r}, which is not allowed: use keys from {COVERAGES}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0 or math.isinf(weight):
            raise ValueError(f"coverage[{name!r}]={weight!r} is not allowed: use a finite weight >= 0")
        if weight > 0:
            out[name] = float(weight)
    total = sum(out.values())
    if total <= 0:
        raise ValueError(f"coverage={dict(coverage)!r} has no positive weight: give at least one weight > 0")
    return {k: v / total for k, v in out.items()}


def split_count(n: int, weights: Sequence[float]) -> list[int]:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainder, ties to the earlier part)."""
    w = np.asarray(weights, dtype=np.float64)
    raw = n * w / w.sum()
    parts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[: n - int(parts.sum())]] += 1
    return parts.tolist()


def _teachers(
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


def _check_budgets(teachers: Sequence[Teacher], needs: Sequence[int]) -> None:
    for teacher, need in zip(teachers, needs, strict=True):
        left = teacher.remaining
        if left is not None and need > left:
            raise BudgetExhausted(int(need), left, int(teacher.budget or 0))


def _per_task(n: int, n_tasks: int) -> list[int]:
    return [n // n_tasks + (1 if k < n % n_tasks else 0) for k in range(n_tasks)]


# -- layouts, observations and rollouts ------------------------------------------------------------------------------
@dataclass
class _Group:
    """Tasks that share one layout, and thus one vector env."""

    layout: Layout
    members: list[int]  # indices into the teacher list
    teachers: list[Teacher]
    env_kwargs: dict[str, Any]
    obs_tables: np.ndarray  # (n_members, H*W, *obs_shape) float32
    goal_cells: np.ndarray  # (n_members,) flat goal index

    @property
    def width(self) -> int:
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


def _concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-(task, ...) parts into dataset arrays, field by field."""
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _groups(teachers: Sequence[Teacher], env_kwargs: dict[str, Any]) -> list[_Group]:
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
        groups.append(_Group(layout, members, [teachers[k] for k in members], kwargs, tables, goals))
    return groups


@dataclass
class _Trace:
    """A recorded vector-env rollout; arrays are ``(steps, num_envs)``."""

    cell: np.ndarray
    action: np.ndarray
    next_cell: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray  # a unique id per episode; -1 on autoreset steps (no real transition)


Policy = Callable[[np.ndarray], np.ndarray]


def _rollout(
    group: _Group,
    env_task: np.ndarray,
    policy: Policy,
    seed: int,
    stop: Callable[[dict[str, np.ndarray]], bool],
    env_overrides: Mapping[str, Any] | None = None,
    early_reset: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> _Trace:
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
    for _ in range(_MAX_ROLLOUT_STEPS):
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
            f"collection did not finish within {_MAX_ROLLOUT_STEPS} vector-env steps on layout {group.layout.name!r}: "
            "check that the goals are reachable and the segment length fits max_steps"
        )
    return _Trace(**{k: np.stack(v) for k, v in rec.items()})


def _policy(
    kind: str,
    group: _Group,
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


def _envs_per_task(want: int, n_slots: int, num_envs: int | None, items_per_env: int) -> int:
    """Sub-envs per task (or per task and noise level): ``num_envs`` shared out, or enough that each sub-env
    contributes about ``items_per_env`` items, at most 2048 sub-envs in all."""
    if num_envs is not None:
        return max(1, num_envs // n_slots)
    return int(np.clip(math.ceil(want / items_per_env), 1, max(1, 2048 // n_slots)))


def _metadata(
    kind: str,
    teachers: Sequence[Teacher],
    coverage: dict[str, float],
    seed: int,
    env_id: str | None,
    env_kwargs: dict[str, Any],
    spent: int,
    extra: Mapping[str, Any] | None,
    **more: Any,
) -> dict[str, Any]:
    layouts = {(t.task.layout, t.task.size, t.task.layout_seed) for t in teachers}
    kwargs = dict(env_kwargs)
    if len(layouts) == 1:
        task = teachers[0].task
        kwargs = {"layout": task.layout, "size": task.size, "layout_seed": task.layout_seed, **kwargs}
    else:  # no single env fits: layout None makes GridGoalEnv(**env_kwargs) fail rather than pick a default layout
        kwargs = {"layout": None, **kwargs}
    meta = {
        "kind": kind,
        "env_id": env_id or DEFAULT_ENV_ID,
        "env_kwargs": kwargs,
        "tasks": [t.task.to_dict() for t in teachers],
        "teachers": [t.config() for t in teachers],
        "coverage": coverage,
        "seed": int(seed),
        "budget_spent": int(spent),
        "package_version": __version__,
        **more,
    }
    if extra:
        meta.update(dict(extra))
    return meta


def _env_kwargs(obs_mode: str, observe_goal: bool, absorbing_goal: bool, max_steps: int | None) -> dict[str, Any]:
    if max_steps is not None:
        _check_int("max_steps", max_steps, 1)
    return {"obs_mode": obs_mode, "observe_goal": bool(observe_goal), "absorbing_goal": bool(absorbing_goal),
            "max_steps": max_steps}


def _plan(
    tasks: TaskLike | Sequence[TaskLike],
    total: int,
    seed: int,
    teacher_options: Mapping[str, float | str | None],
    teacher_kwargs: Mapping[str, Any] | None,
    env_options: Mapping[str, Any],
    check_budgets: bool = True,
) -> tuple[list[Teacher], list[int], dict[str, Any], list[_Group]]:
    """What every collector sets up, in one validation order: the teachers, each one's share of ``total`` (checked
    against its budget unless ``check_budgets`` is False, for collections whose cost is known only afterwards), the
    env kwargs (from ``env_options``, the arguments of :func:`_env_kwargs`) and the tasks grouped by layout."""
    teachers = _teachers(tasks, seed, teacher_kwargs=teacher_kwargs, **teacher_options)
    per_task = _per_task(total, len(teachers))
    if check_budgets:
        _check_budgets(teachers, per_task)
    env_kwargs = _env_kwargs(**env_options)
    return teachers, per_task, env_kwargs, _groups(teachers, env_kwargs)


def _check_expert(epsilon: float, temperature: float | None) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
        raise ValueError(f"expert_epsilon={epsilon!r} is not allowed: use a float in [0, 1]")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature < math.inf):
        raise ValueError(f"expert_temperature={temperature!r} is not allowed: use a finite float >= 0 or None")


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False)


# -- transitions -----------------------------------------------------------------------------------------------------
def collect_transitions(
    tasks: TaskLike | Sequence[TaskLike],
    n: int,
    *,
    coverage: Coverage = "uniform",
    reward: str | None = None,
    noise: float | None = None,
    flip_prob: float | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
    obs_mode: str = "coords",
    observe_goal: bool = False,
    absorbing_goal: bool = False,
    max_steps: int | None = None,
    expert_epsilon: float = 0.0,
    expert_temperature: float | None = None,
    num_envs: int | None = None,
    seed: int = 0,
    env_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Transitions:
    """Collect ``n`` labelled transitions, split evenly over the tasks.

    Args:
        tasks: A :class:`GoalTask`, a :class:`Teacher`, or a sequence of them (e.g. ``family.train``). GoalTasks get
            a fresh teacher each (seeded from ``seed`` and the task's position); Teachers are used and charged as
            they are.
        n: Total number of labels (one query each), >= 1.
        coverage: ``"uniform"``, ``"random"``, ``"expert"`` or a mixture dict (see the module docstring).
        reward, noise, flip_prob: Teacher options for GoalTasks (defaults ``"dense"``, 0, 0).
        teacher_kwargs: Further :class:`Teacher` arguments for GoalTasks (``budget``, ``goal_reward``, ...).
        obs_mode, observe_goal: The env's observation mode; labels come with observations of this mode.
        absorbing_goal: Fixed-horizon episodes where the goal absorbs (transitions out of it are labelled 0).
        max_steps: Truncation horizon of rollouts (default ``4 * H * W``).
        expert_epsilon, expert_temperature: The expert's noise for ``"expert"`` coverage.
        num_envs: Vector-env size per layout (default: sized to ``n``).
        seed: Seeds the env, the policies, the uniform draws and new teachers.
        env_id: Recorded in the metadata (default ``"rewardshare/GridGoal-v0"``, which takes every layout).
        metadata: Extra entries for the dataset's metadata.
        progress: Show a progress bar.

    Returns:
        A :class:`Transitions` with items grouped by task (in ``tasks`` order) and coverage strategy.

    Raises:
        ValueError: On invalid arguments.
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    n = _check_int("n", n, 1)
    cov = normalize_coverage(coverage)
    _check_expert(expert_epsilon, expert_temperature)
    env_options = dict(obs_mode=obs_mode, observe_goal=observe_goal, absorbing_goal=absorbing_goal, max_steps=max_steps)
    teachers, per_task, env_kwargs, groups = _plan(
        tasks, n, seed, {"reward": reward, "noise": noise, "flip_prob": flip_prob}, teacher_kwargs, env_options
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    names = list(cov)
    shares = {k: split_count(per_task[k], [cov[c] for c in names]) for k in range(len(teachers))}
    # picked[(task, coverage)] = (group, local task index, flat cell, action, flat next cell, done)
    picked: dict[tuple[int, str], tuple[_Group, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    with _progress(n, "labels", progress) as bar:
        for ci, name in enumerate(names):
            for group in groups:
                need = np.array([shares[k][ci] for k in group.members], dtype=np.int64)
                if need.sum() == 0:
                    continue
                if name == "uniform":
                    for j, k in enumerate(group.members):
                        picked[(k, name)] = (group, j, *_uniform_pairs(group, j, int(need[j]), absorbing_goal, rng))
                    bar.update(int(need.sum()))
                else:
                    sub_seed = int(rng.integers(2**31))
                    for j, sel in enumerate(_rollout_transitions(group, name, need, num_envs, sub_seed, rng,
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
    arrays = _concat(parts)
    meta = _metadata("transitions", teachers, cov, seed, env_id, env_kwargs, n, metadata,
                     expert_epsilon=expert_epsilon, expert_temperature=expert_temperature)
    return Transitions(metadata=meta, **arrays)


def _uniform_pairs(
    group: _Group, j: int, need: int, absorbing_goal: bool, rng: np.random.Generator
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
    group: _Group,
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
    per = _envs_per_task(int(need.max()), n_tasks, num_envs, 256)  # fewer, longer rollouts: resets cost more
    env_task = np.tile(np.arange(n_tasks), per)
    counts = np.zeros(n_tasks, dtype=np.int64)

    def stop(step: dict[str, np.ndarray]) -> bool:
        before = np.minimum(counts, need).sum()
        counts[:] += np.bincount(env_task[step["episode"] >= 0], minlength=n_tasks)
        on_progress(int(np.minimum(counts, need).sum() - before))
        return bool((counts >= need).all())

    policy = _policy(kind, group, env_task, rng, epsilon, temperature)
    trace = _rollout(group, env_task, policy, seed, stop)
    valid = (trace.episode >= 0).reshape(-1)
    task_flat = np.broadcast_to(env_task, trace.episode.shape).reshape(-1)
    out = []
    for j in range(n_tasks):
        idx = np.flatnonzero(valid & (task_flat == j))[: need[j]]  # step-major order: the earliest transitions
        out.append((trace.cell.reshape(-1)[idx], trace.action.reshape(-1)[idx], trace.next_cell.reshape(-1)[idx],
                    trace.terminated.reshape(-1)[idx]))
    return out


# -- preferences -----------------------------------------------------------------------------------------------------
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
    obs_mode: str = "coords",
    observe_goal: bool = False,
    absorbing_goal: bool = False,
    max_steps: int | None = None,
    expert_epsilon: float = 0.0,
    expert_temperature: float | None = None,
    num_envs: int | None = None,
    seed: int = 0,
    env_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = False,
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
        teacher_kwargs, obs_mode, observe_goal, absorbing_goal, max_steps, expert_epsilon, expert_temperature,
        num_envs, seed, env_id, metadata, progress: As in :func:`collect_transitions`.

    Returns:
        A :class:`Preferences` with items grouped by task.

    Raises:
        ValueError: On invalid arguments.
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    n = _check_int("n", n, 1)
    length = _check_int("segment_length", segment_length, 1)
    cov = normalize_coverage(coverage)
    _check_expert(expert_epsilon, expert_temperature)
    env_options = dict(obs_mode=obs_mode, observe_goal=observe_goal, absorbing_goal=absorbing_goal, max_steps=max_steps)
    teachers, per_task, env_kwargs, groups = _plan(
        tasks, n, seed, {"reward": reward, "flip_prob": flip_prob, "beta": beta}, teacher_kwargs, env_options
    )
    for group in groups:
        horizon = max_steps if max_steps is not None else 4 * group.layout.height * group.layout.width
        if length > horizon and set(cov) - {"uniform"}:
            raise ValueError(f"segment_length={length} is not allowed: it must be <= max_steps={horizon}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    names = list(cov)
    # segments[k][coverage] = (cells (m, L), actions (m, L), next cells (m, L))
    segments: dict[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {k: {} for k in range(len(teachers))}
    seg_share = {k: split_count(2 * per_task[k], [cov[c] for c in names]) for k in range(len(teachers))}
    with _progress(n, "comparisons", progress) as bar:
        for ci, name in enumerate(names):
            for group in groups:
                need = np.array([seg_share[k][ci] for k in group.members], dtype=np.int64)
                if need.sum() == 0:
                    continue
                sub_seed = int(rng.integers(2**31))
                found = _segments(group, name, need, length, num_envs, sub_seed, rng, expert_epsilon,
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
        done = ((next_cell == goal) | (cell == goal)) & (not absorbing_goal)
        sides = {side: {**group.step_fields(j, cell[sel], action[sel], next_cell[sel]), "done": done[sel]}
                 for side, sel in (("a", a), ("b", b))}
        sa, sb = sides["a"], sides["b"]
        label = teacher.prefer(sa["agent_pos"], sa["action"], sa["next_agent_pos"],
                               sb["agent_pos"], sb["action"], sb["next_agent_pos"])
        part = {f"{key}_{side}": value for side, side_fields in sides.items() for key, value in side_fields.items()}
        parts.append({**part, "label": label, "task_id": np.full(per_task[k], teacher.task.id)})
    arrays = _concat(parts)
    meta = _metadata("preferences", teachers, cov, seed, env_id, env_kwargs, n, metadata, segment_length=length,
                     expert_epsilon=expert_epsilon, expert_temperature=expert_temperature)
    return Preferences(metadata=meta, **arrays)


def _segments(
    group: _Group,
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
    per = _envs_per_task(int(want.max()), n_tasks, num_envs, 8 if kind == "uniform" else 128)
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
    policy = _policy("random" if kind == "uniform" else kind, group, env_task, rng, epsilon, temperature)
    trace = _rollout(group, env_task, policy, seed, stop, overrides, early_reset if kind != "uniform" else None)
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


# -- demonstrations --------------------------------------------------------------------------------------------------
def collect_demonstrations(
    tasks: TaskLike | Sequence[TaskLike],
    n_episodes: int | None = None,
    *,
    budget: int | None = None,
    noise_levels: Sequence[float] = (0.0,),
    noise_kind: str = "epsilon",
    reward: str | None = None,
    teacher_kwargs: Mapping[str, Any] | None = None,
    obs_mode: str = "coords",
    observe_goal: bool = False,
    absorbing_goal: bool = False,
    max_steps: int | None = None,
    num_envs: int | None = None,
    seed: int = 0,
    env_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Demonstrations:
    """Collect expert demonstrations, whole episodes from the env's random starts, over several noise levels.

    Give either ``n_episodes`` (split evenly over tasks, then over noise levels) or ``budget``, a number of
    demonstrated steps (split the same way; each (task, level) keeps its episodes in completion order while they fit).
    Each demonstrated step costs one query. Episodes end at the goal, or at ``max_steps`` (truncated; with
    ``absorbing_goal`` every episode lasts ``max_steps`` steps).

    Args:
        tasks: As in :func:`collect_transitions`.
        n_episodes: Total number of episodes, >= 1.
        budget: Total number of demonstrated steps, >= 1 (instead of ``n_episodes``).
        noise_levels: The demonstrators' epsilons (in [0, 1]) or temperatures (>= 0; 0 is greedy).
        noise_kind: ``"epsilon"`` or ``"temperature"``.
        reward: Teacher reward for GoalTasks, used for ``episode_return``.
        teacher_kwargs, obs_mode, observe_goal, absorbing_goal, max_steps, num_envs, seed, env_id, metadata,
        progress: As in :func:`collect_transitions`.

    Returns:
        A :class:`Demonstrations` with episodes grouped by task, then noise level, in completion order.

    Raises:
        ValueError: On invalid arguments (including neither or both of ``n_episodes`` and ``budget``).
        BudgetExhausted: If a teacher's budget cannot pay for its share (checked before collecting).
    """
    if (n_episodes is None) == (budget is None):
        raise ValueError(f"n_episodes={n_episodes!r}, budget={budget!r}: give exactly one of them")
    by_budget = budget is not None
    total = _check_int("budget" if by_budget else "n_episodes", budget if by_budget else n_episodes, 1)
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
    env_options = dict(obs_mode=obs_mode, observe_goal=observe_goal, absorbing_goal=absorbing_goal, max_steps=max_steps)
    # with n_episodes the cost (demonstrated steps) is known only after the rollouts; it is checked then
    teachers, per_task, env_kwargs, groups = _plan(
        tasks, total, seed, {"reward": reward}, teacher_kwargs, env_options, check_budgets=by_budget
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    n_levels = len(levels)
    quota = {k: split_count(per_task[k], [1.0] * n_levels) for k in range(len(teachers))}
    episodes: dict[int, list[tuple[int, list[tuple[_Group, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                  bool]]]]] = {}
    with _progress(total, "demo steps" if by_budget else "episodes", progress) as bar:
        for group in groups:
            episodes.update(_demo_episodes(group, levels, noise_kind, {k: quota[k] for k in group.members}, by_budget,
                                           num_envs, int(rng.integers(2**31)), rng, bar))

    parts: list[dict[str, np.ndarray]] = []
    ep_parts: list[dict[str, np.ndarray]] = []
    kept = {k: [(lvl, ep) for lvl, eps in episodes.get(k, []) for ep in eps] for k in range(len(teachers))}
    steps = [sum(ep[2].size for _, ep in kept[k]) for k in range(len(teachers))]
    _check_budgets(teachers, steps)  # with n_episodes, the steps to pay for are known only now
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
    arrays = {**_concat(parts), **_concat(ep_parts)}
    arrays["episode"] = np.repeat(np.arange(len(parts), dtype=np.int64), [p["action"].size for p in parts])
    meta = _metadata("demonstrations", teachers, {"expert": 1.0}, seed, env_id, env_kwargs, sum(steps), metadata,
                     noise_kind=noise_kind, noise_levels=levels,
                     requested={"budget": budget} if by_budget else {"n_episodes": n_episodes})
    return Demonstrations(metadata=meta, **arrays)


def _demo_episodes(
    group: _Group,
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
    per = _envs_per_task(int(want.max()), slots, num_envs, 16 if by_budget else 1)
    env_slot = np.tile(np.arange(slots), per)  # slot = task * n_levels + level; slot s owns sub-envs s + slots*m
    env_task, env_level = env_slot // n_levels, env_slot % n_levels
    noise = np.array(levels)[env_level]
    if noise_kind == "epsilon":
        policy = _policy("expert", group, env_task, rng, epsilon=noise)
    else:
        policy = _policy("expert", group, env_task, rng, temperature=noise)
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

    trace = _rollout(group, env_task, policy, seed, stop)
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
