"""MAP adaptation under a Gaussian prior over reward-model weights, fitted on the source tasks (empirical Bayes).

Bayes' rule over reward models, ``p(R | D) ∝ p(D | R) p(R)``, with a Gaussian prior ``theta ~ N(mu, Sigma)`` and a
new task's ``n`` items ``D`` whose likelihood is ``log p(D | theta) = -n c L(theta; D)`` (``L`` the objective's mean
loss: ``c = 1 / (2 sigma_noise^2)`` for labels, ``1`` for preferences and demonstrations) gives the MAP estimate::

    theta_MAP = argmin_theta  L(theta; D) + (lambda / n) (theta - mu)^T Sigma^{-1} (theta - mu)

``lambda = 1 / (2 c)`` is the exact Bayes weight; it is chosen on validation tasks with the steps and the learning
rate (:func:`~.selection.select_budget`; ``AdaptationBudget.prior_weight``), and the ``1 / n`` makes one ``lambda``
right for every ``k``: the prior counts for less as the items pile up.

The mean ``mu`` is a meta-learned start (by default Meta-SGD's initialisation, :class:`~.maml.MAMLMethod`); the
covariance is estimated from how the weights move when the model is fitted to each source task ``t = 1..T`` from
``mu`` (``delta_t = theta_t - mu``, ``prior_steps`` Adam steps per task, all tasks in one batch). Per-entry spreads
``s_j^2 = (1/T) sum_t delta_tj^2`` alone make a poor prior: weights that never move on any source task (dead ReLU
units) get ``s_j = 0`` and an infinite precision that drowns everything else (the first version normalised the
precisions by their mean and clipped them to ``[1e-3, 1e3]``, which put most moving weights on the floor: an almost
flat prior). The estimators (``kind``), with ``v_n = mean_{j in tensor n} s_j^2`` the per-tensor spread:

- ``"tensor"``: ``Sigma = diag(v_n(j))``: one variance per weight tensor (layer weights, layer biases, head);
- ``"diagonal"``: ``Sigma_jj = (1 - rho) s_j^2 + rho v_n(j)``: each weight's own spread, shrunk towards its tensor's
  (``rho = shrinkage``), so a dead unit is held ``1 / rho`` times more firmly than an average weight of its tensor,
  not infinitely;
- ``"lowrank"``: ``Sigma = rho diag(v_n(j)) + (1 - rho) (1/T) sum_t delta_t delta_t^T``: the directions in which the
  source tasks actually differ (rank ``<= T``) are cheap to move along, all others cost the diagonal;
- ``"isotropic"``: ``Sigma = v I``, ``v`` the mean of all ``s_j^2``: plain ``||theta - mu||^2`` at the same scale,
  the baseline the others are measured against (``benchmarks/results/map_prior.json``).

Every variance has a floor of ``1e-3`` times the mean spread (a tensor that never moved is held firmly, not
infinitely). The low-rank quadratic form is computed without forming ``Sigma`` (Woodbury, with ``U`` the ``P x T``
matrix of scaled ``delta_t`` and ``A`` the diagonal part)::

    d^T Sigma^{-1} d = d^T A^{-1} d - (U^T A^{-1} d)^T (I + U^T A^{-1} U)^{-1} (U^T A^{-1} d)

and for a budget that trains only some parameters, on the marginal prior of those (the same formula on their rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, Penalty, finetune_many
from rewardshare.rewardmodels.reuse.base import ReuseMethod
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.registry import make_method, register_method

#: The covariance estimators of :func:`fit_gaussian_prior` (see the module docstring).
PRIOR_KINDS: tuple[str, ...] = ("lowrank", "diagonal", "tensor", "isotropic")
#: Smallest variance, relative to the mean spread of all weights.
VARIANCE_FLOOR = 1e-3


@dataclass
class GaussianPrior:
    """A Gaussian over (some of) a model's parameters: ``N(mu, Sigma)``, ``Sigma = diag(1 / precision) + U U^T``.

    Attributes:
        mean: ``mu`` by parameter name.
        precision: The inverse of the diagonal part of ``Sigma`` by parameter name (absolute, ``1 / variance``).
        n_tasks: Number of source tasks it was estimated from (0: not estimated).
        factors: The low-rank part ``U`` by parameter name, ``(r, *shape)`` (``None``: diagonal ``Sigma``).
        kind: How it was estimated (one of :data:`PRIOR_KINDS`, or ``"unit"`` for :meth:`isotropic`).
    """

    mean: dict[str, Tensor]
    precision: dict[str, Tensor]
    n_tasks: int = 0
    factors: dict[str, Tensor] | None = None
    kind: str = "diagonal"
    _blocks: dict[tuple[str, ...], tuple[Tensor, Tensor, Tensor | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def quadratic(self, params: Mapping[str, Tensor]) -> Tensor:
        """``(theta - mu)^T Sigma_S^{-1} (theta - mu)`` over the given parameters ``S`` (their marginal prior).

        Args:
            params: Tensors by parameter name, each of the parameter's shape or stacked over runs ``(R, *shape)``
                (all given ones alike).

        Returns:
            ``()`` for unstacked tensors, else ``(R,)``: one quadratic form per run.

        Raises:
            KeyError: If a parameter has no prior.
        """
        names = tuple(params)
        for name in names:
            if name not in self.mean:
                raise KeyError(f"parameter {name!r} has no prior; the prior covers {sorted(self.mean)}")
        if not names:
            return torch.zeros(())
        first = params[names[0]]
        stacked = first.dim() == self.mean[names[0]].dim() + 1
        flat = []
        for name in names:
            value = params[name] if stacked else params[name].unsqueeze(0)
            diff = value - self.mean[name].to(value.device)
            flat.append(diff.reshape(diff.shape[0], -1))
        d = torch.cat(flat, dim=1)  # (R, P)
        a_inv, u, core = self._block(names, d.device)
        out = (d * d * a_inv).sum(dim=1)
        if u is not None and core is not None:
            proj = (d * a_inv) @ u.T  # (R, r): U^T A^{-1} d
            out = out - torch.einsum("ri,ij,rj->r", proj, core, proj)
        return out if stacked else out[0]

    def _block(self, names: tuple[str, ...], device: torch.device) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The flat ``A_S^{-1}``, ``U_S`` and ``(I + U_S^T A_S^{-1} U_S)^{-1}`` of the parameter set ``S`` (cached:
        built once per set, not at every adaptation step)."""
        if names not in self._blocks:
            with torch.no_grad():
                a_inv = torch.cat([self.precision[n].reshape(-1) for n in names]).to(device)
                u = core = None
                if self.factors is not None:
                    u = torch.cat([self.factors[n].reshape(self.factors[n].shape[0], -1) for n in names], 1).to(device)
                    gram = ((u * a_inv) @ u.T).double()
                    core = torch.linalg.inv(torch.eye(gram.shape[0], dtype=gram.dtype, device=device) + gram)
                    core = core.to(u.dtype)
            self._blocks[names] = (a_inv, u, core)
        return self._blocks[names]

    def penalty(self, params: Mapping[str, Tensor], weight: float) -> Tensor:
        """``weight * (theta - mu)^T Sigma^{-1} (theta - mu)``, summed over runs when the tensors are stacked.

        Raises:
            KeyError: If a parameter has no prior.
        """
        return weight * self.quadratic(params).sum()

    def variances(self) -> dict[str, Tensor]:
        """The marginal variance of every weight, ``diag(Sigma)``, by parameter name."""
        out = {n: 1.0 / p for n, p in self.precision.items()}
        if self.factors is not None:
            out = {n: v + (self.factors[n] ** 2).sum(dim=0) for n, v in out.items()}
        return out

    @classmethod
    def isotropic(cls, model: RewardModel, variance: float = 1.0) -> GaussianPrior:
        """``N(theta_model, variance I)``: the plain ``||theta - theta_0||^2 / variance`` penalty."""
        mean = {n: p.detach().clone() for n, p in model.named_parameters()}
        return cls(mean, {n: torch.full_like(p, 1.0 / variance) for n, p in mean.items()}, 0, None, "unit")


