"""The teacher's reward family: what a reward label is, for a goal on a grid (dense or sparse).

For cells ``s`` and ``s'`` of a move and the BFS distance ``d`` to the goal:

- ``"dense"`` — a person's judgement of progress: ``+1`` (:data:`DENSE_CLOSER`) if ``d(s') < d(s)``; ``-1``
  (:data:`DENSE_FARTHER`) if ``d(s') > d(s)`` or the move bumps into a wall or the border (``s' == s``); plus ``+5``
  (:data:`DENSE_GOAL_BONUS`) on the transition that reaches the goal (so that one is ``+6``); ``0``
  (:data:`ABSORBING_REWARD`) for every transition out of the goal (the goal is absorbing) and for cells that cannot
  reach the goal. On a grid every unblocked move changes ``d`` by exactly one, so these cases are exhaustive.
- ``"sparse"`` — the env's own reward: ``goal_reward`` on the transition that reaches the goal, minus ``step_cost`` on
  every transition; ``0`` out of the goal.

A *flipped* judgement (a teacher's mistake) negates a dense label and toggles whether the sparse goal reward is paid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardshare.envs.layouts import Layout
from rewardshare.envs.planner import N_ACTIONS

REWARD_KINDS: tuple[str, ...] = ("dense", "sparse")

#: Dense label of a move that shortens the BFS distance to the goal.
DENSE_CLOSER = 1.0
#: Dense label of a move that lengthens the distance or bumps into a wall (the agent stays in place).
DENSE_FARTHER = -1.0
#: Bonus added to the dense label of the transition that reaches the goal (so that transition is ``+1 + 5 = +6``).
DENSE_GOAL_BONUS = 5.0
#: Label of every transition out of the goal (absorbing), and of cells from which the goal cannot be reached.
ABSORBING_REWARD = 0.0


def flat_cells(layout: Layout, name: str, value: Any) -> np.ndarray:
    """Flat indices ``row * W + col`` of ``(..., 2)`` cells, checked to be free cells of ``layout``.

    Raises:
        ValueError: On a bad shape, non-integer values, a cell outside the grid or on a wall (naming ``name``).
    """
    arr = np.asarray(value)
    if arr.ndim < 1 or arr.shape[-1] != 2:
        raise ValueError(f"{name} has shape {arr.shape}: use (row, col) cells of shape (..., 2)")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} holds non-integer values (dtype {arr.dtype}): use int (row, col) cells")
        arr = arr.astype(np.int64)
    h, w = layout.height, layout.width
    rows, cols = arr[..., 0], arr[..., 1]
    bad = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)
    if bad.any():
        first = tuple(arr[tuple(np.argwhere(bad)[0])].tolist())
        raise ValueError(f"{name} holds cell {first} outside the {h}x{w} grid of {layout.name!r}")
    flat = rows.astype(np.int64) * w + cols
    walls = layout.walls.reshape(-1)[flat]
    if walls.any():
        first = tuple(arr[tuple(np.argwhere(walls)[0])].tolist())
        raise ValueError(f"{name} holds cell {first}, a wall of layout {layout.name!r}: cells must be free")
    return flat


def judged_transitions(
    layout: Layout, next_table: np.ndarray, pos: Any, action: Any, next_pos: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The flat ``(s, T(s, a))`` a teacher judges for transitions ``(pos, action, next_pos)``, checked.

    The teacher judges the action: on these deterministic grids ``(s, a)`` fixes ``s'``, so the judgement is that of
    the move's actual outcome ``T(s, a)``. The given ``s'`` only matters through it; an impossible triple (used by
    EPIC's canonicalization) gets the reward of ``(s, a)``. A state-action model can then match the teacher exactly,
    which EPIC with independent ``S'`` would otherwise forbid.

    Raises:
        ValueError: On mismatched shapes, cells outside the grid or on walls, or actions outside 0..3.
    """
    s = flat_cells(layout, "pos", pos)
    s2 = flat_cells(layout, "next_pos", next_pos)
    a = np.asarray(action)
    if s.shape != s2.shape or a.shape != s.shape:
        raise ValueError(
            f"pos {np.shape(pos)}, action {a.shape} and next_pos {np.shape(next_pos)} do not match: "
            "use pos and next_pos of shape (..., 2) and action of shape (...)"
        )
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= N_ACTIONS):
        raise ValueError(f"action holds values outside 0..{N_ACTIONS - 1} (dtype {a.dtype}): use int actions")
    return s, next_table[s, a]


def move_rewards(
    kind: str, dist: np.ndarray, s: np.ndarray, s2: np.ndarray, goal: int, goal_reward: float, step_cost: float
) -> np.ndarray:
    """The noiseless reward of moves ``s -> s2`` (flat cells) for a goal at flat cell ``goal``.

    Args:
        kind: ``"dense"`` or ``"sparse"``.
        dist: ``(H*W,)`` BFS distance to the goal, -1 on walls and cells that cannot reach it.
        s, s2: Flat cells before and after each move (any matching shape).
        goal, goal_reward, step_cost: The goal's flat cell and the sparse reward's settings.

    Returns:
        float32 of ``s``'s shape.
    """
    d, d2 = dist[s], dist[s2]
    reached = s2 == goal
    if kind == "dense":
        r = np.where((d2 < d) & (d2 >= 0), DENSE_CLOSER, DENSE_FARTHER) + DENSE_GOAL_BONUS * reached
        r = np.where(d <= 0, ABSORBING_REWARD, r)  # out of the goal (d == 0) or from an unreachable cell
    else:
        r = goal_reward * reached - step_cost
        r = np.where(d == 0, ABSORBING_REWARD, r)
    return np.asarray(r, dtype=np.float32)


def flipped_rewards(
    kind: str, r: np.ndarray, dist: np.ndarray, s: np.ndarray, s2: np.ndarray, goal: int, goal_reward: float,
    step_cost: float,
) -> np.ndarray:
    """The flipped judgement of moves whose noiseless reward is ``r`` (arguments as :func:`move_rewards`)."""
    if kind == "dense":
        return -r
    # sparse: toggle whether the goal reward is paid (a transition out of the goal has no step cost)
    base = np.where(dist[s] == 0, 0.0, -step_cost)
    return np.asarray(base + goal_reward * ~(s2 == goal), dtype=np.float32)
