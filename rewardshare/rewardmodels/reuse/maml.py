"""MAML and Meta-SGD as reuse methods: meta-train on the source tasks, adapt with the learned inner loop.

``maml`` meta-learns the initial weights with one fixed inner learning rate; ``meta_sgd`` also learns one inner
rate per weight (see :mod:`.maml_learner` for the meta-objective and :mod:`.maml_backends` for how it is computed).
Both are built from plain keyword settings, the fields of :class:`~.maml_learner.MAMLConfig`::

    make_method("meta_sgd", obs_space, act_space, iterations=500, inner_steps=5, hidden_sizes=(64, 64))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gymnasium import spaces

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget
from rewardshare.rewardmodels.reuse.base import ReuseMethod, jsonable
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig
from rewardshare.rewardmodels.reuse.registry import register_method

#: The MAML settings a factory reads from its keyword arguments (``meta_sgd`` is fixed by the method's name).
CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MAMLConfig) if f.name != "meta_sgd")


class MAMLMethod(ReuseMethod):
    """MAML / Meta-SGD as a reuse method: meta-train on the source tasks, adapt with the learned inner loop.

    An :class:`AdaptationBudget` reads here as: ``steps`` inner steps, ``lr`` a multiplier of the meta-learned inner
    rates (``1.0`` = as meta-trained); ``params`` is fixed by ``config.inner_params``.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        config: MAML settings.
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.
    """

    name = "maml"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: MAMLConfig | None = None,
        *,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.maml_config = config or MAMLConfig()
        self.seed = int(seed)
        self.model_kwargs = model_kwargs
        self.maml: MAML | None = None
        self.history: list[float] = []
        if self.maml_config.meta_sgd:
            self.name = "meta_sgd"

    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None) -> MAMLMethod:
        """Meta-train on the source tasks."""
        seed = self.seed if seed is None else int(seed)
        model = RewardModel(self.observation_space, self.action_space, seed=seed, **self.model_kwargs)
        self.maml = MAML(model, self.maml_config)
        self.history = self.maml.meta_train(source, seed=seed)
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        self._require_pretrained(self.maml is not None)
        assert self.maml is not None
        return self.maml.model.clone()  # type: ignore[operator]

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        # budget.steps inner steps at budget.lr times the meta-learned rates (see the class docstring)
        self._require_pretrained(self.maml is not None)
        assert self.maml is not None
        return self.maml.adapt_many(
            targets,
            budgets[0].steps,
            [b.lr for b in budgets],
            checkpoints=list(checkpoints),
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
        )

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        inner = self.maml_config.inner_params
        return ["all" if inner is None else tuple(inner)]

    def candidate_lrs(self) -> list[float]:
        # multipliers of the meta-learned rates: 1.0 is what meta-training optimised; smaller ones let many more
        # steps than K run without diverging
        return [0.1, 0.3, 1.0]

    def candidate_steps(self) -> list[int]:
        k = max(1, self.maml_config.inner_steps)
        return [0, k, 2 * k, 5 * k, 20 * k, 60 * k]

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "maml": self.maml_config.to_dict(),
            "seed": self.seed,
            "model": {k: jsonable(v) for k, v in self.model_kwargs.items()},
        }


def _build(
    meta_sgd: bool, observation_space: spaces.Space, action_space: spaces.Space, seed: int, settings: dict[str, Any]
) -> MAMLMethod:
    if "meta_sgd" in settings:
        raise TypeError("meta_sgd is not a setting: the method name decides it (use 'maml' or 'meta_sgd')")
    config = {k: settings.pop(k) for k in CONFIG_FIELDS if k in settings}
    return MAMLMethod(observation_space, action_space, MAMLConfig(meta_sgd=meta_sgd, **config), seed=seed, **settings)


@register_method("maml")
def maml(observation_space: spaces.Space, action_space: spaces.Space, *, seed: int = 0, **settings: Any) -> MAMLMethod:
    """MAML with one fixed inner learning rate.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        seed: Seeds initialisation and sampling.
        **settings: Fields of :class:`~.maml_learner.MAMLConfig` (``iterations``, ``inner_steps``, ``inner_lr``,
            ``support_size``, ...; not ``meta_sgd``); the rest is passed to :class:`RewardModel`.
    """
    return _build(False, observation_space, action_space, seed, dict(settings))


@register_method("meta_sgd")
def meta_sgd(
    observation_space: spaces.Space, action_space: spaces.Space, *, seed: int = 0, **settings: Any
) -> MAMLMethod:
    """Meta-SGD: MAML that also meta-learns one inner learning rate per weight (``inner_lr`` is their start).

    Args: as :func:`maml`.
    """
    return _build(True, observation_space, action_space, seed, dict(settings))
