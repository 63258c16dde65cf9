"""Reuse as inference: a latent-task reward model ``R(s, a, z)`` with a prior ``p(z)`` learned on the source tasks.

Pre-training is that of the task embedding (:class:`~.multitask.TaskEmbedding`): one network and one latent ``z_t``
per source task, ``min_{theta, z_1..z_T} (1/T) sum_t L_t(theta, z_t)``. Then a Gaussian prior is fitted to the
source latents, ``p(z) = N(mu, Sigma)`` (their mean and covariance, shrunk towards a multiple of the identity so
that it stays invertible with few tasks). A new task is not "trained"; its latent is *inferred* from its feedback
``D`` (labels, preferences or demonstrations: any :class:`~rewardshare.rewardmodels.objectives.Objective`)::

    z* = argmax_z  log p(D | z) + log p(z),    log p(D | z) = -n c L(theta, z; D)

with ``L`` the objective's mean loss over its ``n`` items: for labels the Gaussian likelihood's ``c = 1 / (2
sigma^2)``, ``sigma^2`` the model's own residual on its source tasks (how far its predictions are from labels it was
trained on), for preferences and demonstrations ``c = 1`` (their losses already are negative log-likelihoods).
For demonstrations the likelihood also scores where each episode ended: a
:class:`~rewardshare.rewardmodels.objectives.TerminationLink` ``p(done | R)``, fitted at pre-training on the
source labels' episode-end flags against the network's own predictions, says which rewards end episodes, so a
demonstration that ends in a cell is evidence that the new task's reward ends episodes there (as the Bayes reference
reads the same flag as "the goal is here"). Without episode-end flags in the source labels there is no link.

The posterior is multi-modal at small ``n`` (a few labels fit several goals), so ``z*`` is sought from several
starts at once: the ``n_top`` source latents that explain ``D`` best, the prior mean and ``n_prior_samples`` draws
of the prior, each refined by Adam on ``z`` alone (the network frozen and shared by all starts), in one batched
computation. The modes found, weighted by their unnormalised posterior, are the
:class:`LatentPosterior` (a cheap mixture approximation; its best mode is the adapted model's latent).

As ``n`` grows the network itself may be released: the :class:`~.adapt.AdaptationBudget` chosen on validation tasks
(:func:`~.selection.select_budget`) then fine-tunes every weight from the inferred model, under a Gaussian penalty
``prior_weight * ||theta - theta_0||^2`` towards the pre-trained weights, so the method is never forced to stay
inside the span of its source tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import LabelObjective, MaxEntIRLObjective, Objective, TerminationLink
from rewardshare.rewardmodels.objectives.base import call_reward
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, Penalty
from rewardshare.rewardmodels.reuse.functional import FunctionalModel, per_task_losses, stack_items
from rewardshare.rewardmodels.reuse.multitask import TaskEmbedding
from rewardshare.rewardmodels.reuse.registry import register_method

#: Smallest label-noise variance the likelihood assumes: a model that fits its source labels exactly is still not
#: trusted to be exact on a new task.
MIN_NOISE_VARIANCE = 0.02


@dataclass(frozen=True)
class LatentPosterior:
    """An approximation of ``p(z | D)``: the modes found by the inference, with their posterior weights.

    Attributes:
        z: ``(M, d)`` latents, best first.
        log_weights: ``(M,)`` normalised log weights (``log_softmax`` of minus the negative log posterior).
        neg_log_posterior: ``(M,)`` unnormalised negative log posterior of each mode.
    """

    z: Tensor
    log_weights: Tensor
    neg_log_posterior: Tensor

    @property
    def map(self) -> Tensor:
        """The best latent, ``(d,)``."""
        return self.z[0]

    @property
    def weights(self) -> Tensor:
        """``(M,)`` probabilities of the modes."""
        return self.log_weights.exp()


@register_method("latent")
class LatentTask(TaskEmbedding):
    """``R(s, a, z)`` with a meta-learned prior ``p(z)``; a new task's ``z`` is inferred (see the module docstring).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        embedding_dim: ``d``, the size of ``z``.
        n_top: Source latents that explain the new task's data best, used as starts.
        n_prior_samples: Draws of the prior used as further starts (the prior mean is always one).
        infer_steps: Adam steps on ``z`` from every start.
        infer_lr: Their learning rate.
        prior_shrinkage: Fraction of the mean variance added to the covariance's diagonal.
        **kwargs: Pre-training settings of :class:`~.multitask.TaskEmbedding` (``steps``, ``lr``, ``seed``,
            ``hidden_sizes``, ...).

    Raises:
        ValueError: On a negative count or a non-positive step size.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        embedding_dim: int = 8,
        n_top: int = 6,
        n_prior_samples: int = 4,
        infer_steps: int = 150,
        infer_lr: float = 0.05,
        prior_shrinkage: float = 0.01,
        **kwargs: Any,
    ) -> None:
        for name, value, low in (("n_top", n_top, 1), ("n_prior_samples", n_prior_samples, 0),
                                 ("infer_steps", infer_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
        for name, value in (("infer_lr", infer_lr), ("prior_shrinkage", prior_shrinkage)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}={value!r} is not allowed: use a finite float > 0")
        super().__init__(observation_space, action_space, embedding_dim=embedding_dim, **kwargs)
        self.n_top, self.n_prior_samples = int(n_top), int(n_prior_samples)
        self.infer_steps, self.infer_lr = int(infer_steps), float(infer_lr)
        self.prior_shrinkage = float(prior_shrinkage)
        self.prior_mean: Tensor | None = None
        self.prior_precision: Tensor | None = None
        self._prior_chol: Tensor | None = None
        self.noise_variance: float = MIN_NOISE_VARIANCE
        self.termination: TerminationLink | None = None
        self._cache: dict[int, tuple[Objective, LatentPosterior]] = {}

    # -- pre-training ------------------------------------------------------------------------------------------
    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None) -> LatentTask:
        """Learn the network and the source latents (as the task embedding does), then fit ``p(z)``."""
        super().pretrain(source, tasks, seed=seed)
        self._cache = {}
        assert self.embeddings is not None
        z = self.embeddings.double()
        d = z.shape[1]
        cov = torch.cov(z.T).reshape(d, d) if z.shape[0] > 1 else torch.eye(d, dtype=z.dtype)
        scale = float(cov.diagonal().mean()) if float(cov.diagonal().mean()) > 0 else 1.0
        cov = cov + self.prior_shrinkage * scale * torch.eye(d, dtype=z.dtype)
        self.prior_mean = z.mean(dim=0).float()
        self.prior_precision = torch.linalg.inv(cov).float()
        self._prior_chol = torch.linalg.cholesky(cov).float()
        # the label likelihood's variance: the model's residual on its own source labels (last 5% of pre-training)
        tail = self.history[-max(1, len(self.history) // 20):]
        self.noise_variance = max(float(np.mean(tail)), MIN_NOISE_VARIANCE) if tail else MIN_NOISE_VARIANCE
        self.termination = self._fit_termination(source)
        return self

    def _fit_termination(self, source: Objective) -> TerminationLink | None:
        """The :class:`TerminationLink` of the source labels' episode-end flags against the network's predictions at
        each source task's latent; ``None`` for other feedback or when no label (or every label) ended an episode."""
        if not isinstance(source, LabelObjective):
            return None
        done = source.items["done"]
        if not 0 < int(done.sum()) < len(done):
            return None
        assert self.model is not None and self.embeddings is not None and self.task_ids is not None
        rows = torch.as_tensor([self.task_ids.index(t) for t in source.task_ids])[source.items["task_index"]]
        items = source.items
        with torch.no_grad():
            reward = call_reward(self.model, items["obs"], items["action"], items["next_obs"], done,
                                 self.embeddings[rows])
        return TerminationLink.fit(reward, done)

    def start_model(self, task: Any = None) -> RewardModel:
        """A source task's model if ``task`` is one; else the network at the prior mean ``mu`` (zero-shot)."""
        self._require_pretrained(self.prior_mean is not None)
        if self._index(task) is not None:
            return self.task_model(task)
        assert self.prior_mean is not None
        return self.model_at(self.prior_mean)

    def model_at(self, z: Tensor) -> RewardModel:
        """A copy of the network with its latent fixed at ``z`` (``(d,)``).

        Raises:
            RuntimeError: If the method is not pretrained.
        """
        self._require_pretrained(self.model is not None)
        assert self.model is not None
        out = self.model.clone()
        out.set_context(z, learnable=False)
        return out

    # -- inference ---------------------------------------------------------------------------------------------
    def _data_scale(self, target: Objective) -> float:
        """``n c``: turns the objective's mean loss into a negative log-likelihood (see the module docstring)."""
        c = 1.0 / (2.0 * self.noise_variance) if isinstance(target, LabelObjective) else 1.0
        return len(target) * c

    def _prior_nll(self, z: Tensor) -> Tensor:
        assert self.prior_mean is not None and self.prior_precision is not None
        diff = z - self.prior_mean
        return 0.5 * torch.einsum("...d,de,...e->...", diff, self.prior_precision, diff)

    def _starts(self, target: Objective, gen: torch.Generator) -> Tensor:
        """``(M, d)`` starting latents for one target: best source latents, the prior mean, prior draws."""
        assert self.model is not None and self.embeddings is not None and self._prior_chol is not None
        score = self.neg_log_posterior(target, self.embeddings)
        top = self.embeddings[torch.argsort(score)[:self.n_top]]
        noise = torch.randn(self.n_prior_samples, self.embedding_dim, generator=gen)
        draws = self.prior_mean + noise @ self._prior_chol.T
        return torch.cat([top, self.prior_mean[None], draws])

    def neg_log_posterior(self, target: Objective, z: Tensor) -> Tensor:
        """``(M,)`` unnormalised ``-log p(z | D)`` of latents ``z`` (``(M, d)``) for feedback ``target``: ``n c L(theta,
        z; D) + (z - mu)^T Sigma^-1 (z - mu) / 2`` (see the module docstring), without gradients.

        Raises:
            RuntimeError: If the method is not pretrained.
        """
        self._require_pretrained(self.prior_mean is not None)
        with torch.no_grad():
            z = torch.as_tensor(z, dtype=torch.float32).reshape(-1, self.embedding_dim)
            return self._data_scale(target) * self._row_losses([target] * len(z), z) + self._prior_nll(z)

    def _row_losses(self, targets: Sequence[Objective], z: Tensor) -> Tensor:
        """``(N,)`` losses of target ``i`` under latent ``z[i]``, the network's weights shared (not copied) by every
        row: vectorised over rows with :func:`torch.func.vmap` when the targets allow it (one kind, one size, no
        shared tensors); demonstrations batch every row of one target in one reward table and soft value iteration
        (:meth:`MaxEntIRLObjective.latent_losses`, with the termination link); else a loop."""
        assert self.model is not None
        if all(isinstance(t, MaxEntIRLObjective) for t in targets):
            groups: dict[int, tuple[MaxEntIRLObjective, list[int]]] = {}
            for i, t in enumerate(targets):
                groups.setdefault(id(t), (t, []))[1].append(i)  # type: ignore[arg-type]
            order = torch.as_tensor([i for _, rows in groups.values() for i in rows])
            losses = torch.cat([t.latent_losses(self.model, z[rows], self.termination) for t, rows in groups.values()])
            return losses[torch.argsort(order)]
        if len({type(t) for t in targets}) == 1 and len({len(t) for t in targets}) == 1 and not any(
            t.shared for t in targets
        ):
            items = stack_items([t.items for t in targets])
            return per_task_losses(self.model, targets[0].loss, items, None, {"context": z})
        return torch.stack([t.loss(FunctionalModel(self.model, {"context": z[i]}), t.batch())
                            for i, t in enumerate(targets)])

    def infer(self, targets: Sequence[Objective], seed: int = 0) -> list[LatentPosterior]:
        """The posterior over ``z`` of each target (modes from every start, refined together; see the module
        docstring).

        Every (target, start) pair is one row of a latent matrix ``Z``; Adam minimises each row's negative log
        posterior ``n c L(theta, z; D) + (z - mu)^T Sigma^-1 (z - mu) / 2`` with the network frozen and shared.

        Args:
            targets: Feedback of each new task (any loss kind; one kind and size per call is fastest).
            seed: Seeds the prior draws.

        Returns:
            One :class:`LatentPosterior` per target.

        Raises:
            RuntimeError: If the method is not pretrained.
            ValueError: If targets of different kinds are mixed.
        """
        self._require_pretrained(self.prior_mean is not None)
        gen = torch.Generator().manual_seed(int(seed))
        return self._refine(targets, [self._starts(t, gen) for t in targets], self.infer_steps)

    def _refine(self, targets: Sequence[Objective], starts: Sequence[Tensor], steps: int) -> list[LatentPosterior]:
        """Adam on every start of every target (``starts[i]``: ``(M, d)``, the same ``M`` for all) for ``steps``
        steps, the network frozen; each target's refined starts, sorted by negative log posterior, as its
        :class:`LatentPosterior`.

        Raises:
            ValueError: If the targets have different numbers of starts (objectives of different kinds).
        """
        assert self.model is not None
        per = starts[0].shape[0]
        if any(z.shape[0] != per for z in starts):
            raise ValueError("targets mix objectives of different kinds: infer each kind in its own call")
        rows = [t for t in targets for _ in range(per)]
        scales = torch.tensor([self._data_scale(t) for t in rows])
        z = torch.cat(list(starts)).detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=self.infer_lr)
        frozen = [p for p in self.model.parameters() if p.requires_grad]
        for p in frozen:  # the weights are not inferred: no gradient for them
            p.requires_grad_(False)
        try:
            for _ in range(int(steps)):
                nlp = scales * self._row_losses(rows, z) + self._prior_nll(z)
                # a diverging row keeps its last finite latent; rows do not interact (Adam is elementwise)
                total = torch.where(torch.isfinite(nlp), nlp, torch.zeros_like(nlp)).sum()
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
            with torch.no_grad():
                z = z.detach()
                nlp = scales * self._row_losses(rows, z) + self._prior_nll(z)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        nlp = torch.where(torch.isfinite(nlp), nlp, torch.full_like(nlp, math.inf))
        out = []
        for r in range(len(targets)):
            zr, nr = z[r * per:(r + 1) * per], nlp[r * per:(r + 1) * per]
            order = torch.argsort(nr)
            zr, nr = zr[order], nr[order]
            out.append(LatentPosterior(zr, torch.log_softmax(-nr, dim=0), nr))
        return out

    # -- adaptation --------------------------------------------------------------------------------------------
    def start_models(self, targets: Sequence[Objective], tasks: Sequence[Any]) -> list[RewardModel]:
        """The network at each target's MAP latent (fixed), from which a budget may release the weights.

        Budget selection adapts the same target objects once per candidate (and once per learning rate), so each
        distinct target is inferred once and its posterior kept for the calls that follow (see :meth:`_posteriors`).
        """
        out = []
        for post in self._posteriors(targets):
            m = self.model_at(post.map)
            m.metadata["latent_posterior"] = {"z": post.z.tolist(), "weights": post.weights.tolist()}
            out.append(m)
        return out

    def _posteriors(self, targets: Sequence[Objective]) -> list[LatentPosterior]:
        """:meth:`infer` for every distinct target object not inferred by the previous call, reusing the others."""
        cache = self._cache
        fresh = list({id(t): t for t in targets if not (id(t) in cache and cache[id(t)][0] is t)}.values())
        if fresh:
            cache = {i: entry for i, entry in cache.items() if any(entry[0] is t for t in targets)}
            cache.update({id(t): (t, post) for t, post in zip(fresh, self.infer(fresh, seed=self.seed), strict=True)})
        # the cache holds the targets themselves, so an id cannot be reused by another object while it is stored
        self._cache = cache
        return [cache[id(t)][1] for t in targets]

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        """``prior_weight * ||theta - theta_0||^2`` towards the pre-trained weights, summed over runs."""
        if budget.prior_weight == 0:
            return None
        assert self.model is not None
        anchor = {n: p.detach() for n, p in self.model.named_parameters()}
        weight = budget.prior_weight

        def pen(params: dict[str, Tensor]) -> Tensor:
            return weight * sum(((p - anchor[n]) ** 2).sum() for n, p in params.items() if n in anchor)

        return pen

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        return ["all"]

    def candidate_prior_weights(self) -> list[float]:
        return [0.0, 1e-3, 1e-2]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_top": self.n_top, "n_prior_samples": self.n_prior_samples,
                "infer_steps": self.infer_steps, "infer_lr": self.infer_lr, "prior_shrinkage": self.prior_shrinkage,
                "noise_variance": self.noise_variance,
                "termination": None if self.termination is None else [self.termination.scale, self.termination.bias]}
