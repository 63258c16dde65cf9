"""Tasks are goal placements: :class:`GoalTask` and :class:`TaskFamily` with a seeded train / held-out split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from rewardshare.envs.grid_env import OBS_MODES, GridGoalEnv, task_id_for
from rewardshare.envs.layouts import Cell, Layout, make_layout
from rewardshare.envs.planner import distances_to

SUBSETS: tuple[str, ...] = ("all", "corners", "edges", "rooms")
SPLITS: tuple[str, ...] = ("train", "held_out")


@dataclass(frozen=True)
class GoalTask:
    """One task: reach ``goal`` on a layout.

    Attributes:
        layout: Layout name (``"open"``, ``"four_rooms"``, ``"maze"``) or an ASCII map.
        size: Side length for named layouts.
        goal: The goal cell ``(row, col)``.
        layout_seed: The maze seed (ignored by other layouts).
        id: Stable task id, e.g. ``"four_rooms-9x9/g1_7"``; equals the env's ``info["task_id"]``.
    """

    layout: str
    size: int
    goal: Cell
    layout_seed: int = 0
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "goal", (int(self.goal[0]), int(self.goal[1])))
        if not self.id:
            object.__setattr__(self, "id", task_id_for(self.resolve_layout(), self.goal))

    def resolve_layout(self) -> Layout:
        """The task's :class:`Layout`."""
        return make_layout(self.layout, self.size, self.layout_seed)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make a :class:`GridGoalEnv` for this task (``start`` left to the caller)."""
        return {"layout": self.layout, "size": self.size, "goal": self.goal, "layout_seed": self.layout_seed}

    def make_env(self, **kwargs: Any) -> GridGoalEnv:
        """A :class:`GridGoalEnv` for this task; ``kwargs`` (obs_mode, start, ...) are passed through.

        The start defaults to ``"random"`` so that a fixed start never coincides with the goal.
        """
        kwargs.setdefault("start", "random")
        return GridGoalEnv(**self.env_kwargs(), **kwargs)

    def observation_spaces(self) -> list[tuple[dict[str, Any], spaces.Space]]:
        """Every observation option of this task's env with the space it emits: ``[({"obs_mode": ...,
        "observe_goal": ...}, space), ...]``, in :data:`OBS_MODES` order, without the goal first."""
        out = []
        for obs_mode in OBS_MODES:
            for observe_goal in (False, True):
                kwargs = {"obs_mode": obs_mode, "observe_goal": observe_goal}
                out.append((kwargs, self.make_env(**kwargs).observation_space))
        return out

    def env_kwargs_for_space(self, observation_space: spaces.Space) -> dict[str, Any] | None:
        """The ``obs_mode`` / ``observe_goal`` under which this task's env emits ``observation_space`` (e.g. the one a
        reward model was built for), or ``None`` if no option does."""
        return next((kw for kw, space in self.observation_spaces() if space == observation_space), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for provenance in saved files)."""
        return {
            "layout": self.layout, "size": self.size, "goal": list(self.goal), "layout_seed": self.layout_seed,
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GoalTask:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["layout"], int(data["size"]), tuple(data["goal"]), int(data.get("layout_seed", 0)), data.get("id", "")
        )


def _subset_cells(layout: Layout, subset: str) -> list[Cell]:
    free = list(layout.free_cells)
    h, w = layout.height, layout.width
    if subset == "all":
        return free
    if subset == "corners":
        corners = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]
        picked: list[Cell] = []
        for cr, cc in corners:  # the free cell nearest each grid corner
            cell = min(free, key=lambda x: (abs(x[0] - cr) + abs(x[1] - cc), x))
            if cell not in picked:
                picked.append(cell)
        return picked
    if subset == "edges":
        # free cells next to the boundary or to an outer wall ring, i.e. on the outermost free ring
        rmin, rmax = min(r for r, _ in free), max(r for r, _ in free)
        cmin, cmax = min(c for _, c in free), max(c for _, c in free)
        return [(r, c) for r, c in free if r in (rmin, rmax) or c in (cmin, cmax)]
    if subset == "rooms":
        # room cells: free cells that are not doorways (a doorway has walls on two opposite sides; the grid's
        # border counts as a wall, so a gap between an inner wall and the border is a doorway too)
        def doorway(r: int, c: int) -> bool:
            wall = lambda rr, cc: not layout.is_free((rr, cc))  # noqa: E731
            return (wall(r - 1, c) and wall(r + 1, c)) or (wall(r, c - 1) and wall(r, c + 1))

        return [cell for cell in free if not doorway(*cell)]
    raise ValueError(f"subset={subset!r} is not allowed: use one of {SUBSETS}")


