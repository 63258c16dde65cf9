"""MAML and Meta-SGD as reuse methods: meta-train on the source tasks, adapt with the learned inner loop.

``maml`` meta-learns the initial weights with one fixed inner learning rate; ``meta_sgd`` also learns one inner
rate per weight (see :mod:`.maml_learner` for the meta-objective and :mod:`.maml_backends` for how it is computed).
Both are built from plain keyword settings, the fields of :class:`~.maml_learner.MAMLConfig`::

    make_method("meta_sgd", obs_space, act_space, iterations=500, inner_steps=5, support_size=(1, 256),
                hidden_sizes=(64, 64))

How far to adapt is chosen per ``k`` on validation tasks (:func:`~.selection.select_budget`), and so is *how*: an
:class:`~.adapt.AdaptationBudget` of a MAML-family method names its optimiser in ``params``
(:func:`split_optimizer`): the inner loop's own update (plain gradient steps with the meta-learned rates; ``params``
is the inner loop's parameter spec) or Adam (``params = ("adam", *spec)``). ``lr`` multiplies the optimiser's
reference rate (the meta-learned rates, or ``adam_lr``), so one grid of multipliers serves both. The candidate steps
reach :data:`MAX_CANDIDATE_STEPS` (and budget selection widens the grid beyond it when the most steps win): a few
inner steps are what meta-training optimised, but with hundreds of labels thousands of steps fit much better (at
``k = 256`` a few hundred SGD steps plateaued at EPIC 0.25-0.38, 3000 reached 0.08).
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
from rewardshare.rewardmodels.reuse.maml_learner import MAML, OPTIMIZERS, MAMLConfig
from rewardshare.rewardmodels.reuse.registry import register_method

#: The MAML settings a factory reads from its keyword arguments (``meta_sgd`` is fixed by the method's name).
CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MAMLConfig) if f.name != "meta_sgd")
#: The first entry of a budget's ``params`` that selects Adam (see :func:`split_optimizer`).
ADAM = "adam"
#: The most steps among the default candidates (budget selection may widen beyond).
MAX_CANDIDATE_STEPS = 1000


def split_optimizer(params: str | tuple[str, ...]) -> tuple[str, str | tuple[str, ...]]:
    """A MAML-family budget's ``params`` as ``(optimizer, parameter spec)``.

    ``("adam", *spec)`` is Adam on ``spec`` (``("adam",)`` or ``("adam", "all")``: every parameter); anything else is
    the inner loop's update (``"sgd"``) on the inner loop's parameters.

    Examples:
        >>> split_optimizer("all")
        ('sgd', 'all')
        >>> split_optimizer(("adam", "context"))
        ('adam', ('context',))
    """
    if isinstance(params, tuple) and params and params[0] == ADAM:
        rest = params[1:]
        return ADAM, "all" if rest in ((), ("all",)) else rest
    return OPTIMIZERS[0], params


class MAMLMethod(ReuseMethod):
    """MAML / Meta-SGD as a reuse method: meta-train on the source tasks, adapt with the learned inner loop.

    An :class:`AdaptationBudget` reads here as: ``steps`` update steps; ``params`` the optimiser and what it adapts
    (:func:`split_optimizer`): the inner loop's update on ``config.inner_params``, or ``("adam", *spec)``; ``lr`` a
    multiplier of the meta-learned inner rates (``1.0`` = as meta-trained) or of ``config.adam_lr``.

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
        # budget.steps steps of the budget's optimiser at budget.lr times its reference rate (class docstring)
        self._require_pretrained(self.maml is not None)
        assert self.maml is not None
        optimizer, spec = split_optimizer(budgets[0].params)
        return self.maml.adapt_many(
            targets,
            budgets[0].steps,
            [b.lr for b in budgets],
            optimizer=optimizer,
            params=spec if optimizer == ADAM else None,
            checkpoints=list(checkpoints),
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
            start=starts,
        )

    def _inner_spec(self) -> str | tuple[str, ...]:
        inner = self.maml_config.inner_params
        return "all" if inner is None else tuple(inner)

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        """The inner loop's update and Adam, each on the inner loop's parameters."""
        spec = self._inner_spec()
        return [spec, (ADAM, *((spec,) if isinstance(spec, str) else spec))]

    def candidate_lrs(self) -> list[float]:
        # multipliers of the optimiser's reference rate: 1.0 is what meta-training optimised (SGD) or adam_lr;
        # smaller ones let many more steps than K run without diverging
        return [0.1, 0.3, 1.0]

    def candidate_steps(self) -> list[int]:
        k = max(1, self.maml_config.inner_steps)
        return sorted({0, k, 2 * k, 5 * k, 30, 100, 300, MAX_CANDIDATE_STEPS})

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
