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

**Transfer from a model store** (:meth:`Transfer.from_store`, or ``make_method("transfer", ..., store=path)``): the
source is not fixed in advance but *chosen by the target's own feedback*. Every stored model ``M_j`` that reads the
env's observation and action spaces is a candidate; each target ``D`` picks the one under which its feedback is most
likely, i.e. with the lowest loss (the objective's loss is its negative log-likelihood up to a constant and a
positive factor, the same for every candidate)::

    j* = argmin_j  L(M_j; D),        theta_0 = theta_{j*}

and fine-tunes it as above. With no feedback every candidate is equally likely and the first (by name) is offered.
A store holding models of several goals thus serves a new task with the model of the goal its few labels point to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from gymnasium import spaces

from rewardshare.errors import ArtifactError
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.model_store import ModelStore
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, finetune_many
from rewardshare.rewardmodels.reuse.base import ReuseMethod, jsonable
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.pretraining import train_per_task
from rewardshare.rewardmodels.reuse.registry import register_method

#: The criteria :meth:`ModelStore.find` takes, usable in ``store_filters``.
STORE_FILTERS: tuple[str, ...] = ("env_id", "task", "method", "tag")

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
        store: Choose the source per target from this model store (a :class:`ModelStore` or its directory) instead
            of pre-training one (see the module docstring); :meth:`pretrain` then only loads the candidates.
        store_filters: Only stored models matching these :meth:`ModelStore.find` criteria (``env_id``, ``task``,
            ``method``, ``tag``) are candidates.
        steps: Pre-training steps.
        lr: Pre-training learning rate.
        items_per_task: Items per task per pre-training step.
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.

    Raises:
        ValueError: On an unknown freeze option, an unknown store filter, or ``store`` with ``source_task``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        freeze: str | None = None,
        source_task: str | None = None,
        store: ModelStore | str | os.PathLike[str] | None = None,
        store_filters: Mapping[str, str] | None = None,
        steps: int = 2000,
        lr: float = 1e-3,
        items_per_task: int = 32,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        if freeze is not None and freeze not in FREEZE_OPTIONS:
            raise ValueError(f"freeze={freeze!r} is not allowed: use one of {FREEZE_OPTIONS} or None")
        unknown = sorted(set(store_filters or {}) - set(STORE_FILTERS))
        if unknown:
            raise ValueError(f"store_filters {unknown} are not allowed: use keys from {STORE_FILTERS}")
        if store is not None and source_task is not None:
            raise ValueError("source_task cannot be combined with store: the store's models are the sources")
        self.observation_space = observation_space
        self.action_space = action_space
        self.freeze = freeze
        self.source_task = source_task
        self.steps, self.lr, self.items_per_task, self.seed = int(steps), float(lr), int(items_per_task), int(seed)
        self.model_kwargs = model_kwargs
        self.model: RewardModel | None = None
        self.history: list[float] = []
        self.store = None if store is None else (store if isinstance(store, ModelStore) else ModelStore(store))
        self.store_filters = dict(store_filters or {})
        #: The store's candidate sources, ``(name, model)`` sorted by name (filled by :meth:`load_candidates`).
        self.candidates: list[tuple[str, RewardModel]] = []
        #: Stored models that were not candidates, with the reason (other spaces, unreadable files).
        self.skipped: dict[str, str] = {}

    @classmethod
    def from_store(
        cls,
        store: ModelStore | str | os.PathLike[str],
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        freeze: str | None = None,
        **store_filters: str,
    ) -> Transfer:
        """Transfer from the stored model that best explains each target's feedback (see the module docstring).

        Args:
            store: The model store (or its directory).
            observation_space: The new task's observation space: only models reading it are candidates.
            action_space: The new task's action space.
            freeze: As in :class:`Transfer`.
            **store_filters: :meth:`ModelStore.find` criteria (``env_id``, ``task``, ``method``, ``tag``).

        Returns:
            A ready method (no pre-training needed).

        Raises:
            ValueError: If no stored model fits the spaces (the message says why each was skipped).
        """
        method = cls(observation_space, action_space, freeze=freeze, store=store, store_filters=store_filters)
        return method.load_candidates()

    def load_candidates(self) -> Transfer:
        """Load every stored model that reads this method's spaces (and matches ``store_filters``) as a candidate.

        Raises:
            RuntimeError: If the method has no store.
            ValueError: If no stored model is a candidate (the message lists why each was skipped).
        """
        if self.store is None:
            raise RuntimeError("this Transfer has no model store: build it with Transfer.from_store(store, ...)")
        self.candidates, self.skipped = [], {}
        for entry in sorted(self.store.find(**self.store_filters), key=lambda e: e.name):
            try:
                model = self.store.load(entry.name)
            except (ArtifactError, FileNotFoundError, ValueError) as exc:
                self.skipped[entry.name] = f"unreadable: {exc}"
                continue
            if not model.fits_spaces(self.observation_space, self.action_space):
                self.skipped[entry.name] = "reads other observation / action spaces"
                continue
            model.eval()
            self.candidates.append((entry.name, model))
        if not self.candidates:
            raise ValueError(
                f"no model in {self.store.root} fits these spaces and filters {self.store_filters}: "
                f"skipped {self.skipped or 'nothing (the store is empty)'}; put compatible models in the store"
            )
        return self

    def source_scores(self, target: Objective) -> dict[str, float]:
        """Each candidate's loss on ``target`` (its negative log-likelihood up to a constant factor), by name.

        Raises:
            RuntimeError: If no candidates are loaded.
        """
        self._require_pretrained(bool(self.candidates))
        batch = target.batch()
        scores = {}
        with torch.no_grad():
            for name, model in self.candidates:
                value = float(target.loss(model, batch))
                scores[name] = value if value == value else float("inf")  # NaN ranks last
        return scores

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
        if self.store is not None:
            return self.load_candidates()  # the store's models are the sources: nothing to train
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
        """The source model (in store mode, with no feedback to choose by: the first candidate by name)."""
        if self.store is not None:
            self._require_pretrained(bool(self.candidates))
            name, model = self.candidates[0]
            return self._from_store(name, model, None)
        self._require_pretrained(self.model is not None)
        assert self.model is not None
        return self.model.clone()

    def start_models(self, targets: Sequence[Objective], tasks: Sequence[Any]) -> list[RewardModel]:
        """In store mode, each target's most likely stored model (see the module docstring); else the source."""
        if self.store is None:
            return super().start_models(targets, tasks)
        self._require_pretrained(bool(self.candidates))
        models = dict(self.candidates)
        out = []
        for target in targets:
            scores = self.source_scores(target)
            best = min(scores, key=lambda n: (scores[n], n))
            out.append(self._from_store(best, models[best], scores))
        return out

    def _from_store(self, name: str, model: RewardModel, scores: dict[str, float] | None) -> RewardModel:
        out = model.clone()
        assert self.store is not None
        out.metadata["reuse_source"] = {
            "store": str(self.store.root),
            "name": name,
            "n_candidates": len(self.candidates),
            "target_losses": scores,
        }
        return out

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        # stored sources may differ in architecture: fine-tune each architecture's runs in their own batch
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(starts):
            groups.setdefault(repr(sorted(m.config().items(), key=lambda kv: kv[0])), []).append(i)
        if len(groups) == 1:
            return super()._run(starts, targets, budgets, checkpoints, on_checkpoint, on_divergence)
        checks = list(checkpoints)
        seen: dict[int, dict[int, RewardModel]] = {}

        def hook_for(rows: list[int]) -> Callable[[int, list[RewardModel]], None] | None:
            if on_checkpoint is None:
                return None

            def hook(step: int, models: list[RewardModel]) -> None:
                # the groups run one after the other and finetune_many reuses its model objects: keep copies
                seen.setdefault(step, {}).update(zip(rows, [m.clone() for m in models], strict=True))
                if len(seen[step]) == len(starts):  # every group reached this step: report all runs at once
                    on_checkpoint(step, [seen[step][i] for i in range(len(starts))])
                    del seen[step]

            return hook

        out: list[RewardModel | None] = [None] * len(starts)
        b = budgets[0]
        for rows in groups.values():
            adapted = finetune_many(
                [starts[i] for i in rows], [targets[i] for i in rows], steps=b.steps, lr=[budgets[i].lr for i in rows],
                params=b.params, checkpoints=checks, on_checkpoint=hook_for(rows), on_divergence=on_divergence,
            )
            for i, m in zip(rows, adapted, strict=True):
                out[i] = m
        return [m for m in out if m is not None]

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        if self.store is not None:
            self._require_pretrained(bool(self.candidates))
            sources = [m for _, m in self.candidates]
        else:
            self._require_pretrained(self.model is not None)
            assert self.model is not None
            sources = [self.model]
        options = [self.freeze] if self.freeze is not None else ["none", "first_layer", "trunk"]
        specs: list[str | tuple[str, ...]] = []
        for option in options:
            if option == "first_layer" and not all(m.hidden_sizes for m in sources):
                continue
            per_source = {trainable_for_freeze(m, option) for m in sources}
            if len(per_source) == 1 and (spec := per_source.pop()) not in specs:  # names every candidate has
                specs.append(spec)
        return specs

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "freeze": self.freeze,
            "source_task": self.source_task,
            "store": None if self.store is None else str(self.store.root),
            "store_filters": dict(self.store_filters),
            "n_candidates": len(self.candidates),
            "steps": self.steps,
            "lr": self.lr,
            "items_per_task": self.items_per_task,
            "seed": self.seed,
            "model": {k: jsonable(v) for k, v in self.model_kwargs.items()},
        }
