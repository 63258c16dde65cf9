"""Planner: BFS distances and optimal actions against a brute-force search, plus exact small cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardshare.envs import (
    ACTION_DELTAS,
    Layout,
    connected_components,
    distances_to,
    make_layout,
    move,
    optimal_actions,
    parse_ascii,
    transition_table,
)

INF = 10**9


def brute_force_distances(walls: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Distances to ``goal`` by repeated Bellman-Ford relaxation over all cells (no queue, no planner code)."""
    h, w = walls.shape
    dist = np.full((h, w), INF, dtype=np.int64)
    dist[goal] = 0
    changed = True
    while changed:
        changed = False
        for r in range(h):
            for c in range(w):
                if walls[r, c]:
                    continue
                for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
                    nr, nc = r + dr, c + dc
                    if 0 <= nr < h and 0 <= nc < w and not walls[nr, nc] and dist[nr, nc] + 1 < dist[r, c]:
                        dist[r, c] = dist[nr, nc] + 1
                        changed = True
    return np.where(dist == INF, -1, dist)


@st.composite
def layouts_with_goal(draw: st.DrawFn) -> tuple[Layout, tuple[int, int]]:
    h = draw(st.integers(1, 7))
    w = draw(st.integers(2, 7))
    density = draw(st.sampled_from([0.0, 0.2, 0.35, 0.5]))
    bits = draw(st.lists(st.floats(0, 1), min_size=h * w, max_size=h * w))
    walls = (np.array(bits) < density).reshape(h, w)
    free = np.argwhere(~walls)
    if len(free) == 0:
        walls[0, 0] = False
        free = np.argwhere(~walls)
    goal = tuple(int(v) for v in free[draw(st.integers(0, len(free) - 1))])
    return Layout("test", walls), goal


@settings(max_examples=80, deadline=None)
@given(layouts_with_goal())
def test_distances_equal_brute_force(case: tuple[Layout, tuple[int, int]]) -> None:
    layout, goal = case
    np.testing.assert_array_equal(distances_to(layout, goal), brute_force_distances(layout.walls, goal))


@settings(max_examples=60, deadline=None)
@given(layouts_with_goal())
def test_optimal_actions_are_exactly_the_distance_decreasing_moves(case: tuple[Layout, tuple[int, int]]) -> None:
    layout, goal = case
    dist = brute_force_distances(layout.walls, goal)
    best = optimal_actions(layout, goal)
    h, w = layout.walls.shape
    assert best.shape == (h, w, 4) and best.dtype == bool
    for r in range(h):
        for c in range(w):
            d = dist[r, c]
            for a, (dr, dc) in enumerate(ACTION_DELTAS):
                nr, nc = r + dr, c + dc
                inside = 0 <= nr < h and 0 <= nc < w and not layout.walls[nr, nc]
                expected = d > 0 and inside and dist[nr, nc] == d - 1
                assert best[r, c, a] == expected, (r, c, a)
            if d > 0:
                assert best[r, c].any()  # every cell that can reach the goal has a way forward


@settings(max_examples=60, deadline=None)
@given(layouts_with_goal())
def test_transition_table_and_components_agree_with_brute_force(case: tuple[Layout, tuple[int, int]]) -> None:
    layout, goal = case
    h, w = layout.walls.shape
    table = transition_table(layout)
    assert table.shape == (h * w, 4) and table.dtype == np.int64
    for r in range(h):
        for c in range(w):
            for a, (dr, dc) in enumerate(ACTION_DELTAS):
                nr, nc = r + dr, c + dc
                blocked = layout.walls[r, c] or not (0 <= nr < h and 0 <= nc < w) or layout.walls[nr, nc]
                want = (r, c) if blocked else (nr, nc)
                assert table[r * w + c, a] == want[0] * w + want[1]
                if not layout.walls[r, c]:
                    assert move(layout, (r, c), a) == want
    labels = connected_components(layout)
    reach = brute_force_distances(layout.walls, goal) >= 0
    np.testing.assert_array_equal(labels == labels[goal], reach)
    assert (labels[layout.walls] == -1).all() and (labels[~layout.walls] >= 0).all()


SMALL = """
#######
#S....#
#.###.#
#...#G#
#######
"""


def test_distances_on_a_small_map_exact() -> None:
    layout = parse_ascii(SMALL)
    assert layout.start == (1, 1) and layout.goal == (3, 5)
    expected = np.array(
        [
            [-1, -1, -1, -1, -1, -1, -1],
            [-1, 6, 5, 4, 3, 2, -1],
            [-1, 7, -1, -1, -1, 1, -1],
            [-1, 8, 9, 10, -1, 0, -1],
            [-1, -1, -1, -1, -1, -1, -1],
        ]
    )
    np.testing.assert_array_equal(distances_to(layout, (3, 5)), expected)
    best = optimal_actions(layout, (3, 5))
    assert best[1, 1].tolist() == [False, True, False, False]  # only right
    assert best[3, 1].tolist() == [True, False, False, False]  # only up
    assert not best[3, 5].any() and not best[0, 0].any()


def test_optimal_actions_ties_on_open_grid() -> None:
    best = optimal_actions(make_layout("open", 3), (2, 2))
    assert best[0, 0].tolist() == [False, True, True, False]  # right and down both shorten the path
    assert best[2, 0].tolist() == [False, True, False, False]


def test_unreachable_cells_and_bad_goal() -> None:
    layout = parse_ascii("S.#.\n..#G")
    dist = distances_to(layout, (1, 3))
    assert dist[0, 0] == -1 and dist[0, 3] == 1
    assert not optimal_actions(layout, (1, 3))[0, 0].any()
    np.testing.assert_array_equal(connected_components(layout), [[0, 0, -1, 1], [0, 0, -1, 1]])
    with pytest.raises(ValueError, match=r"goal=\(0, 2\) is not a free cell"):
        distances_to(layout, (0, 2))
    with pytest.raises(ValueError, match=r"goal=\(5, 0\) is not a free cell"):
        distances_to(layout, (5, 0))
