"""Multi-task reward learning: a learned task embedding, or a shared trunk with one head per task.

**Task embedding** (:class:`TaskEmbedding`): one network reads the task as a learned vector ``e_t in R^d``::

    R(s, a, t) = f_theta(x(s, a), e_t),       min_{theta, e_1..e_T} (1/T) sum_t L_t(theta, e_t)

Each item is trained with *its own* task's embedding (items are grouped by ``task_index``, see
:func:`~.functional.per_task_losses`; the seed code drew a random task index per batch, which teaches nothing). A new
task gets a new embedding ``e_new`` (started at the mean of the learned ones) learned from its ``k`` items with
``theta`` frozen, ``e_new = argmin_e L(theta, e; D)``, optionally followed by fine-tuning everything.

**Shared trunk + heads** (:class:`SharedTrunkHeads`): a shared representation ``h`` and a linear head ``g_i`` per
task::

    f_i(x) = g_i(h(x)),       min_{h, g_1..g_T} (1/T) sum_i L_i(g_i o h)

A new task gets a new head (started at the mean of the learned heads) trained on the frozen trunk,
``g_new = argmin_g L(g o h; D)``. A frozen trunk caps what a new head can reach (the trunk's features were learned
for the source tasks: on the 8x8 grid a new head stays near EPIC 0.24 even with every label), so as feedback grows
the trunk is released: budget selection (:func:`~.selection.select_budget`) may train every weight, for up to
thousands of steps, under a Gaussian penalty towards the pre-trained model (:func:`anchor_penalty`)::

    theta* = argmin_theta  L(theta; D) + lambda ||theta - theta_0||^2

with ``theta_0`` the pre-trained trunk and the mean head, and ``lambda`` (``AdaptationBudget.prior_weight``) chosen
per ``k`` on validation tasks: a strong pull while a few items cannot tell the trunk where to go, none once they can.
Task embedding takes the same penalty when a budget with a ``prior_weight`` releases its network.

The per-task model of either method is a plain :class:`RewardModel`: the embedding becomes its fixed ``context``, the
head its ``head``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, Penalty
from rewardshare.rewardmodels.reuse.base import PerTaskPretrained
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.registry import register_method


def _task_key(task: Any) -> str | None:
    if task is None:
        return None
    if isinstance(task, str):
        return task
    return str(getattr(task, "id", "")) or None


def anchor_penalty(anchor: RewardModel, weight: float) -> Penalty:
    """``weight * sum_j (theta_j - theta0_j)^2`` over the trained parameters that ``anchor`` (``theta_0``) has.

    The penalty :func:`~.adapt.finetune_many` adds to the summed loss of its runs: it receives *stacked* tensors
    ``{name: (R, ...)}`` and sums over runs, so every run is pulled towards ``theta_0`` alone. A parameter the anchor
    does not have (a new task's learnable context) is not penalised.

    Args:
        anchor: The pre-trained model.
        weight: ``lambda >= 0``.

    Returns:
        The penalty function.
    """
    theta0 = {n: p.detach() for n, p in anchor.named_parameters()}

    def penalty(params: Mapping[str, Tensor]) -> Tensor:
        terms = [((p - theta0[n].to(p.device)) ** 2).sum() for n, p in params.items() if n in theta0]
        return weight * torch.stack(terms).sum() if terms else torch.zeros(())

    return penalty


class _MultiTaskBase(PerTaskPretrained):
    def _index(self, task: Any) -> int | None:
        key = _task_key(task)
        return self.task_ids.index(key) if key in self.task_ids else None

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        """``prior_weight * ||theta - theta_0||^2`` towards the pre-trained network (see the module docstring)."""
        if budget.prior_weight == 0:
            return None
        self._require_pretrained(self.model is not None)
        assert self.model is not None
        return anchor_penalty(self.model, float(budget.prior_weight))


@register_method("task_embedding")
class TaskEmbedding(_MultiTaskBase):
    """``R(s, a, t)`` with a learned task embedding (see the module docstring).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        embedding_dim: ``d``, the size of a task embedding (the model's ``context_dim``).
        steps: Pre-training steps.
        lr: Pre-training learning rate (model and embeddings).
        items_per_task: Items per task per step.
        tasks_per_step: Tasks per step (``None``: all).
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel` (``hidden_sizes``...).

    Raises:
        ValueError: If ``embedding_dim < 1``.
    """

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, *, embedding_dim: int = 8, **kwargs: Any
    ) -> None:
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1:
            raise ValueError(f"embedding_dim={embedding_dim!r} is not allowed: use an int >= 1")
        super().__init__(observation_space, action_space, **kwargs)
        self.embedding_dim = int(embedding_dim)
        self.embeddings: torch.Tensor | None = None

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> TaskEmbedding:
        """Learn the shared network and one embedding per source task."""
        seed = self.seed if seed is None else int(seed)
        ids = sorted(split_by_task(source))
        model = self._new_model(seed, context_dim=self.embedding_dim, learn_context=False)
        gen = torch.Generator().manual_seed(seed)
        emb = nn.Parameter(0.1 * torch.randn(len(ids), self.embedding_dim, generator=gen))
        self._train(model, source, ids, seed, overrides={"context": emb}, extra_params=[emb])
        self.model, self.task_ids, self.embeddings = model, ids, emb.detach().clone()
        return self

    def task_model(self, task: Any) -> RewardModel:
        """The model of a source task (its embedding as a fixed context).

        Raises:
            ValueError: If ``task`` (an id or an object with ``.id``) is not a source task.
        """
        self._require_pretrained(self.model is not None)
        i = self._index(task)
        if i is None:
            raise ValueError(f"task={_task_key(task)!r} is not a source task; source tasks: {self.task_ids}")
        assert self.model is not None and self.embeddings is not None
        out = self.model.clone()
        out.set_context(self.embeddings[i], learnable=False)
        return out

    def start_model(self, task: Any = None) -> RewardModel:
        """A source task's model if ``task`` is one; else a new, learnable embedding at the mean of the learned ones."""
        self._require_pretrained(self.model is not None)
        if self._index(task) is not None:
            return self.task_model(task)
        assert self.model is not None and self.embeddings is not None
        out = self.model.clone()
        out.set_context(self.embeddings.mean(dim=0), learnable=True)
        return out

    def _finish(self, model: RewardModel) -> None:
        # the new task's learned embedding becomes the adapted model's fixed context
        if model.learn_context:
            model.set_context(model.context.detach(), learnable=False)  # type: ignore[union-attr]

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        return [("context",), "all"]

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "embedding_dim": self.embedding_dim}


@register_method("trunk_heads")
class SharedTrunkHeads(_MultiTaskBase):
    """``f_i(x) = g_i(h(x))``: a shared trunk and a linear head per task (see the module docstring).

    Args: as :class:`TaskEmbedding`, without ``embedding_dim``.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        self.head_weights: torch.Tensor | None = None
        self.head_biases: torch.Tensor | None = None

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> SharedTrunkHeads:
        """Learn the shared trunk and one head per source task."""
        seed = self.seed if seed is None else int(seed)
        ids = sorted(split_by_task(source))
        model = self._new_model(seed)
        gen = torch.Generator().manual_seed(seed + 1)
        fan_in = model.feature_dim
        bound = 1.0 / np.sqrt(fan_in)  # nn.Linear's default initialisation, one independent draw per head
        weight = nn.Parameter((torch.rand(len(ids), 1, fan_in, generator=gen) * 2 - 1) * bound)
        bias = nn.Parameter((torch.rand(len(ids), 1, generator=gen) * 2 - 1) * bound)
        model.head.requires_grad_(False)  # the per-task heads replace it during training
        self._train(model, source, ids, seed, overrides={"head.weight": weight, "head.bias": bias},
                    extra_params=[weight, bias])
        model.head.requires_grad_(True)
        self.model, self.task_ids = model, ids
        self.head_weights, self.head_biases = weight.detach().clone(), bias.detach().clone()
        with torch.no_grad():
            model.head.weight.copy_(self.head_weights.mean(dim=0))
            model.head.bias.copy_(self.head_biases.mean(dim=0))
        return self

    def task_model(self, task: Any) -> RewardModel:
        """The model of a source task (its head on the shared trunk).

        Raises:
            ValueError: If ``task`` is not a source task.
        """
        self._require_pretrained(self.model is not None)
        i = self._index(task)
        if i is None:
            raise ValueError(f"task={_task_key(task)!r} is not a source task; source tasks: {self.task_ids}")
        assert self.model is not None and self.head_weights is not None and self.head_biases is not None
        out = self.model.clone()
        with torch.no_grad():
            out.head.weight.copy_(self.head_weights[i])
            out.head.bias.copy_(self.head_biases[i])
        return out

    def start_model(self, task: Any = None) -> RewardModel:
        """A source task's model if ``task`` is one; else the shared trunk with a new head at the mean head."""
        self._require_pretrained(self.model is not None)
        if self._index(task) is not None:
            return self.task_model(task)
        assert self.model is not None
        return self.model.clone()

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        """A new head on the frozen trunk, or every weight (the trunk released)."""
        return [("head",), "all"]

    def candidate_steps(self) -> list[int]:
        # releasing the trunk with hundreds of labels needs far more steps than fitting a linear head
        return [0, 10, 30, 100, 300, 1000]

    def candidate_prior_weights(self) -> list[float]:
        """No pull, and two strengths of the pull towards the pre-trained trunk and mean head."""
        return [0.0, 1e-3, 1e-2]

    def config(self) -> dict[str, Any]:
        return self._base_config()
