"""Transfer: start a new task from a source model's weights and fine-tune on the target's few items.

Pre-training on source tasks ``1..T`` (pooled; ``T = 1`` for one source task), each task weighted equally::

    theta_0 = argmin_theta (1/T) sum_t L_t(theta)

then, on the target task with items ``D``, :func:`~.adapt.finetune` from ``theta_0`` with part of the network frozen::

    theta* = argmin_{theta_free} L(theta_free, theta_frozen = theta_0; D)     (a few Adam steps)

Freeze options (:data:`FREEZE_OPTIONS`), for :class:`RewardModel`'s split ``R = head(trunk(x))``:

- ``"none"``: every weight moves;
- ``"first_layer"``: the input layer (the low-level features) stays, the later layers move;
- ``"trunk"``: the whole trunk stays, only the head (the last, linear layer) moves. ``"all_but_last_layer"`` is the
  same choice under its other name (the head *is* the last layer).

A goal-agnostic source model averages the source tasks' rewards: it does not know where the new goal is, so its
value lies in the shared structure (walls, "moving is -1 unless closer") that few target items then correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.base import ReuseMethod, jsonable
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.pretraining import train_per_task
from rewardshare.rewardmodels.reuse.registry import register_method

FREEZE_OPTIONS: tuple[str, ...] = ("none", "first_layer", "trunk", "all_but_last_layer")


def trainable_for_freeze(model: RewardModel, freeze: str) -> str | tuple[str, ...]:
    """The ``params`` spec (see :func:`~.functional.select_parameters`) that trains what ``freeze`` leaves free.

    Args:
        model: The model to be fine-tuned.
        freeze: One of :data:`FREEZE_OPTIONS`.

    Raises:
        ValueError: On an unknown option, or ``"first_layer"`` on a model without hidden layers.
    """
    if freeze not in FREEZE_OPTIONS:
        raise ValueError(f"freeze={freeze!r} is not allowed: use one of {FREEZE_OPTIONS}")
    ctx = ("context",) if model.learn_context else ()
    if freeze == "none":
        return "all"
    if freeze in ("trunk", "all_but_last_layer"):
        return ("head", *ctx)
    linear = [n for n, m in model.trunk.named_children() if isinstance(m, type(model.head))]
    if not linear:
        raise ValueError("freeze='first_layer' needs a model with hidden layers (hidden_sizes is empty)")
    return tuple(f"trunk.{n}" for n in linear[1:]) + ("head", *ctx)


@register_method("transfer")
class Transfer(ReuseMethod):
    """Fine-tune a source model on the target (see the module docstring for the formulas).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        freeze: Fix the freeze option (one of :data:`FREEZE_OPTIONS`); ``None`` lets :func:`~.selection.select_budget`
            choose among ``"none"``, ``"first_layer"`` and ``"trunk"``.
        source_task: Pre-train on this one source task id only; ``None`` pools every source task.
        steps: Pre-training steps.
        lr: Pre-training learning rate.
        items_per_task: Items per task per pre-training step.
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.

    Raises:
        ValueError: On an unknown freeze option.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        freeze: str | None = None,
        source_task: str | None = None,
        steps: int = 2000,
        lr: float = 1e-3,
        items_per_task: int = 32,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        if freeze is not None and freeze not in FREEZE_OPTIONS:
            raise ValueError(f"freeze={freeze!r} is not allowed: use one of {FREEZE_OPTIONS} or None")
        self.observation_space = observation_space
        self.action_space = action_space
        self.freeze = freeze
        self.source_task = source_task
        self.steps, self.lr, self.items_per_task, self.seed = int(steps), float(lr), int(items_per_task), int(seed)
        self.model_kwargs = model_kwargs
        self.model: RewardModel | None = None
        self.history: list[float] = []

    @classmethod
    def from_model(cls, model: RewardModel, freeze: str | None = None) -> Transfer:
        """Transfer from an existing source model (e.g. one loaded from a :class:`ModelStore`); no pre-training."""
        method = cls(model.observation_space, model.action_space, freeze=freeze)
        method.model = model.clone()
        return method

    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None) -> Transfer:
        """Fit the source model: on ``source_task`` alone, or on every task of ``source`` pooled.

        Raises:
            ValueError: If ``source_task`` is not among the source tasks.
        """
        seed = self.seed if seed is None else int(seed)
        if self.source_task is not None:
            groups = split_by_task(source)
            if self.source_task not in groups:
                raise ValueError(f"source_task={self.source_task!r} is not in the source data; it has {sorted(groups)}")
            source = groups[self.source_task]
        model = RewardModel(self.observation_space, self.action_space, seed=seed, **self.model_kwargs)
        self.history = train_per_task(
            model, source, source.task_ids, steps=self.steps, lr=self.lr, items_per_task=self.items_per_task, seed=seed
        )
        model.metadata["reuse_pretrain"] = {
            "method": self.name,
            "source_task": self.source_task,
            "source_tasks": sorted(split_by_task(source)),
            "steps": self.steps,
        }
        self.model = model
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        self._require_pretrained(self.model is not None)
        assert self.model is not None
        return self.model.clone()

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        self._require_pretrained(self.model is not None)
        assert self.model is not None
        options = [self.freeze] if self.freeze is not None else ["none", "first_layer", "trunk"]
        if not self.model.hidden_sizes:
            options = [o for o in options if o != "first_layer"]
        specs: list[str | tuple[str, ...]] = []
        for option in options:
            spec = trainable_for_freeze(self.model, option)
            if spec not in specs:
                specs.append(spec)
        return specs

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "freeze": self.freeze,
            "source_task": self.source_task,
            "steps": self.steps,
            "lr": self.lr,
            "items_per_task": self.items_per_task,
            "seed": self.seed,
            "model": {k: jsonable(v) for k, v in self.model_kwargs.items()},
        }
