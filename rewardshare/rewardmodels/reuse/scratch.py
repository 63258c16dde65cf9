"""Scratch, the baseline: learn the new task's reward from its ``k`` items alone.

``theta* = argmin_theta L(theta; D_target)`` from a fresh random initialisation, i.e. the same
:func:`~.adapt.finetune` loop as every other method, started from an untrained model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.base import ReuseMethod, jsonable
from rewardshare.rewardmodels.reuse.registry import register_method


@register_method("scratch")
class Scratch(ReuseMethod):
    """The baseline: learn the new task's reward from its ``k`` items alone, from a fresh random model.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        seed: Weight initialisation seed.
        **model_kwargs: Passed to :class:`RewardModel` (``hidden_sizes``, ``use_next_obs``, ...).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, seed: int = 0, **model_kwargs: Any):
        self.observation_space = observation_space
        self.action_space = action_space
        self.seed = int(seed)
        self.model_kwargs = model_kwargs

    def pretrain(
        self, source: Objective | None = None, tasks: Sequence[Any] | None = None, *, seed: int = 0
    ) -> Scratch:
        """Nothing to learn from source tasks; kept for the common interface."""
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        return RewardModel(self.observation_space, self.action_space, seed=self.seed, **self.model_kwargs)

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "seed": self.seed,
            "model": {k: jsonable(v) for k, v in self.model_kwargs.items()},
        }
