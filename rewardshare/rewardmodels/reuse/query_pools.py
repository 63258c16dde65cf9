"""Pools of candidate queries: ``(cell, action)`` pairs for labels, pairs of segments for preferences (see
:mod:`.queries`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rewardshare.envs.layouts import Layout
from rewardshare.envs.planner import N_ACTIONS
from rewardshare.envs.tasks import GoalTask
from rewardshare.feedback import Preferences, Teacher, Transitions


# ------------------------------------------------------------------------------------------------------ pools
def _int_array(name: str, value: Any, ndim: int, last: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim or (last is not None and arr.shape[-1] != last) or (
            arr.size and not np.issubdtype(arr.dtype, np.integer)):
        want = f"{ndim}-D ints" + (f" with last axis {last}" if last is not None else "")
        raise ValueError(f"{name} with shape {arr.shape} and dtype {arr.dtype} is not allowed: use {want}")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class LabelPool:
    """Candidate reward-label queries: the transitions ``(pos, action)`` the teacher may be asked to label.

    Attributes:
        pos: int64 ``(N, 2)`` cells; action: int64 ``(N,)`` actions (the move's outcome follows the dynamics).

    Raises:
        ValueError: On arrays of other shapes, non-integer values or an empty pool.
    """

    pos: np.ndarray
    action: np.ndarray
    kind: ClassVar[str] = "labels"

    def __post_init__(self) -> None:
        object.__setattr__(self, "pos", _int_array("pos", self.pos, 2, 2))
        object.__setattr__(self, "action", _int_array("action", self.action, 1))
        if len(self.pos) != len(self.action) or not len(self.pos):
            raise ValueError(f"pos has {len(self.pos)} cells and action {len(self.action)} actions: use the same "
                             "number, at least one")
        if self.action.min() < 0 or self.action.max() >= N_ACTIONS:
            raise ValueError(f"action holds values outside 0..{N_ACTIONS - 1}")

    def __len__(self) -> int:
        return len(self.action)

    @classmethod
    def grid(cls, layout: Layout) -> LabelPool:
        """Every (free cell, action) pair of ``layout``, row-major (the learner does not know the goal, so the goal's
        own cell is a candidate too)."""
        cells = np.asarray(layout.free_cells, dtype=np.int64)
        return cls(np.repeat(cells, N_ACTIONS, axis=0), np.tile(np.arange(N_ACTIONS), len(cells)))

    @classmethod
    def from_dataset(cls, data: Transitions) -> LabelPool:
        """The transitions of a dataset as candidates (their labels are not read)."""
        return cls(data.agent_pos, data.action)


@dataclass(frozen=True)
class PreferencePool:
    """Candidate comparisons: pairs of segments of ``L`` steps that follow the dynamics.

    Attributes:
        pos_a, pos_b: int64 ``(N, L, 2)`` cells; action_a, action_b: int64 ``(N, L)``.

    Raises:
        ValueError: On mismatched shapes, non-integer values or an empty pool.
    """

    pos_a: np.ndarray
    action_a: np.ndarray
    pos_b: np.ndarray
    action_b: np.ndarray
    kind: ClassVar[str] = "preferences"

    def __post_init__(self) -> None:
        for side in ("a", "b"):
            object.__setattr__(self, f"pos_{side}", _int_array(f"pos_{side}", getattr(self, f"pos_{side}"), 3, 2))
            object.__setattr__(self, f"action_{side}", _int_array(f"action_{side}", getattr(self, f"action_{side}"), 2))
        shapes = {self.pos_a.shape[:2], self.pos_b.shape[:2], self.action_a.shape, self.action_b.shape}
        if len(shapes) != 1 or not len(self.action_a):
            raise ValueError(f"segments of shapes {sorted(shapes)} are not allowed: use pos (N, L, 2) and action "
                             "(N, L) of one N >= 1 and L on both sides")

    def __len__(self) -> int:
        return len(self.action_a)

    @classmethod
    def random(cls, layout: Layout, n: int, length: int, seed: int = 0) -> PreferencePool:
        """``n`` pairs of random-walk segments of ``length`` steps from uniformly drawn free cells.

        Raises:
            ValueError: If ``n`` or ``length`` is not an int >= 1.
        """
        for name, value in (("n", n), ("length", length)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= 1")
        rng = np.random.default_rng(seed)
        free = np.asarray(layout.free_cells, dtype=np.int64)
        nxt = Teacher(GoalTask(layout, 0, tuple(free[0]))).next_table
        w = layout.width
        sides = []
        for _ in range(2):
            flat = (free[rng.integers(len(free), size=n)] @ np.array([w, 1])).astype(np.int64)
            action = rng.integers(N_ACTIONS, size=(n, length))
            steps = []
            for t in range(length):
                steps.append(flat)
                flat = nxt[flat, action[:, t]]
            cells = np.stack(steps, axis=1)
            sides.append((np.stack([cells // w, cells % w], axis=-1), action))
        return cls(sides[0][0], sides[0][1], sides[1][0], sides[1][1])

    @classmethod
    def from_dataset(cls, data: Preferences) -> PreferencePool:
        """The segment pairs of a dataset as candidates (their labels are not read)."""
        return cls(data.agent_pos_a, data.action_a, data.agent_pos_b, data.action_b)


Pool = LabelPool | PreferencePool


