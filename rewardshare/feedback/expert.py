"""The teacher's demonstrator: a planner-based expert that follows shortest paths to the goal.

:func:`expert_actions` is the vectorized policy (greedy with random tie-breaking, Boltzmann over the optimal
Q-values, epsilon-greedy on top); :class:`Expert` runs it for one goal task, one cell at a time or as a whole
episode. The :class:`~rewardshare.feedback.Teacher` owns an :class:`Expert` and charges the demonstrated steps to its
budget; rollouts of many tasks at once (:mod:`rewardshare.feedback.collection`) call :func:`expert_actions` directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardshare.envs.layouts import Cell, Layout
from rewardshare.envs.planner import N_ACTIONS, move


def expert_actions(
    optimal: np.ndarray,
    next_dist: np.ndarray,
    rng: np.random.Generator,
    epsilon: float | np.ndarray = 0.0,
    temperature: float | np.ndarray | None = None,
) -> np.ndarray:
    """Vectorized planner-based expert: one action per query.

    Greedy (``temperature`` None or 0): a uniformly drawn action among those on a shortest path, so ties are broken
    by ``rng``. Boltzmann (``temperature > 0``): ``P(a) ∝ exp(-(1 + d(s')) / temperature)`` with ``d(s')`` the BFS
    distance after the move, i.e. a softmax over the optimal Q-values of a -1-per-step reward. On the goal, a wall
    or a cell that cannot reach the goal (no shortest-path action) the action is uniform. Finally, with probability
    ``epsilon`` the action is replaced by a uniform one.

    Args:
        optimal: bool ``(N, 4)``, the shortest-path actions of each query's cell.
        next_dist: float ``(N, 4)``, the BFS distance of the cell each action leads to (``inf`` if unreachable).
        rng: Source of all randomness.
        epsilon: Scalar or ``(N,)`` per-query epsilon in [0, 1].
        temperature: None, a scalar or ``(N,)`` per-query temperature >= 0 (0 means greedy).

    Returns:
        int64 ``(N,)`` actions.
    """
    n = optimal.shape[0]
    keys = rng.random((n, N_ACTIONS))
    has_opt = optimal.any(axis=1)
    # argmax over random keys restricted to the optimal actions = a uniform choice among them
    scores = np.where(has_opt[:, None], np.where(optimal, keys, -1.0), keys)
    if temperature is not None and np.any(np.asarray(temperature) > 0):
        temp = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (n,))
        soft = (temp > 0) & has_opt
        logits = -(1.0 + next_dist) / np.where(soft, temp, 1.0)[:, None]  # inf distance -> -inf logit
        gumbel = -np.log(-np.log(np.clip(keys, 1e-300, 1.0 - 1e-16)))  # Gumbel-max samples the softmax
        scores = np.where(soft[:, None], logits + gumbel, scores)
    actions = scores.argmax(axis=1).astype(np.int64)
    eps = np.broadcast_to(np.asarray(epsilon, dtype=np.float64), (n,))
    if np.any(eps > 0):
        explore = rng.random(n) < eps
        actions = np.where(explore, rng.integers(N_ACTIONS, size=n), actions)
    return actions


def check_expert_noise(epsilon: Any, temperature: Any) -> None:
    """Refuse an epsilon outside [0, 1] or a negative / infinite temperature.

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    eps = np.asarray(epsilon, dtype=np.float64)
    if np.any((eps < 0) | (eps > 1)) or np.any(np.isnan(eps)):
        raise ValueError(f"epsilon={epsilon!r} is not allowed: use values in [0, 1]")
    if temperature is not None:
        t = np.asarray(temperature, dtype=np.float64)
        if np.any(~(t >= 0)) or np.any(np.isinf(t)):
            raise ValueError(f"temperature={temperature!r} is not allowed: use finite values >= 0 or None")


class Expert:
    """The shortest-path demonstrator of one goal on one layout.

    Args:
        layout: The grid.
        goal: The goal cell.
        dist: ``(H, W)`` BFS distances to the goal (-1 on walls and cells that cannot reach it).
        next_table: int ``(H*W, 4)``: the flat cell each action leads to.

    Attributes:
        next_dist: float ``(H*W, 4)``: the BFS distance after each action (``inf`` where the goal is unreachable).
        optimal: bool ``(H*W, 4)``: the shortest-path actions of every flat cell (none on the goal).
    """

    def __init__(self, layout: Layout, goal: Cell, dist: np.ndarray, next_table: np.ndarray) -> None:
        self.layout, self.goal = layout, goal
        flat = np.asarray(dist, dtype=np.float64).reshape(-1)
        reach = np.where(flat >= 0, flat, np.inf)
        self.next_dist = reach[next_table]
        here = reach[:, None]
        self.optimal = (self.next_dist == here - 1) & np.isfinite(here) & (here > 0)

    def act(
        self,
        flat_cells: np.ndarray,
        rng: np.random.Generator,
        epsilon: float | np.ndarray = 0.0,
        temperature: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """The expert's actions at flat cell indices ``(N,)`` (see :func:`expert_actions`); int64 ``(N,)``."""
        return expert_actions(self.optimal[flat_cells], self.next_dist[flat_cells], rng, epsilon, temperature)

    def episode(
        self,
        start: Cell,
        horizon: int,
        rng: np.random.Generator,
        epsilon: float = 0.0,
        temperature: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One episode from the free cell ``start`` until the goal or ``horizon`` steps.

        Returns:
            ``(cells (T, 2), actions (T,), next cells (T, 2))``, int64.

        Raises:
            ValueError: If ``start`` is the goal or cannot reach it, on ``horizon`` below 1 or a bad ``epsilon`` /
                ``temperature``.
        """
        cell = (int(start[0]), int(start[1]))
        w = self.layout.width
        if cell == self.goal:
            raise ValueError(f"start={cell!r} is the goal: choose another free cell")
        if not self.optimal[cell[0] * w + cell[1]].any():
            raise ValueError(f"start={cell!r} cannot reach the goal {self.goal!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"max_steps={horizon!r} is not allowed: use an int >= 1 or None")
        check_expert_noise(epsilon, temperature)
        cells, actions, nexts = [], [], []
        for _ in range(horizon):
            a = int(self.act(np.array([cell[0] * w + cell[1]]), rng, epsilon, temperature)[0])
            nxt = move(self.layout, cell, a)
            cells.append(cell)
            actions.append(a)
            nexts.append(nxt)
            cell = nxt
            if cell == self.goal:
                break
        return (np.array(cells, dtype=np.int64).reshape(-1, 2), np.array(actions, dtype=np.int64),
                np.array(nexts, dtype=np.int64).reshape(-1, 2))
