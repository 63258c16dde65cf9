"""Amortized inference of the task latent: a set encoder ``q(z | D)`` trained with the latent-task model.

The latent-task model (:mod:`.latent`) infers a new task's ``z`` by MAP. With a few labels its decoder ``R(s, a, z)``
is far more flexible off the source latents than the family of goal rewards, so latents the source tasks never used
fit ``k`` labels better than the goal's own latent and are wrong elsewhere. Amortized inference (as in neural
processes and PEARL) trains the decoder only on the latents the data can reach: a permutation-invariant encoder
(DeepSets) maps a set of labelled transitions to a latent::

    h_i = phi([x(s_i), x(a_i), x(s'_i), y_i]),    z = rho([mean_i h_i, log(1 + n)])

and pre-training draws, for every source task ``t`` and step, a random subset ``C_t`` of ``n_t`` of its items
(``n_t + 1`` log-uniform over ``1 .. max_context + 1``, so ``n_t = 0`` happens too) and asks the decoder to predict
``Q_t``, a random batch of the *whole* task's items, from ``z = encoder(C_t)``::

    min_{theta, phi, rho, z_1..z_T} (1/T) sum_t [ L_t(theta, encoder(C_t); Q_t) + w L_t(theta, z_t; Q_t) ]

The second term is the task embedding's loss (free per-task latents ``z_t``), kept so that the source latents, the
Gaussian prior ``p(z)`` and the MAP inference of :class:`~.latent.LatentTask` still exist (the fallback for other
feedback, the multi-start search, the label-noise variance). Under squared error the best prediction from an
ambiguous set is the mean of the goals' rewards that set leaves possible: the encoder and decoder learn to hedge
when the data cannot tell goals apart, which is what scores low EPIC.

On a new task with reward labels (``inference``):

- ``"encoder"``: ``z = encoder(D)`` in one pass (``D`` empty: the zero-shot latent, also :meth:`start_model`);
- ``"refine"``: then ``refine_steps`` Adam steps of the latent model's MAP objective from it;
- ``"map_start"``: the encoder's latent as one more start of the latent model's multi-start MAP.

Measured on four rooms 9x9 (``benchmarks/amortized_validation.py``, validation goals): the encoder's latent alone
is *worse* than the MAP latent from 16-32 labels on (it does not sharpen: from 256 labels it reaches EPIC 0.09-0.11,
the MAP latent 0.06-0.07), and it is as far off on the source goals it was trained on, so it underfits rather than
fails to generalise (``benchmarks/results/amortized_validation_s1_source.json``). The decoder trained with it,
though, gives a better multi-start MAP than the latent-task model's decoder, so the few-shot benchmark runs
``"map_start"``.

Preferences and demonstrations are not read by the encoder: for them (and for any source that is not reward labels,
where no encoder is trained) the method falls back to the parent's multi-start MAP inference with the jointly
trained decoder. The encoder is part of the method's state like the decoder: methods are not serialised in this
package (the adapted :class:`~rewardshare.rewardmodels.model.RewardModel`, the network at the inferred latent, is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.model_layers import init_rng
from rewardshare.rewardmodels.objectives import LabelObjective, Objective
from rewardshare.rewardmodels.reuse.functional import draw_items, per_task_losses, split_by_task, stack_items
from rewardshare.rewardmodels.reuse.latent import LatentPosterior, LatentTask
from rewardshare.rewardmodels.reuse.registry import register_method
from rewardshare.rewardmodels.training import train_mode

#: The ways a new task's latent is inferred from reward labels (see the module docstring).
INFERENCE_MODES: tuple[str, ...] = ("encoder", "refine", "map_start")
#: How the encoder pools its items: their mean, or their mean and their sum (divided by :data:`SUM_SCALE`).
POOLINGS: tuple[str, ...] = ("mean", "mean_sum")
SUM_SCALE = 32.0


class SetEncoder(nn.Module):
    """DeepSets encoder of a set of item features: ``z = rho([mean_i phi(x_i), log(1 + n)])`` (``"mean"``
    pooling) or ``z = rho([mean_i phi(x_i), sum_i phi(x_i) / 32, log(1 + n)])`` (``"mean_sum"``).

    Args:
        item_dim: Size of one item's features.
        embedding_dim: Size of ``z``.
        hidden: Width of every hidden layer of ``phi`` (two layers) and ``rho`` (one layer).
        seed: Seeds the initialisation.
        pooling: One of :data:`POOLINGS`.

    Raises:
        ValueError: On a non-positive size or an unknown pooling.
    """

    def __init__(
        self, item_dim: int, embedding_dim: int, hidden: int = 64, seed: int | None = 0, pooling: str = "mean"
    ) -> None:
        super().__init__()
        for name, value in (("item_dim", item_dim), ("embedding_dim", embedding_dim), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= 1")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not allowed: use one of {POOLINGS}")
        self.item_dim, self.embedding_dim, self.hidden = int(item_dim), int(embedding_dim), int(hidden)
        self.pooling = pooling
        pooled = self.hidden * (2 if pooling == "mean_sum" else 1)
        with init_rng(seed):
            self.phi = nn.Sequential(nn.Linear(self.item_dim, self.hidden), nn.ReLU(),
                                     nn.Linear(self.hidden, self.hidden), nn.ReLU())
            self.rho = nn.Sequential(nn.Linear(pooled + 1, self.hidden), nn.ReLU(),
                                     nn.Linear(self.hidden, self.embedding_dim))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Latents of ``B`` sets.

        Args:
            x: ``(B, n, item_dim)`` item features (``n`` may be 0).
            mask: ``(B, n)`` bool, ``True`` for the items that belong to each set (default: all).

        Returns:
            ``(B, embedding_dim)``; a set with no item gets ``rho([0, 0])``.

        Raises:
            ValueError: If ``x`` or ``mask`` has the wrong shape.
        """
        if x.dim() != 3 or x.shape[-1] != self.item_dim:
            raise ValueError(f"x has shape {tuple(x.shape)}: expected (B, n, {self.item_dim})")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"mask has shape {tuple(mask.shape)}: expected {tuple(x.shape[:2])}")
        m = mask.to(x.dtype)
        count = m.sum(dim=1)
        h = self.phi(x) * m[..., None]
        total = h.sum(dim=1)
        parts = [total / count.clamp(min=1.0)[:, None]]
        if self.pooling == "mean_sum":
            # evidence adds up over items (a posterior sharpens with n); the scale only eases optimisation
            parts.append(total / SUM_SCALE)
        return self.rho(torch.cat([*parts, torch.log1p(count)[:, None]], dim=1))