def source_deltas(
    model: RewardModel,
    source: Objective,
    *,
    steps: int = 100,
    lr: float = 1e-3,
    max_tasks: int | None = None,
    seed: int = 0,
) -> tuple[dict[str, Tensor], list[str]]:
    """How each source task moves the weights: ``delta_t = theta_t - mu``, ``theta_t`` fitted from ``mu`` on task
    ``t``'s items by ``steps`` Adam steps (all tasks in one batched run).

    Returns:
        ``({name: (T, *shape)}, task ids)``.

    Raises:
        ValueError: If there are fewer than two source tasks.
    """
    groups = split_by_task(source)
    ids = sorted(groups)
    if len(ids) < 2:
        raise ValueError(f"a prior's spread needs at least 2 source tasks; got {len(ids)}")
    if max_tasks is not None and max_tasks < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, size=int(max_tasks), replace=False).tolist())
    fitted = finetune_many([model] * len(ids), [groups[t] for t in ids], steps=int(steps), lr=float(lr),
                           on_divergence="stop")
    mean = {n: p.detach() for n, p in model.named_parameters()}
    deltas = {
        n: torch.stack([dict(f.named_parameters())[n].detach() - mu for f in fitted]) for n, mu in mean.items()
    }
    return deltas, ids


def fit_gaussian_prior(
    model: RewardModel,
    source: Objective,
    *,
    kind: str = "lowrank",
    shrinkage: float = 0.5,
    steps: int = 100,
    lr: float = 1e-3,
    max_tasks: int | None = None,
    seed: int = 0,
    deltas: tuple[Mapping[str, Tensor], Sequence[str]] | None = None,
) -> GaussianPrior:
    """Empirical-Bayes Gaussian prior centred at ``model``'s weights (see the module docstring for the estimators).

    Args:
        model: The meta-learned weights ``mu`` (unchanged).
        source: Pooled items of the source tasks.
        kind: The covariance estimator, one of :data:`PRIOR_KINDS`.
        shrinkage: ``rho`` in ``[0, 1]``: the diagonal estimator's pull towards the per-tensor spread, the low-rank
            estimator's share of the diagonal part.
        steps: Adam steps fitting each source task from ``mu``.
        lr: Their learning rate.
        max_tasks: Use at most this many source tasks (a seeded random subset).
        seed: Seeds the subset.
        deltas: Precomputed :func:`source_deltas` (to fit several kinds from one set of source fits).

    Returns:
        A :class:`GaussianPrior` over every parameter of ``model``.

    Raises:
        ValueError: On an unknown ``kind``, ``shrinkage`` outside ``[0, 1]`` (or ``0`` for the low-rank kind), or
            fewer than two source tasks.
    """
    if kind not in PRIOR_KINDS:
        raise ValueError(f"kind={kind!r} is not allowed: use one of {PRIOR_KINDS}")
    if not isinstance(shrinkage, (int, float)) or not 0 <= shrinkage <= 1 or (kind == "lowrank" and shrinkage == 0):
        raise ValueError(f"shrinkage={shrinkage!r} is not allowed: use a number in [0, 1] (> 0 for kind='lowrank')")
    if deltas is None:
        deltas = source_deltas(model, source, steps=steps, lr=lr, max_tasks=max_tasks, seed=seed)
    moves, ids = dict(deltas[0]), list(deltas[1])
    n_tasks = len(ids)
    mean = {n: p.detach().clone() for n, p in model.named_parameters()}
    spread = {n: (d.double() ** 2).mean(dim=0) for n, d in moves.items()}  # s_j^2
    overall = float(torch.cat([s.reshape(-1) for s in spread.values()]).mean())
    floor = VARIANCE_FLOOR * overall if overall > 0 else 1e-12
    per_tensor = {n: float(s.mean()) for n, s in spread.items()}  # v_n
    rho = float(shrinkage)
    factors = None
    if kind == "isotropic":
        var = {n: torch.full_like(s, max(overall, floor)) for n, s in spread.items()}
    elif kind == "tensor":
        var = {n: torch.full_like(s, max(per_tensor[n], floor)) for n, s in spread.items()}
    elif kind == "diagonal":
        var = {n: ((1 - rho) * s + rho * per_tensor[n]).clamp_min(floor) for n, s in spread.items()}
    else:
        var = {n: torch.full_like(s, max(rho * per_tensor[n], floor)) for n, s in spread.items()}
        scale = math.sqrt((1 - rho) / n_tasks)
        factors = {n: (scale * d).to(mean[n].dtype) for n, d in moves.items()}
    precision = {n: (1.0 / v).to(mean[n].dtype) for n, v in var.items()}
    return GaussianPrior(mean, precision, n_tasks, factors, kind)


