"""MAP adaptation under a meta-learned Gaussian prior over reward-model weights.

Bayes' rule over reward models, ``p(R | D) ∝ p(D | R) p(R)``, with a Gaussian prior ``theta ~ N(mu, diag(sigma^2))``
and a Gaussian (labels) or Bradley-Terry / soft-optimal (preferences, demonstrations) likelihood, gives the MAP
estimate on a new task's items ``D``::

    theta_MAP = argmin_theta  L(theta; D) + lambda * sum_j w_j (theta_j - mu_j)^2

where ``L`` is the mean loss over the ``k`` items and ``lambda`` absorbs the likelihood's scale and ``1/k``. With
``w_j = 1`` this is the isotropic ``loss + lambda ||theta - theta_0||^2`` of the issue; the meta-learned prior also
learns *how much* each weight varies between tasks:

- the mean ``mu`` is meta-learned weights (by default MAML's initialisation, :class:`~.maml.MAMLMethod`; any
  pretrained :class:`~.base.ReuseMethod` can provide it);
- the precision is estimated empirically from the source tasks (empirical Bayes): each source task's weights
  ``theta_t`` are fitted from ``mu`` on that task's items, ``sigma_j^2 = mean_t (theta_tj - mu_j)^2 + eps``, and
  ``w_j = (1 / sigma_j^2) / mean_j(1 / sigma_j^2)`` (clipped to ``[1e-3, 1e3]``): weights that differ between tasks
  are cheap to move, weights all tasks share are held near ``mu``.

``lambda`` (``AdaptationBudget.prior_weight``), the steps and the learning rate are chosen on validation tasks
(:func:`~.selection.select_budget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, Penalty, finetune
from rewardshare.rewardmodels.reuse.base import ReuseMethod
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.registry import make_method, register_method

PRECISION_CLIP = (1e-3, 1e3)


@dataclass
class GaussianPrior:
    """A diagonal Gaussian over a model's parameters.

    Attributes:
        mean: ``mu`` by parameter name.
        precision: Relative precision ``w`` by parameter name (mean 1 over all entries; all ones if isotropic).
        n_tasks: Number of source tasks the precision was estimated from (0: isotropic).
    """

    mean: dict[str, Tensor]
    precision: dict[str, Tensor]
    n_tasks: int = 0

    def penalty(self, params: Mapping[str, Tensor], weight: float) -> Tensor:
        """``weight * sum_j w_j (theta_j - mu_j)^2`` over the given parameters (names must be in :attr:`mean`).

        Raises:
            KeyError: If a parameter has no prior.
        """
        total = torch.zeros(())
        for name, value in params.items():
            if name not in self.mean:
                raise KeyError(f"parameter {name!r} has no prior; the prior covers {sorted(self.mean)}")
            diff = value - self.mean[name].to(value.device)
            total = total.to(value.device) + (self.precision[name].to(value.device) * diff * diff).sum()
        return weight * total

    @classmethod
    def isotropic(cls, model: RewardModel) -> GaussianPrior:
        """``N(theta_model, I)`` up to scale: the plain ``||theta - theta_0||^2`` penalty."""
        mean = {n: p.detach().clone() for n, p in model.named_parameters()}
        return cls(mean, {n: torch.ones_like(p) for n, p in mean.items()}, 0)


def fit_gaussian_prior(
    model: RewardModel,
    source: Objective,
    *,
    steps: int = 100,
    lr: float = 1e-3,
    eps: float = 1e-8,
    max_tasks: int | None = None,
    seed: int = 0,
) -> GaussianPrior:
    """Empirical-Bayes diagonal prior centred at ``model``'s weights (see the module docstring).

    Args:
        model: The meta-learned weights ``mu`` (unchanged).
        source: Pooled items of the source tasks.
        steps: Adam steps fitting each source task from ``mu``.
        lr: Their learning rate.
        eps: Added to every variance.
        max_tasks: Use at most this many source tasks (a seeded random subset).
        seed: Seeds the subset.

    Returns:
        A :class:`GaussianPrior` whose precision has mean 1.

    Raises:
        ValueError: If there are fewer than two source tasks.
    """
    groups = split_by_task(source)
    ids = sorted(groups)
    if len(ids) < 2:
        raise ValueError(f"a prior's spread needs at least 2 source tasks; got {len(ids)}")
    if max_tasks is not None and max_tasks < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, size=int(max_tasks), replace=False).tolist())
    mean = {n: p.detach().clone() for n, p in model.named_parameters()}
    sq = {n: torch.zeros_like(v) for n, v in mean.items()}
    for tid in ids:
        fitted = finetune(model, groups[tid], steps=steps, lr=lr)
        for n, p in fitted.named_parameters():
            sq[n] += (p.detach() - mean[n]) ** 2
    inv = {n: 1.0 / (v / len(ids) + eps) for n, v in sq.items()}
    scale = torch.cat([v.reshape(-1) for v in inv.values()]).mean()
    precision = {n: (v / scale).clamp(*PRECISION_CLIP) for n, v in inv.items()}
    return GaussianPrior(mean, precision, len(ids))


class MAPAdaptation(ReuseMethod):
    """Adapt by MAP under a meta-learned Gaussian prior (see the module docstring).

    Args:
        base: The method whose (meta-)learned start model is the prior mean, e.g. a :class:`~.maml.MAMLMethod`.
        isotropic: Use ``w_j = 1`` (plain ``||theta - theta_0||^2``) instead of the estimated precision.
        prior_steps: Adam steps per source task when estimating the precision.
        prior_lr: Their learning rate.
        max_prior_tasks: Estimate the precision from at most this many source tasks.
        pretrain_base: Pre-train ``base`` in :meth:`pretrain` (``False``: it is already pretrained).
        seed: Seeds the estimation.
    """

    name = "map_prior"

    def __init__(
        self,
        base: ReuseMethod,
        *,
        isotropic: bool = False,
        prior_steps: int = 100,
        prior_lr: float = 1e-3,
        max_prior_tasks: int | None = None,
        pretrain_base: bool = True,
        seed: int = 0,
    ) -> None:
        self.base = base
        self.isotropic = bool(isotropic)
        self.prior_steps, self.prior_lr = int(prior_steps), float(prior_lr)
        self.max_prior_tasks = max_prior_tasks
        self.pretrain_base = bool(pretrain_base)
        self.seed = int(seed)
        self.prior: GaussianPrior | None = None

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> MAPAdaptation:
        """Pre-train the base (unless ``pretrain_base=False``), then estimate the prior around its start model."""
        seed = self.seed if seed is None else int(seed)
        if self.pretrain_base:
            self.base.pretrain(source, tasks, seed=seed)
        mu = self.base.start_model(None)
        if self.isotropic:
            self.prior = GaussianPrior.isotropic(mu)
        else:
            self.prior = fit_gaussian_prior(
                mu, source, steps=self.prior_steps, lr=self.prior_lr, max_tasks=self.max_prior_tasks, seed=seed
            )
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        self._require_pretrained(self.prior is not None)
        return self.base.start_model(None)

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        self._require_pretrained(self.prior is not None)
        prior, weight = self.prior, float(budget.prior_weight)
        if weight == 0.0:
            return None
        assert prior is not None
        return lambda params: prior.penalty(params, weight)

    def candidate_prior_weights(self) -> list[float]:
        return [0.01, 0.1, 1.0]

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "base": self.base.config(),
            "isotropic": self.isotropic,
            "prior_steps": self.prior_steps,
            "prior_lr": self.prior_lr,
            "max_prior_tasks": self.max_prior_tasks,
            "seed": self.seed,
        }


@register_method("map_prior")
def map_prior(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    *,
    base: str | ReuseMethod = "maml",
    isotropic: bool = False,
    prior_steps: int = 100,
    prior_lr: float = 1e-3,
    max_prior_tasks: int | None = None,
    pretrain_base: bool | None = None,
    seed: int = 0,
    **base_settings: Any,
) -> MAPAdaptation:
    """MAP adaptation over a base method built by name (the registry's factory of ``"map_prior"``).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        base: The registered name of the method whose start model is the prior mean (``"maml"``, ``"meta_sgd"``,
            ...), built with ``seed`` and ``base_settings``; or an already built method (e.g. a pretrained
            ``meta_sgd`` shared with another run), which is then not pre-trained again unless ``pretrain_base``.
        isotropic: See :class:`MAPAdaptation`.
        prior_steps: See :class:`MAPAdaptation`.
        prior_lr: See :class:`MAPAdaptation`.
        max_prior_tasks: See :class:`MAPAdaptation`.
        pretrain_base: Pre-train the base in :meth:`MAPAdaptation.pretrain`; default: only a base built here.
        seed: Seeds the base and the prior's estimation.
        **base_settings: The base method's settings (``iterations``, ``inner_steps``, ``hidden_sizes``, ...).

    Raises:
        ValueError: If ``base`` is ``"map_prior"`` itself or not a registered name.
        TypeError: If ``base_settings`` are given with an already built base.
    """
    if isinstance(base, ReuseMethod):
        if base_settings:
            raise TypeError(f"base settings {sorted(base_settings)} cannot apply to an already built base method")
        method = base
    elif base == "map_prior":
        raise ValueError("base='map_prior' is not allowed: the prior mean must come from another method")
    else:
        method = make_method(base, observation_space, action_space, seed=seed, **base_settings)
    return MAPAdaptation(
        method,
        isotropic=isotropic,
        prior_steps=prior_steps,
        prior_lr=prior_lr,
        max_prior_tasks=max_prior_tasks,
        pretrain_base=not isinstance(base, ReuseMethod) if pretrain_base is None else pretrain_base,
        seed=seed,
    )
