"""Adapting reward models to new tasks: the adaptation budget and batched full-batch fine-tuning.

How far to adapt (:class:`AdaptationBudget`: steps, learning rate, which parameters) decides whether adaptation
helps or destroys a good prior (a first prototype saw 300 Adam steps at lr 1e-3 on 4 labels take a goal-conditioned
model from EPIC 0.005 to 0.29), so the budget is chosen on validation tasks (:mod:`.selection`).

:func:`finetune_many` adapts many models to many targets in one stacked computation (few-shot adaptation is dominated
by per-step overhead, so batching many runs costs about as much as a few); :func:`finetune` is its one-run form.
Scratch, transfer, multi-task, goal conditioning and MAP adaptation all adapt with it; MAML runs its learned inner
loop through the same function (``rates``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.functional import (
    Batch,
    FunctionalModel,
    index_items,
    loss_key,
    select_parameters,
    stack_items,
    vmap_or_loop,
)

Penalty = Callable[[Mapping[str, Tensor]], Tensor]


@dataclass(frozen=True)
class AdaptationBudget:
    """How far to adapt a model to a new task.

    Attributes:
        steps: Full-batch gradient steps on the target items (``0``: use the start model as is).
        lr: Adam learning rate (for MAML: a multiplier of the meta-learned inner rates, see :mod:`.maml`).
        params: Which parameters move: ``"all"`` or names / prefixes such as ``"head"``, ``"context"``,
            ``("head", "context")``; the others stay frozen.
        prior_weight: ``lambda`` of the Gaussian-prior penalty ``lambda * sum_j w_j (theta_j - mu_j)^2`` (MAP
            adaptation, :mod:`.prior`); ``0`` elsewhere.
    """

    steps: int = 0
    lr: float = 1e-3
    params: str | tuple[str, ...] = "all"
    prior_weight: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 0:
            raise ValueError(f"steps={self.steps!r} is not allowed: use an int >= 0")
        object.__setattr__(self, "steps", int(self.steps))
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr={self.lr!r} is not allowed: use a finite float > 0")
        if (
            not isinstance(self.prior_weight, (int, float))
            or not math.isfinite(self.prior_weight)
            or self.prior_weight < 0
        ):
            raise ValueError(f"prior_weight={self.prior_weight!r} is not allowed: use a finite float >= 0")
        if not isinstance(self.params, str):
            object.__setattr__(self, "params", tuple(self.params))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = asdict(self)
        out["params"] = self.params if isinstance(self.params, str) else list(self.params)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptationBudget:
        """Inverse of :meth:`to_dict`."""
        params = data.get("params", "all")
        return cls(
            int(data["steps"]),
            float(data["lr"]),
            params if isinstance(params, str) else tuple(params),
            float(data.get("prior_weight", 0.0)),
        )


NO_ADAPTATION = AdaptationBudget(steps=0)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
DIVERGENCE_POLICIES: tuple[str, ...] = ("raise", "stop")


def finetune_many(
    models: Sequence[RewardModel],
    targets: Sequence[Objective],
    *,
    steps: int,
    lr: float | Sequence[float],
    params: str | Sequence[str] = "all",
    penalty: Penalty | None = None,
    rates: Mapping[str, Tensor | float] | None = None,
    checkpoints: Iterable[int] = (),
    on_checkpoint: Callable[[int, list[RewardModel]], None] | None = None,
    on_divergence: str = "raise",
) -> list[RewardModel]:
    """Adapt ``R`` models to ``R`` targets at once: ``steps`` full-batch steps on ``L(theta_r; D_r) [+ penalty]``.

    The runs are independent (run ``r`` sees only ``models[r]`` and ``targets[r]``) but share one computation: their
    weights are stacked along a leading run dimension, per-run losses are vectorised with :func:`torch.func.vmap`
    (a loop for losses that vmap cannot run, e.g. MaxEnt IRL, or targets of different sizes), and the optimizer
    steps all runs together. Adam is elementwise, so Adam on the stacked weights is exactly per-run Adam; few-shot
    adaptation is dominated by per-step overhead, so batching many runs costs about as much as a few.

    Updates: Adam (``torch.optim.Adam``'s defaults, written out so each run may have its own learning rate ``lr``),
    or, with ``rates``, plain gradient steps
    ``theta <- theta - lr * rate (.) grad`` (MAML's inner loop; ``rate`` a float or a tensor of the parameter's
    shape).

    Args:
        models: Start models with one architecture (left unchanged).
        targets: One target per model (any loss kind, one kind for all).
        steps: Gradient steps (``0`` returns clones of the start models).
        lr: Adam learning rate, or the multiplier of ``rates``; one for all runs or one per run.
        params: Parameters to train (see :func:`select_parameters`); the rest stay frozen.
        penalty: Extra loss term on the trained parameters, called with *stacked* tensors ``{name: (R, ...)}``; it
            must be a sum over runs (e.g. :meth:`GaussianPrior.penalty`) so each run gets its own gradient.
        rates: Per-parameter step sizes for plain gradient steps instead of Adam (names must be the trained ones).
        checkpoints: Step counts (``0 .. steps``) at which ``on_checkpoint(step, models)`` sees the current models.
        on_checkpoint: See ``checkpoints``; the models it receives are overwritten later (clone them to keep them).
        on_divergence: What to do when a run's loss becomes NaN or infinite: ``"raise"`` a FloatingPointError, or
            ``"stop"`` that run at its last weights with a finite loss (the others go on); a stopped model records
            ``metadata["adaptation_stopped_at_step"]``. Budget selection uses ``"stop"``, so a learning rate that
            diverges on some runs simply scores badly.

    Returns:
        The adapted models (new objects, same order).

    Raises:
        ValueError: On mismatched lengths, an empty target, models of different architectures or a bad argument.
        FloatingPointError: If a run's loss becomes NaN or infinite under ``on_divergence="raise"`` (run named).
    """
    if on_divergence not in DIVERGENCE_POLICIES:
        raise ValueError(f"on_divergence={on_divergence!r} is not allowed: use one of {DIVERGENCE_POLICIES}")
    if len(models) != len(targets) or not models:
        raise ValueError(f"got {len(models)} models and {len(targets)} targets: give one target per model (>= 1)")
    for i, t in enumerate(targets):
        if len(t) == 0:
            raise ValueError(f"target {i} is empty: adaptation needs at least one item")
    lrs = [float(lr)] * len(models) if isinstance(lr, (int, float)) else [float(v) for v in lr]
    if len(lrs) != len(models):
        raise ValueError(f"got {len(lrs)} learning rates for {len(models)} models: give one, or one per model")
    for v in lrs:
        AdaptationBudget(steps, v, params if isinstance(params, str) else tuple(params))  # validates
    base = models[0]
    config = base.config()
    if any(m.config() != config for m in models[1:]):
        raise ValueError("models have different architectures (config()); adapt them in separate calls")
    names = select_parameters(base, params)
    checks = sorted({int(c) for c in checkpoints})
    if any(c < 0 or c > steps for c in checks):
        raise ValueError(f"checkpoints={checks} is not allowed: use step counts in 0..{steps}")
    if rates is not None and set(rates) != set(names):
        raise ValueError(f"rates are given for {sorted(rates)} but the trained parameters are {names}")
    outs = [m.clone() for m in models]
    device = base.device
    stacked = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in outs]) for n, _ in base.named_parameters()
    }
    buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in outs]) for n, _ in base.named_buffers()}
    train = {n: stacked[n].requires_grad_(True) for n in names}
    objectives = [t.to(device) for t in targets]
    batches = [o.batch() for o in objectives]
    kinds = {type(o) for o in objectives}
    sizes = {len(o) for o in objectives}
    vectorise = len(kinds) == 1 and len(sizes) == 1 and not any(o.shared for o in objectives)
    items = stack_items([o.items for o in objectives]) if vectorise else {}
    loss_fn = objectives[0].loss
    lr_t = torch.tensor(lrs, dtype=base.head.weight.dtype, device=device)
    per_run = {n: lr_t.reshape(-1, *([1] * (p.dim() - 1))) for n, p in train.items()}  # broadcast over a weight
    adam = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in train.items()} if rates is None else {}
    active = torch.ones(len(models), dtype=torch.bool, device=device)
    stopped_at: dict[int, int] = {}
    prev: dict[str, Tensor] = {}

    def run_losses() -> Tensor:
        if vectorise:

            def one(p: Batch, b: Batch, it: Batch) -> Tensor:
                return loss_fn(FunctionalModel(base, {**p, **b}), it)

            return vmap_or_loop(one, [stacked, buffers, items], "finetune/" + loss_key(loss_fn))
        return torch.stack(
            [
                o.loss(FunctionalModel(base, {**index_items(stacked, r), **index_items(buffers, r)}), batches[r])
                for r, o in enumerate(objectives)
            ]
        )

    def sync() -> None:
        with torch.no_grad():
            for r, m in enumerate(outs):
                for n, p in m.named_parameters():
                    p.copy_(stacked[n][r])

    def publish(step: int) -> None:
        if on_checkpoint is not None:
            sync()
            on_checkpoint(step, outs)

    for step in range(steps + 1):
        losses = None
        if train and (step < steps or on_divergence == "stop"):
            losses = run_losses()
            finite = torch.isfinite(losses.detach())
            if not bool((finite | ~active).all()):
                bad = torch.nonzero(~finite & active).flatten().tolist()
                if on_divergence == "raise":
                    raise FloatingPointError(
                        f"adaptation loss became non-finite at step {step} (run {bad[0]}, lr={lrs[bad[0]]}): "
                        "lower lr or steps"
                    )
                with torch.no_grad():  # back to the last weights with a finite loss, and no further updates
                    for r in bad:
                        stopped_at[r] = step
                        active[r] = False
                        for n, p in train.items():
                            if prev:
                                p[r] = prev[n][r]
                losses = run_losses() if bool(active.any()) else None
        if step in checks:
            publish(step)
        if step == steps:
            break
        if not train or losses is None:  # nothing (left) to train: every later checkpoint sees the same models
            for c in checks:
                if c > step:
                    publish(c)
            break
        total = torch.where(active, losses, torch.zeros_like(losses)).sum()
        if penalty is not None:
            total = total + penalty(train)
        if not torch.isfinite(total):
            raise FloatingPointError(f"adaptation penalty became non-finite at step {step} (lr={lrs}): lower lr")
        grads = torch.autograd.grad(total, list(train.values()), allow_unused=True)
        with torch.no_grad():
            if on_divergence == "stop":
                prev = {n: p.detach().clone() for n, p in train.items()}
            for (n, p), g in zip(train.items(), grads, strict=True):
                if g is None:  # the parameter does not reach the loss (e.g. a head replaced by overrides)
                    continue
                mask = active.reshape(-1, *([1] * (p.dim() - 1))).to(p.dtype)
                if rates is not None:
                    p.sub_(mask * per_run[n] * rates[n] * g)
                    continue
                # Adam, as torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8) computes it, elementwise per run
                m, v = adam[n]
                m.mul_(ADAM_BETAS[0]).add_(g, alpha=1 - ADAM_BETAS[0])
                v.mul_(ADAM_BETAS[1]).addcmul_(g, g, value=1 - ADAM_BETAS[1])
                bias1 = 1 - ADAM_BETAS[0] ** (step + 1)
                bias2 = 1 - ADAM_BETAS[1] ** (step + 1)
                denom = (v.sqrt() / math.sqrt(bias2)).add_(ADAM_EPS)
                p.sub_(mask * per_run[n] / bias1 * m / denom)
    sync()
    for r, at in stopped_at.items():
        outs[r].metadata["adaptation_stopped_at_step"] = at
    return outs


def finetune(
    model: RewardModel,
    target: Objective,
    *,
    steps: int,
    lr: float,
    params: str | Sequence[str] = "all",
    penalty: Penalty | None = None,
    checkpoints: Iterable[int] = (),
    on_checkpoint: Callable[[int, RewardModel], None] | None = None,
) -> RewardModel:
    """Adapt one model: ``steps`` full-batch Adam steps on ``L(theta; D) [+ penalty(theta)]`` (see
    :func:`finetune_many`, which this calls with one run).

    Full batch because few-shot targets are small (k items); the result is deterministic given the inputs.

    Args:
        model: The start model (left unchanged).
        target: The target task's items, any loss kind.
        steps: Gradient steps (``0`` returns a clone of the start model).
        lr: Adam learning rate.
        params: Parameters to train (see :func:`select_parameters`); the rest are frozen.
        penalty: Extra term on the trained parameters (``{name: (1, ...) tensor}``), e.g. a Gaussian prior.
        checkpoints: Step counts (``0 .. steps``) at which ``on_checkpoint(step, model)`` sees the model.
        on_checkpoint: See ``checkpoints``; the model it receives keeps changing afterwards (clone it to keep it).

    Returns:
        The adapted model (a new object).

    Raises:
        ValueError: On an empty target or a bad argument.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    hook = None if on_checkpoint is None else (lambda step, ms: on_checkpoint(step, ms[0]))
    return finetune_many(
        [model],
        [target],
        steps=steps,
        lr=lr,
        params=params,
        penalty=penalty,
        checkpoints=checkpoints,
        on_checkpoint=hook,
    )[0]