def label_item_features(model: RewardModel, items: Mapping[str, Tensor]) -> Tensor:
    """The encoder's input of labelled transitions: ``[x(s), x(a), x(s'), y]`` with the reward model's featurizers.

    Args:
        model: Gives the featurizers (its observation and action spaces).
        items: ``obs (..., *obs_shape)``, ``action (...)``, ``next_obs (..., *obs_shape)``, ``label (...)``, any
            leading shape (``(n,)`` or ``(T, n)``).

    Returns:
        ``(..., item_dim)`` float features.
    """
    lead = tuple(items["label"].shape)
    n = int(np.prod(lead)) if lead else 1
    obs = items["obs"].reshape(n, *model.obs_shape)
    nxt = items["next_obs"].reshape(n, *model.obs_shape)
    act = items["action"].reshape(n, *model.action_shape)
    parts = [model.obs_featurizer(obs), model.action_featurizer(act), model.obs_featurizer(nxt),
             items["label"].reshape(n, 1).to(torch.float32)]
    feats = torch.cat([p.to(torch.float32).reshape(n, -1) for p in parts], dim=1)
    return feats.reshape(*lead, feats.shape[-1])


@register_method("amortized")
class AmortizedLatent(LatentTask):
    """A latent-task model whose new task's latent comes from a set encoder (see the module docstring).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        encoder_hidden: Width of the encoder's hidden layers.
        encoder_pooling: How the encoder pools its items, one of :data:`POOLINGS`.
        max_context: Largest context set drawn in pre-training (capped by the smallest source task's items).
        embedding_loss_weight: ``w``, the weight of the free per-task latents' loss in pre-training (0: none; the
            source latents, the prior and the MAP fallback are then untrained, so keep it > 0 for other feedback).
        inference: How a new task's latent is inferred from labels, one of :data:`INFERENCE_MODES`.
        refine_steps: Adam steps of ``"refine"``.
        **kwargs: Settings of :class:`~.latent.LatentTask` (``embedding_dim``, ``steps``, ``lr``, ``seed``,
            ``hidden_sizes``, the MAP search's ``n_top``, ``infer_steps``, ...).

    Raises:
        ValueError: On a bad setting (the message names it, its value and what is allowed).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        encoder_hidden: int = 64,
        encoder_pooling: str = "mean",
        max_context: int = 256,
        embedding_loss_weight: float = 1.0,
        inference: str = "encoder",
        refine_steps: int = 20,
        **kwargs: Any,
    ) -> None:
        for name, value, low in (("encoder_hidden", encoder_hidden, 1), ("max_context", max_context, 1),
                                 ("refine_steps", refine_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
        if (isinstance(embedding_loss_weight, bool) or not isinstance(embedding_loss_weight, (int, float))
                or not math.isfinite(embedding_loss_weight) or embedding_loss_weight < 0):
            raise ValueError(f"embedding_loss_weight={embedding_loss_weight!r} is not allowed: use a finite float >= 0")
        if encoder_pooling not in POOLINGS:
            raise ValueError(f"encoder_pooling={encoder_pooling!r} is not allowed: use one of {POOLINGS}")
        if inference not in INFERENCE_MODES:
            raise ValueError(f"inference={inference!r} is not allowed: use one of {INFERENCE_MODES}")
        super().__init__(observation_space, action_space, **kwargs)
        self.encoder_hidden, self.max_context = int(encoder_hidden), int(max_context)
        self.encoder_pooling = encoder_pooling
        self.embedding_loss_weight = float(embedding_loss_weight)
        self.inference, self.refine_steps = inference, int(refine_steps)
        self.encoder: SetEncoder | None = None
        self.encoder_history: list[float] = []

    # -- pre-training ------------------------------------------------------------------------------------------
    def _train(
        self,
        model: RewardModel,
        source: Objective,
        task_ids: Sequence[str],
        seed: int,
        overrides: Mapping[str, Tensor],
        extra_params: Sequence[nn.Parameter] = (),
    ) -> list[float]:
        """The task embedding's pre-training step, joined by the encoder's loss (labels only; see the module
        docstring). :attr:`history` keeps the free latents' loss (the label-noise variance is read from it),
        :attr:`encoder_history` the encoder's."""
        if not isinstance(source, LabelObjective):
            self.encoder = None  # nothing to encode: plain latent-task pre-training, MAP inference
            return super()._train(model, source, task_ids, seed, overrides, extra_params)
        emb = overrides["context"]
        groups = split_by_task(source)
        ids = sorted(groups)
        order = list(task_ids)
        rows = torch.as_tensor([order.index(t) for t in ids], dtype=torch.long)
        context_size = min(self.max_context, min(len(g) for g in groups.values()))
        probe = {k: v[:1] for k, v in source.items.items()}
        encoder = SetEncoder(int(label_item_features(model, probe).shape[-1]), self.embedding_dim,
                             self.encoder_hidden, seed=seed + 1, pooling=self.encoder_pooling)
        params = [p for p in model.parameters() if p.requires_grad] + list(extra_params) + list(encoder.parameters())
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        rng = np.random.default_rng(seed)
        n_tasks = len(ids) if self.tasks_per_step is None else min(int(self.tasks_per_step), len(ids))
        history, enc_history = [], []
        w = self.embedding_loss_weight
        with train_mode(model):
            for step in range(int(self.steps)):
                pick = np.sort(rng.choice(len(ids), size=n_tasks, replace=False))
                query = stack_items([draw_items(groups[ids[i]], self.items_per_task, rng) for i in pick])
                ctx = stack_items([draw_items(groups[ids[i]], context_size, rng) for i in pick])
                # n + 1 log-uniform over 1 .. context_size + 1: every size, small ones (and the empty set) often
                n = np.floor(np.exp(rng.uniform(0.0, np.log(context_size + 1), size=n_tasks))).astype(int) - 1
                mask = torch.arange(context_size)[None, :] < torch.as_tensor(np.clip(n, 0, context_size))[:, None]
                z = encoder(label_item_features(model, ctx), mask)
                enc_loss = per_task_losses(model, source.loss, query, source.shared, {"context": z}).mean()
                emb_loss = per_task_losses(model, source.loss, query, source.shared,
                                           {"context": emb[rows[torch.as_tensor(pick)]]}).mean()
                loss = enc_loss + w * emb_loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"amortized pre-training loss became {loss.item()} at step {step} (lr={self.lr}): lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append(float(emb_loss.detach()))
                enc_history.append(float(enc_loss.detach()))
        self.encoder = encoder.eval()
        self.encoder.requires_grad_(False)
        self.history, self.encoder_history = history, enc_history
        return history

    # -- inference ---------------------------------------------------------------------------------------------
    def encode(self, targets: Sequence[Objective]) -> Tensor:
        """``(N, d)`` encoder latents of label objectives (any sizes, 0 included; sets padded and masked).

        Raises:
            RuntimeError: If the method is not pretrained with reward labels (no encoder).
            TypeError: If a target is not a :class:`LabelObjective`.
        """
        self._require_pretrained(self.prior_mean is not None)
        if self.encoder is None:
            raise RuntimeError("no encoder: the method was pre-trained on feedback other than reward labels")
        bad = [type(t).__name__ for t in targets if not isinstance(t, LabelObjective)]
        if bad:
            raise TypeError(f"targets include {bad}: the encoder reads reward labels (LabelObjective) only")
        assert self.model is not None
        size = max([len(t) for t in targets] + [0])
        feats = torch.zeros(len(targets), size, self.encoder.item_dim)
        mask = torch.zeros(len(targets), size, dtype=torch.bool)
        for i, t in enumerate(targets):
            if len(t):
                feats[i, :len(t)] = label_item_features(self.model, t.items)
                mask[i, :len(t)] = True
        with torch.no_grad():
            return self.encoder(feats, mask)

    def _zero_shot(self) -> Tensor:
        """``(d,)`` the encoder's latent of the empty set (the prior mean without an encoder)."""
        assert self.prior_mean is not None
        if self.encoder is None:
            return self.prior_mean
        with torch.no_grad():
            return self.encoder(torch.zeros(1, 0, self.encoder.item_dim))[0]

    def start_model(self, task: Any = None) -> RewardModel:
        """A source task's model if ``task`` is one; else the network at the encoder's latent of no data."""
        self._require_pretrained(self.prior_mean is not None)
        if self._index(task) is not None:
            return self.task_model(task)
        return self.model_at(self._zero_shot())

    def _uses_encoder(self, targets: Sequence[Objective]) -> bool:
        return self.encoder is not None and all(isinstance(t, LabelObjective) for t in targets)

    def _starts(self, target: Objective, gen: torch.Generator) -> Tensor:
        """The parent's starts, with the encoder's latent first for a label target (``"map_start"``)."""
        starts = super()._starts(target, gen)
        if self.inference == "map_start" and self._uses_encoder([target]):
            starts = torch.cat([self.encode([target]), starts])
        return starts

    def infer(self, targets: Sequence[Objective], seed: int = 0) -> list[LatentPosterior]:
        """The posterior over ``z`` of each target: the encoder's latent (``"encoder"``), refined by a few MAP steps
        (``"refine"``), or the multi-start MAP with the encoder's latent as one more start (``"map_start"``); for
        targets the encoder does not read, the parent's multi-start MAP (see the module docstring).

        Args:
            targets: Feedback of each new task.
            seed: Seeds the prior draws of the MAP search.

        Returns:
            One :class:`LatentPosterior` per target (a single mode for ``"encoder"`` and ``"refine"``).

        Raises:
            RuntimeError: If the method is not pretrained.
        """
        self._require_pretrained(self.prior_mean is not None)
        if self.inference == "map_start" or not self._uses_encoder(targets) or not targets:
            return super().infer(targets, seed=seed)
        z = self.encode(targets)
        steps = self.refine_steps if self.inference == "refine" else 0
        return self._refine(targets, [zi[None] for zi in z], steps)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "encoder_hidden": self.encoder_hidden, "encoder_pooling": self.encoder_pooling,
                "max_context": self.max_context,
                "embedding_loss_weight": self.embedding_loss_weight, "inference": self.inference,
                "refine_steps": self.refine_steps}
