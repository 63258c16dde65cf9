"""Task-descriptor conditioning: tell the reward model what differs between tasks.

The model reads a descriptor ``phi(task)`` of the task next to the transition::

    R(s, a, phi(task)),        min_theta (1/T) sum_t L_t(theta; phi(t))

with ``phi`` = the goal's coordinates normalised to ``[-1, 1]`` (:func:`goal_descriptor`) by default. A held-out task
is served *zero-shot*: its descriptor is computed, no feedback needed (``steps=0``); its few items can optionally
fine-tune the network (with :func:`~.selection.select_budget` deciding whether that helps). The descriptor is stored as
the model's fixed ``context`` buffer, so the per-task model is a plain :class:`RewardModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.base import PerTaskPretrained
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.registry import register_method

Descriptor = Callable[[Any], np.ndarray]


def goal_descriptor(goal: Sequence[int], height: int, width: int) -> np.ndarray:
    """The goal cell ``(row, col)`` mapped to ``[-1, 1]^2``: ``2 * row / (H - 1) - 1``, ``2 * col / (W - 1) - 1``.

    Returns:
        float32 array ``(2,)``.

    Raises:
        ValueError: If the goal lies outside an ``height x width`` grid.
    """
    r, c = int(goal[0]), int(goal[1])
    if not (0 <= r < height and 0 <= c < width):
        raise ValueError(f"goal={tuple(goal)!r} is outside the {height}x{width} grid")
    scale = lambda v, n: 2.0 * v / max(n - 1, 1) - 1.0  # noqa: E731
    return np.array([scale(r, height), scale(c, width)], dtype=np.float32)


def _goal_of(task: Any) -> tuple[int, int]:
    if hasattr(task, "goal"):
        return tuple(task.goal)  # type: ignore[return-value]
    if isinstance(task, str):
        from rewardshare.envs import goal_from_task_id

        return goal_from_task_id(task)
    arr = np.asarray(task)
    if arr.shape == (2,):
        return int(arr[0]), int(arr[1])
    raise TypeError(
        f"task={task!r} is not allowed: use a GoalTask, a task id '<layout>/g<row>_<col>' or a (row, col) cell"
    )


@register_method("goal_conditioned")
class GoalConditioned(PerTaskPretrained):
    """``R(s, a, phi(task))`` with ``phi`` the normalised goal coordinates (see the module docstring).

    Args:
        observation_space: The env's observation space (which does *not* show the goal).
        action_space: The env's action space.
        height: Grid height for the normalisation; default read from the tasks at :meth:`pretrain`.
        width: Grid width; default likewise.
        descriptor: A custom ``phi(task) -> (context_dim,)`` array; default :func:`goal_descriptor` of the task's goal.
        context_dim: Size of ``phi``'s output (2 for the default).
        **kwargs: The pre-training settings of :class:`~.base.PerTaskPretrained` (``steps``, ``lr``,
            ``items_per_task``, ``tasks_per_step``, ``seed``); the rest is passed to :class:`RewardModel`.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        height: int | None = None,
        width: int | None = None,
        descriptor: Descriptor | None = None,
        context_dim: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        self.height, self.width = height, width
        self.custom_descriptor = descriptor
        self.context_dim = int(context_dim)

    def descriptor(self, task: Any) -> np.ndarray:
        """``phi(task)``: ``(context_dim,)`` float32.

        Args:
            task: A ``GoalTask``, a task id ending in ``/g<row>_<col>``, or a ``(row, col)`` cell.

        Raises:
            ValueError: If the grid size is unknown (pass ``height``/``width`` or pretrain with tasks) or ``phi``
                has the wrong size.
        """
        if self.custom_descriptor is not None:
            phi = np.asarray(self.custom_descriptor(task), dtype=np.float32)
        else:
            if self.height is None or self.width is None:
                layout = getattr(task, "resolve_layout", None)
                if layout is None:
                    raise ValueError("the grid size is unknown: pass height= and width=, or GoalTask objects")
                lay = layout()
                self.height, self.width = lay.height, lay.width
            phi = goal_descriptor(_goal_of(task), self.height, self.width)
        if phi.shape != (self.context_dim,):
            raise ValueError(f"descriptor has shape {phi.shape}: expected ({self.context_dim},) (context_dim)")
        return phi

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> GoalConditioned:
        """Learn ``R(s, a, phi)`` on the source tasks, each item with its own task's descriptor.

        Args:
            source: Pooled items of the source tasks.
            tasks: ``GoalTask`` objects of the source tasks (default: goals read from the task ids, which needs
                ``height``/``width``).
            seed: Seeds initialisation and sampling.

        Raises:
            ValueError: If a source task has no descriptor.
        """
        seed = self.seed if seed is None else int(seed)
        ids = sorted(split_by_task(source))
        by_id = {str(t.id): t for t in (tasks or [])}
        phis = np.stack([self.descriptor(by_id.get(t, t)) for t in ids])
        model = self._new_model(seed, context_dim=self.context_dim, learn_context=False)
        self._train(model, source, ids, seed, overrides={"context": torch.as_tensor(phis)})
        self.model, self.task_ids = model, ids
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        """The zero-shot model of ``task``: the network with ``phi(task)`` as its fixed context.

        Raises:
            ValueError: If ``task`` is ``None`` (the method needs to know the goal).
        """
        self._require_pretrained(self.model is not None)
        if task is None:
            raise ValueError("task=None is not allowed: goal conditioning needs the task (its goal) to build phi(task)")
        assert self.model is not None
        out = self.model.clone()
        out.set_context(self.descriptor(task), learnable=False)
        return out

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        return ["all", ("head",)]

    def config(self) -> dict[str, Any]:
        return {
            **self._base_config(),
            "descriptor": "custom" if self.custom_descriptor else "goal_coords_normalized",
            "height": self.height,
            "width": self.width,
            "context_dim": self.context_dim,
        }