def scaled_penalty(prior: GaussianPrior, weight: float, items: Sequence[int]) -> Penalty:
    """``sum_r (weight / n_r) q_r``: the MAP penalty of runs with ``n_r`` target items each (``q_r`` the prior's
    quadratic form of run ``r``'s stacked weights), as :func:`~.adapt.finetune_many` adds it to the summed losses."""
    scale = torch.tensor([weight / max(int(n), 1) for n in items])

    def penalty(params: Mapping[str, Tensor]) -> Tensor:
        q = prior.quadratic(params)
        return (scale.to(q.device, q.dtype) * q).sum()

    return penalty


class MAPAdaptation(ReuseMethod):
    """Adapt by MAP under a Gaussian prior fitted on the source tasks (see the module docstring).

    An :class:`AdaptationBudget` reads here as: ``steps`` Adam steps at ``lr`` on ``params``, and ``prior_weight``
    the ``lambda`` of ``(lambda / n) (theta - mu)^T Sigma^{-1} (theta - mu)``.

    Args:
        base: The method whose (meta-)learned start model is the prior mean, e.g. a :class:`~.maml.MAMLMethod`.
        kind: The covariance estimator (one of :data:`PRIOR_KINDS`).
        shrinkage: ``rho`` of :func:`fit_gaussian_prior`.
        isotropic: Shorthand for ``kind="isotropic"``.
        prior_steps: Adam steps per source task when estimating the covariance.
        prior_lr: Their learning rate.
        max_prior_tasks: Estimate the covariance from at most this many source tasks.
        pretrain_base: Pre-train ``base`` in :meth:`pretrain` (``False``: it is already pretrained).
        seed: Seeds the estimation.
    """

    name = "map_prior"

    def __init__(
        self,
        base: ReuseMethod,
        *,
        kind: str = "lowrank",
        shrinkage: float = 0.5,
        isotropic: bool = False,
        prior_steps: int = 100,
        prior_lr: float = 1e-3,
        max_prior_tasks: int | None = None,
        pretrain_base: bool = True,
        seed: int = 0,
    ) -> None:
        kind = "isotropic" if isotropic else kind
        if kind not in PRIOR_KINDS:
            raise ValueError(f"kind={kind!r} is not allowed: use one of {PRIOR_KINDS}")
        self.base = base
        self.kind, self.shrinkage = kind, float(shrinkage)
        self.prior_steps, self.prior_lr = int(prior_steps), float(prior_lr)
        self.max_prior_tasks = max_prior_tasks
        self.pretrain_base = bool(pretrain_base)
        self.seed = int(seed)
        self.prior: GaussianPrior | None = None

    @property
    def isotropic(self) -> bool:
        """Whether the prior is the isotropic baseline."""
        return self.kind == "isotropic"

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> MAPAdaptation:
        """Pre-train the base (unless ``pretrain_base=False``), then fit the prior around its start model."""
        seed = self.seed if seed is None else int(seed)
        if self.pretrain_base:
            self.base.pretrain(source, tasks, seed=seed)
        mu = self.base.start_model(None)
        self.prior = fit_gaussian_prior(
            mu, source, kind=self.kind, shrinkage=self.shrinkage, steps=self.prior_steps, lr=self.prior_lr,
            max_tasks=self.max_prior_tasks, seed=seed,
        )
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        self._require_pretrained(self.prior is not None)
        return self.base.start_model(None)

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        """``prior_weight * (theta - mu)^T Sigma^{-1} (theta - mu)`` (per run; :meth:`adapt_many` also divides it by
        each run's number of items)."""
        self._require_pretrained(self.prior is not None)
        prior, weight = self.prior, float(budget.prior_weight)
        if weight == 0.0:
            return None
        assert prior is not None
        return lambda params: prior.penalty(params, weight)

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        self._require_pretrained(self.prior is not None)
        assert self.prior is not None
        b = budgets[0]
        penalty = None if b.prior_weight == 0 else scaled_penalty(self.prior, b.prior_weight, [len(t) for t in targets])
        return finetune_many(
            starts, targets, steps=b.steps, lr=[x.lr for x in budgets], params=b.params, penalty=penalty,
            checkpoints=checkpoints, on_checkpoint=on_checkpoint, on_divergence=on_divergence,
        )

    def candidate_prior_weights(self) -> list[float]:
        return [1e-3, 1e-2, 1e-1, 1.0]

    def candidate_steps(self) -> list[int]:
        return [0, 10, 30, 100, 300, 1000]

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "base": self.base.config(),
            "kind": self.kind,
            "shrinkage": self.shrinkage,
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
    kind: str = "lowrank",
    shrinkage: float = 0.5,
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
        kind: See :class:`MAPAdaptation`.
        shrinkage: See :class:`MAPAdaptation`.
        isotropic: See :class:`MAPAdaptation`.
        prior_steps: See :class:`MAPAdaptation`.
        prior_lr: See :class:`MAPAdaptation`.
        max_prior_tasks: See :class:`MAPAdaptation`.
        pretrain_base: Pre-train the base in :meth:`MAPAdaptation.pretrain`; default: only a base built here.
        seed: Seeds the base and the prior's estimation.
        **base_settings: The base method's settings (``iterations``, ``inner_steps``, ``hidden_sizes``, ...).

    Raises:
        ValueError: If ``base`` is ``"map_prior"`` itself or not a registered name, or ``kind`` is unknown.
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
        kind=kind,
        shrinkage=shrinkage,
        isotropic=isotropic,
        prior_steps=prior_steps,
        prior_lr=prior_lr,
        max_prior_tasks=max_prior_tasks,
        pretrain_base=not isinstance(base, ReuseMethod) if pretrain_base is None else pretrain_base,
        seed=seed,
    )