@dataclass
class TaskFamily:
    """All goal placements of one layout (or a named subset), split into ``train`` and ``held_out`` tasks.

    The split is a seeded permutation, so the same arguments always give the same split on every machine.

    Args:
        layout: ``"open"``, ``"four_rooms"``, ``"maze"`` or an ASCII map.
        size: Side length of named layouts.
        subset: Which goal cells make tasks: ``"all"`` free cells, the free cells nearest the four ``"corners"``,
            the outermost free ring (``"edges"``), or ``"rooms"`` (free cells that are not doorways).
        layout_seed: Maze seed.
        held_out_fraction: Fraction of tasks held out (at least one task stays on each side).
        split_seed: Seed of the train / held-out permutation.

    Raises:
        ValueError: On an unknown subset, a fraction outside (0, 1), or a family with fewer than two tasks.
    """

    layout: str = "open"
    size: int = 8
    subset: str = "all"
    layout_seed: int = 0
    held_out_fraction: float = 0.25
    split_seed: int = 0
    tasks: tuple[GoalTask, ...] = field(init=False)
    train: tuple[GoalTask, ...] = field(init=False)
    held_out: tuple[GoalTask, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction={self.held_out_fraction!r} is not allowed: use a float in (0, 1)")
        lay = make_layout(self.layout, self.size, self.layout_seed)
        cells = _subset_cells(lay, self.subset)
        # every goal must be reachable from some other free cell (a goal in a sealed pocket is no task)
        cells = [c for c in cells if (distances_to(lay, c) > 0).any()]
        if len(cells) < 2:
            raise ValueError(f"subset={self.subset!r} of layout {lay.name!r} has {len(cells)} task(s): need at least 2")
        self.tasks = tuple(GoalTask(self.layout, self.size, c, self.layout_seed) for c in cells)
        order = np.random.default_rng(self.split_seed).permutation(len(self.tasks))
        n_held = min(len(self.tasks) - 1, max(1, round(self.held_out_fraction * len(self.tasks))))
        held = set(order[:n_held].tolist())
        self.held_out = tuple(t for i, t in enumerate(self.tasks) if i in held)
        self.train = tuple(t for i, t in enumerate(self.tasks) if i not in held)

    @property
    def name(self) -> str:
        """The family's name, e.g. ``"four_rooms-9x9/all"``."""
        return f"{make_layout(self.layout, self.size, self.layout_seed).name}/{self.subset}"

    def split(self, name: str) -> tuple[GoalTask, ...]:
        """The tasks of split ``name`` (``"train"``, ``"held_out"`` or ``"all"``)."""
        if name == "train":
            return self.train
        if name == "held_out":
            return self.held_out
        if name == "all":
            return self.tasks
        raise ValueError(f"split={name!r} is not allowed: use one of {SPLITS + ('all',)}")

    def task(self, task_id: str) -> GoalTask:
        """Look a task up by its id."""
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise ValueError(f"task_id={task_id!r} is not in family {self.name!r}; it has e.g. {self.tasks[0].id!r}")

    def make_env(self, task: GoalTask | str, **kwargs: Any) -> GridGoalEnv:
        """A :class:`GridGoalEnv` for ``task`` (a task or its id); kwargs are passed to the env."""
        if isinstance(task, str):
            task = self.task(task)
        return task.make_env(**kwargs)

    def make_multigoal_env(self, split: str = "train", **kwargs: Any) -> GridGoalEnv:
        """One env whose goal is drawn per episode from the tasks of ``split`` and observed."""
        kwargs.setdefault("start", "random")
        kwargs.setdefault("observe_goal", True)
        return GridGoalEnv(
            layout=self.layout, size=self.size, layout_seed=self.layout_seed, goal="random",
            goals=[t.goal for t in self.split(split)], **kwargs,
        )
