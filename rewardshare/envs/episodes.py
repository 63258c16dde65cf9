"""Where a GridGoal episode starts and ends: the goal / start arguments checked against a layout, and each episode's
draw of ``(goal, start)``.

:class:`EpisodeCells` is shared by :class:`~rewardshare.envs.GridGoalEnv` and (through it)
:class:`~rewardshare.envs.GridGoalVectorEnv`, so the single and the vector env draw the same episodes from the same
generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardshare.envs.layouts import Cell, Layout
from rewardshare.envs.planner import connected_components


def check_cell(name: str, value: Any, layout: Layout) -> Cell:
    """``value`` as a ``(row, col)`` free cell of ``layout``.

    Raises:
        ValueError: Naming ``name`` and the value: not a pair of ints, outside the grid, or a wall.
    """
    if isinstance(value, np.ndarray):
        value = tuple(value.tolist())
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{name}={value!r} is not allowed: use a (row, col) pair of ints or 'random'")
    cell = (int(value[0]), int(value[1]))
    if not layout.in_bounds(cell):
        raise ValueError(
            f"{name}={cell!r} is outside the grid: allowed rows are 0..{layout.height - 1}, "
            f"columns 0..{layout.width - 1}"
        )
    if not layout.is_free(cell):
        raise ValueError(f"{name}={cell!r} is a wall of layout {layout.name!r}: choose a free cell")
    return cell


class EpisodeCells:
    """The goal and start arguments of a GridGoal env, validated against one layout, and the per-episode draws.

    Args:
        layout: The layout.
        goal: A cell, ``"random"`` or ``None`` (the map's ``G`` marker, else the bottom-right free cell).
        start: A cell, ``"random"`` or ``None`` (the map's ``S`` marker, else the top-left free cell).
        goals: Candidates for ``goal="random"`` (default: every free cell a start can reach).

    Attributes:
        goal: The fixed goal, or ``None`` when it is drawn per episode.
        start: The fixed start, or ``None`` when it is drawn per episode.
        goal_choices: The candidates of a random goal (every free cell when the goal is fixed).

    Raises:
        ValueError: As listed in :class:`~rewardshare.envs.GridGoalEnv`'s docstring (cells outside the grid or on
            walls, start equal to goal, an unreachable goal, ``goals`` without ``goal="random"``...).
    """

    def __init__(
        self,
        layout: Layout,
        goal: Sequence[int] | str | None,
        start: Sequence[int] | str | None,
        goals: Sequence[Sequence[int]] | None,
    ) -> None:
        if isinstance(goal, str) and goal != "random":
            raise ValueError(f"goal={goal!r} is not allowed: use a (row, col) cell, 'random' or None")
        if isinstance(start, str) and start != "random":
            raise ValueError(f"start={start!r} is not allowed: use a (row, col) cell, 'random' or None")
        if len(layout.free_cells) < 2:
            raise ValueError(
                f"layout {layout.name!r} has fewer than 2 free cells: it needs room for a start and a goal"
            )
        self.layout = layout
        random_goal = isinstance(goal, str)
        random_start = isinstance(start, str)
        if goal is None:
            goal = layout.goal if layout.goal is not None else layout.free_cells[-1]
        if start is None:
            start = layout.start if layout.start is not None else layout.free_cells[0]
        self.goal: Cell | None = None if random_goal else check_cell("goal", goal, layout)
        self.start: Cell | None = None if random_start else check_cell("start", start, layout)
        # region labels answer "can a reach b" in O(1); random draws must stay inside the goal's region
        labels = connected_components(layout)
        self._width = layout.width
        self._free_cells = layout.free_cells
        self._region = labels.ravel().tolist()
        self._region_size = np.bincount(labels[labels >= 0]).tolist()
        if goals is not None and not random_goal:
            raise ValueError("goals=... needs goal='random'; pass a single goal or goal='random' with goals")
        if self.goal is not None and self.goal == self.start:
            raise ValueError(f"start={self.start!r} equals goal={self.goal!r}: choose different cells")
        if self.goal is not None and self.start is not None and not self.connected(self.goal, self.start):
            raise ValueError(f"goal={self.goal!r} is unreachable from start={self.start!r} on layout {layout.name!r}")
        if self.goal is not None and self.start is None and not self.has_start_for(self.goal):
            raise ValueError(
                f"goal={self.goal!r} cannot be reached from any other free cell of layout {layout.name!r}, "
                "so start='random' has nothing to draw: choose a goal in a region of at least two cells"
            )
        self.goal_choices = self._goal_choices(layout, goals, start) if random_goal else layout.free_cells

    def _goal_choices(self, layout: Layout, goals: Sequence[Sequence[int]] | None, start: Any) -> tuple[Cell, ...]:
        """The candidates of ``goal="random"``, each checked to have a start."""
        if goals is not None:
            choices = tuple(check_cell("goals[]", g, layout) for g in goals)
            if not choices:
                raise ValueError("goals=[] is not allowed: give at least one candidate goal cell")
            for g in choices:
                if self.start is not None and (g == self.start or not self.connected(g, self.start)):
                    raise ValueError(
                        f"goals[] holds {g!r}, which equals or is unreachable from start={self.start!r}: "
                        "every candidate goal must be reachable from the start and differ from it"
                    )
                if self.start is None and not self.has_start_for(g):
                    raise ValueError(
                        f"goals[] holds {g!r}, which no other free cell can reach: start='random' needs one"
                    )
        elif self.start is not None:  # every free cell the fixed start can reach, except the start
            choices = tuple(c for c in layout.free_cells if c != self.start and self.connected(c, self.start))
        else:
            choices = tuple(c for c in layout.free_cells if self.has_start_for(c))
        if not choices:
            raise ValueError(f"goal='random' has no candidate goal on layout {layout.name!r} from start={start!r}")
        return choices

    def connected(self, a: Cell, b: Cell) -> bool:
        """Whether cells ``a`` and ``b`` lie in the same region (each can reach the other)."""
        w = self._width
        return self._region[a[0] * w + a[1]] == self._region[b[0] * w + b[1]]

    def has_start_for(self, goal: Cell) -> bool:
        """Whether some free cell other than ``goal`` can reach it (so a random start can be drawn)."""
        return self._region_size[self._region[goal[0] * self._width + goal[1]]] >= 2

    def draw_episode(self, rng: np.random.Generator, options: dict[str, Any]) -> tuple[Cell, Cell]:
        """Draw an episode's ``(goal, start)`` from ``rng``.

        Args:
            rng: The generator random goals and starts are drawn from.
            options: Optional ``"goal"`` and ``"start"`` cells overriding the env's goal / start for this episode.

        Returns:
            ``(goal, start)``, two different free cells, the goal reachable from the start.

        Raises:
            ValueError: If an ``options`` cell is not a free cell, the two coincide, or the goal is unreachable.
        """
        if not options:  # the common case: every cell involved was validated when the layout was set
            goal = self.goal
            if goal is None:
                choices = self.goal_choices
                goal = choices[int(rng.integers(len(choices)))]
            start = self.start
            if start is None:
                start = self.draw_start(rng, goal)
            return goal, start
        if "goal" in options:
            goal = check_cell("options['goal']", options["goal"], self.layout)
        elif self.goal is not None:
            goal = self.goal
        else:
            goal = self.goal_choices[int(rng.integers(len(self.goal_choices)))]
        if "start" in options:
            start = check_cell("options['start']", options["start"], self.layout)
        elif self.start is not None:
            start = self.start
        else:
            if not self.has_start_for(goal):
                raise ValueError(
                    f"options['goal']={goal!r} cannot be reached from any other free cell, so start='random' "
                    "has nothing to draw: choose a goal in a region of at least two cells"
                )
            start = self.draw_start(rng, goal)
        if start == goal:
            raise ValueError(f"start={start!r} equals goal={goal!r} in this episode: choose different cells")
        if not self.connected(goal, start):
            raise ValueError(f"goal={goal!r} is unreachable from start={start!r} on layout {self.layout.name!r}")
        return goal, start

    def draw_start(self, rng: np.random.Generator, goal: Cell) -> Cell:
        """Draw a random start for ``goal``: a uniform free cell other than the goal, in the goal's region.

        ``goal`` must be a free cell that some other free cell can reach (the callers check this).
        """
        free = self._free_cells
        n = len(free)
        region, w = self._region, self._width
        goal_region = region[goal[0] * w + goal[1]]
        # rejection keeps the draw a plain uniform pick on connected layouts (the usual case)
        while True:
            start = free[int(rng.integers(n))]
            if start != goal and region[start[0] * w + start[1]] == goal_region:
                return start
