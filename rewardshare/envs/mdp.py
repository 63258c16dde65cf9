"""The grid as a finite MDP: the one place where a grid env's states are enumerated.

A GridGoal task (a layout and a goal) is a deterministic finite MDP: its states are the layout's free cells, its
actions the four moves, its dynamics the planner's transition table. Everything that needs the whole state space
reads it from here:

- the simulated teacher (:func:`layout_transitions`, :func:`goal_distances`: cached, read-only tables per layout),
- MaxEnt IRL and EPIC (:class:`GridMDP`: the free cells of one task, with the observation an env emits on each),
- the reward-table fast path of the wrappers (:func:`grid_states`: every ``(goal, cell)`` observation an env can emit).

State ``i`` of a :class:`GridMDP` is its ``i``-th free cell in row-major order (``layout.free_cells``), so two MDPs of
one layout index states alike whatever their goal or observation mode.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardshare.envs.grid_env import GridGoalEnv
from rewardshare.envs.layouts import Cell, Layout
from rewardshare.envs.planner import distances_to, transition_table
from rewardshare.envs.vector_env import GridGoalVectorEnv


def grid_env_of(env: Any) -> GridGoalEnv:
    """The :class:`GridGoalEnv` behind ``env``.

    Args:
        env: A :class:`GridGoalEnv`, a gymnasium wrapper around one, or a :class:`GridGoalVectorEnv` (possibly
            wrapped; its sub-envs share one layout, observation mode and dynamics, given by its prototype).

    Returns:
        The unwrapped grid env (for a vector env, :attr:`GridGoalVectorEnv.prototype`).

    Raises:
        TypeError: If ``env`` is not a grid env (finite grid, known dynamics).
    """
    base = getattr(env, "unwrapped", env)
    if isinstance(base, GridGoalVectorEnv):
        base = base.prototype
    if not isinstance(base, GridGoalEnv):
        raise TypeError(
            f"env={env!r} is not allowed: this needs a rewardshare GridGoalEnv (finite grid, known dynamics)"
        )
    return base


@functools.lru_cache(maxsize=64)
def layout_transitions(layout: Layout) -> np.ndarray:
    """The layout's next-cell table (:func:`~rewardshare.envs.transition_table`), built once per layout.

    Every task of a family shares it, so it is cached and read-only.

    Returns:
        int64 ``(H * W, 4)``: entry ``[i, a]`` is the flat index of the cell reached from flat cell ``i`` by ``a``.
    """
    table = transition_table(layout)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=4096)
def goal_distances(layout: Layout, goal: Cell) -> np.ndarray:
    """BFS distances to ``goal`` (:func:`~rewardshare.envs.distances_to`), cached per (layout, goal); read-only.

    Returns:
        int64 ``(H, W)``; ``-1`` on walls and on cells that cannot reach the goal.

    Raises:
        ValueError: If ``goal`` is not a free cell.
    """
    dist = distances_to(layout, goal)
    dist.flags.writeable = False
    return dist


@dataclass(frozen=True)
class GridMDP:
    """A grid task as a finite MDP over its free cells, with the observations a given env emits.

    Attributes:
        layout: The wall map.
        goal: The task's goal cell.
        cells: ``(S, 2)`` int64, the free cells (row-major order); state ``i`` is ``cells[i]``.
        next_state: ``(S, 4)`` int64, the state reached from state ``i`` by action ``a``.
        obs: ``(S, *obs_shape)`` float32, the env's observation on each state (with this goal).
        done: ``(S, 4)`` bool, ``True`` on transitions into the goal from another cell (what the env reports as
            ``terminated``); the dynamics themselves do not stop at the goal.
        cell_index: ``(H * W,)`` int64 flat cell index -> state index (-1 for walls).
    """

    layout: Layout
    goal: Cell
    cells: np.ndarray
    next_state: np.ndarray
    obs: np.ndarray
    done: np.ndarray
    cell_index: np.ndarray

    @classmethod
    def from_env(cls, env: Any, goal: Sequence[int] | None = None) -> GridMDP:
        """Build from a grid env (see :func:`grid_env_of`) and a goal (default: the env's current goal).

        Raises:
            TypeError: If ``env`` is not a grid env.
            ValueError: If ``goal`` is not a free cell.
        """
        base = grid_env_of(env)
        layout = base.layout
        goal_cell: Cell = base.goal if goal is None else (int(goal[0]), int(goal[1]))
        if not layout.is_free(goal_cell):
            raise ValueError(f"goal={goal_cell!r} is not a free cell of layout {layout.name!r}")
        w = layout.width
        cells = np.asarray(layout.free_cells, dtype=np.int64).reshape(-1, 2)
        cell_index = np.full(layout.height * w, -1, dtype=np.int64)
        cell_index[cells[:, 0] * w + cells[:, 1]] = np.arange(len(cells))
        next_state = cell_index[layout_transitions(layout)[cells[:, 0] * w + cells[:, 1]]]
        obs = np.stack([np.asarray(base.observation_for(tuple(c), goal_cell)) for c in cells.tolist()])
        g = cell_index[goal_cell[0] * w + goal_cell[1]]
        done = (next_state == g) & (np.arange(len(cells)) != g)[:, None]
        return cls(layout, goal_cell, cells, next_state, obs.astype(np.float32), done, cell_index)

    @property
    def n_states(self) -> int:
        """Number of free cells ``S``."""
        return int(len(self.cells))

    @property
    def n_actions(self) -> int:
        """Number of actions ``A`` (4)."""
        return int(self.next_state.shape[1])

    @property
    def goal_state(self) -> int:
        """The state index of the goal."""
        return int(self.cell_index[self.goal[0] * self.layout.width + self.goal[1]])

    def state_of(self, positions: np.ndarray) -> np.ndarray:
        """State indices ``(N,)`` of cells ``(N, 2)``.

        Raises:
            ValueError: If a position is outside the grid or on a wall.
        """
        pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        h, w = self.layout.height, self.layout.width
        inside = (pos[:, 0] >= 0) & (pos[:, 0] < h) & (pos[:, 1] >= 0) & (pos[:, 1] < w)
        idx = np.where(inside, self.cell_index[np.clip(pos[:, 0], 0, h - 1) * w + np.clip(pos[:, 1], 0, w - 1)], -1)
        if (idx < 0).any():
            bad = pos[int(np.argmax(idx < 0))].tolist()
            raise ValueError(f"position {bad} is not a free cell of layout {self.layout.name!r}")
        return idx


@dataclass(frozen=True)
class GridStates:
    """Every observation a grid env can emit, one per ``(goal, cell)`` state.

    States are grouped by goal (in ``goals`` order), each group being the free cells of a :class:`GridMDP`.

    Attributes:
        observations: ``(S, *obs_shape)`` float32, the env's observation on each state.
        cells: ``(S, 2)`` int64, the agent cell of each state.
        goals: ``(S, 2)`` int64, the goal of each state (for an env that does not observe its goal: the goal the
            observations were built with; any other gives the same observations).
        next_state: ``(S, 4)`` int64, the state each action leads to (same goal).
    """

    observations: np.ndarray
    cells: np.ndarray
    goals: np.ndarray
    next_state: np.ndarray

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return int(len(self.observations))


def grid_states(env: Any) -> GridStates:
    """Every ``(goal, cell)`` state of a grid env: all free goals when it observes its goal, else its goal only.

    Args:
        env: A grid env (see :func:`grid_env_of`).

    Raises:
        TypeError: If ``env`` is not a grid env.
        ValueError: If the env draws a new maze per episode (no fixed state set).
    """
    base = grid_env_of(env)
    if base.random_layout:
        raise ValueError("an env with layout_seed=None draws a new maze per episode: its states cannot be enumerated")
    goals = base.layout.free_cells if base.observe_goal else (base.goal,)
    mdps = [GridMDP.from_env(base, g) for g in goals]
    n = mdps[0].n_states
    return GridStates(
        observations=np.concatenate([m.obs for m in mdps]),
        cells=np.concatenate([m.cells for m in mdps]),
        goals=np.repeat(np.asarray(goals, dtype=np.int64).reshape(-1, 2), n, axis=0),
        next_state=np.concatenate([m.next_state + k * n for k, m in enumerate(mdps)]),
    )


def env_from_metadata(data: Any) -> GridGoalEnv | None:
    """The grid env a dataset was collected on, rebuilt from its ``metadata["env_kwargs"]``; ``None`` if it records
    none (or records arguments no grid env accepts)."""
    meta = getattr(data, "metadata", None)
    if not isinstance(meta, dict):
        return None
    kwargs = meta.get("env_kwargs")
    if not isinstance(kwargs, dict):
        return None
    kwargs = {k: v for k, v in kwargs.items() if k not in ("render_mode",)}
    for key in ("goal", "start"):  # JSON turned the cells into lists
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return GridGoalEnv(**kwargs)
    except (TypeError, ValueError):
        return None
