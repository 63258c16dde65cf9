"""Grid dynamics and shortest paths: moves, BFS distances and optimal actions.

The teacher, the expert demonstrator, the native vector env and the tests all build on these functions, so the
dynamics live here once. Actions: ``0`` up, ``1`` right, ``2`` down, ``3`` left. A move into a wall or off the grid
leaves the agent where it is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np

from rewardshare.envs.layouts import Cell, Layout

ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left")
ACTION_DELTAS: tuple[Cell, ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
N_ACTIONS = 4
UNREACHABLE = -1


def free_neighbours(layout: Layout, cell: Cell) -> Iterator[Cell]:
    """The free cells one move away from ``cell`` (in action order)."""
    for dr, dc in ACTION_DELTAS:
        nxt = (cell[0] + dr, cell[1] + dc)
        if layout.is_free(nxt):
            yield nxt


def move(layout: Layout, cell: Cell, action: int) -> Cell:
    """The cell reached from ``cell`` by ``action`` (the same cell if the move is blocked)."""
    dr, dc = ACTION_DELTAS[action]
    nxt = (cell[0] + dr, cell[1] + dc)
    return nxt if layout.is_free(nxt) else cell


def transition_table(layout: Layout) -> np.ndarray:
    """Next-cell table over flat cell indices.

    Returns:
        int64 array of shape ``(height * width, 4)``: entry ``[i, a]`` is the flat index (``row * width + col``)
        of the cell reached from cell ``i`` by action ``a``. Wall cells map to themselves.
    """
    h, w = layout.height, layout.width
    table = np.repeat(np.arange(h * w, dtype=np.int64)[:, None], N_ACTIONS, axis=1)
    for r, c in layout.free_cells:
        for a in range(N_ACTIONS):
            nr, nc = move(layout, (r, c), a)
            table[r * w + c, a] = nr * w + nc
    return table


def distances_to(layout: Layout, goal: Cell) -> np.ndarray:
    """BFS shortest-path distance (in moves) from every cell to ``goal``.

    Moves are reversible on a grid (if ``a`` leads from x to y, the opposite action leads back), so a BFS from the
    goal gives the distance *to* it.

    Returns:
        int64 array of shape ``(height, width)``; walls and cells that cannot reach the goal hold ``UNREACHABLE`` (-1).

    Raises:
        ValueError: If ``goal`` is not a free cell of the layout.
    """
    if not layout.is_free(goal):
        raise ValueError(f"goal={goal!r} is not a free cell of layout {layout.name!r}")
    dist = np.full((layout.height, layout.width), UNREACHABLE, dtype=np.int64)
    dist[goal] = 0
    queue = deque([goal])
    while queue:
        cell = queue.popleft()
        for nxt in free_neighbours(layout, cell):
            if dist[nxt] == UNREACHABLE:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def connected_components(layout: Layout) -> np.ndarray:
    """Label the free cells by connected region (cells that can reach each other).

    Returns:
        int64 array of shape ``(height, width)``: a region label ``0, 1, ...`` per free cell (numbered in row-major
        order of each region's first cell) and ``UNREACHABLE`` (-1) on walls. Two free cells can reach each other
        exactly when their labels are equal.
    """
    labels = np.full((layout.height, layout.width), UNREACHABLE, dtype=np.int64)
    n_regions = 0
    for seed_cell in layout.free_cells:
        if labels[seed_cell] != UNREACHABLE:
            continue
        labels[seed_cell] = n_regions
        stack = [seed_cell]
        while stack:
            cell = stack.pop()
            for nxt in free_neighbours(layout, cell):
                if labels[nxt] == UNREACHABLE:
                    labels[nxt] = n_regions
                    stack.append(nxt)
        n_regions += 1
    return labels


def optimal_actions(layout: Layout, goal: Cell) -> np.ndarray:
    """Which actions lie on a shortest path to ``goal``, for every cell.

    Returns:
        bool array of shape ``(height, width, 4)``. At the goal, on walls and at unreachable cells all entries
        are ``False``.
    """
    dist = distances_to(layout, goal)
    best = np.zeros((layout.height, layout.width, N_ACTIONS), dtype=bool)
    for cell in layout.free_cells:
        d = dist[cell]
        if d <= 0:
            continue
        for a in range(N_ACTIONS):
            if dist[move(layout, cell, a)] == d - 1:
                best[cell + (a,)] = True
    return best
