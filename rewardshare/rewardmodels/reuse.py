"""Reusing reward models across tasks: the shared machinery, the adaptation budget and its selection, and scratch.

Every reuse method (this module's :class:`Scratch`, :mod:`.transfer`, :mod:`.multitask`, :mod:`.conditioning`,
:mod:`.maml`, :mod:`.prior`) follows one life cycle:

1. ``method.pretrain(source, tasks)`` learns from the *source* tasks' feedback (an :class:`~.losses.Objective` whose
   items carry ``task_index``);
2. ``method.start_model(task)`` is the :class:`~.model.RewardModel` it offers a new task before seeing any of its
   feedback (zero-shot);
3. ``method.adapt(target, budget, task)`` adapts that model to the new task's few items (``target``, an Objective of
   any loss kind: reward labels, preferences, T-REX, MaxEnt IRL) and returns a plain ``RewardModel``.

How far to adapt (:class:`AdaptationBudget`: steps, learning rate, which parameters) decides whether adaptation
helps or destroys a good prior (a first prototype saw 300 Adam steps at lr 1e-3 on 4 labels take a goal-conditioned
model from EPIC 0.005 to 0.29). :func:`select_budget` therefore chooses it on *validation* tasks (drawn from the
``train`` split, never ``held_out``) with the same ``k``, and always includes "do not adapt" (``steps=0``), so the
chosen budget is never worse than not adapting on those validation tasks.

Scratch (the baseline): ``theta* = argmin_theta L(theta; D_target)`` from a fresh random initialisation, i.e. the
same :func:`finetune` loop started from an untrained model.
"""

from __future__ import annotations

import math
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.func import functional_call, vmap

from rewardshare.rewardmodels.losses import Objective
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.training import train_mode

Batch = dict[str, Tensor]
LossFn = Callable[[Any, Batch], Tensor]
Penalty = Callable[[Mapping[str, Tensor]], Tensor]


# ------------------------------------------------------------------------------------------------ functional tools
class FunctionalModel:
    """A view of ``module`` that runs with substituted tensors (``torch.func.functional_call``).

    Every other attribute is read from ``module``, so a loss that reads ``model.use_next_obs`` works unchanged.

    Args:
        module: The module whose ``forward`` runs.
        tensors: Parameter/buffer tensors by name (``named_parameters`` / ``named_buffers``); the others stay the
            module's own.
    """

    def __init__(self, module: nn.Module, tensors: Mapping[str, Tensor]) -> None:
        self._module = module
        self._tensors = dict(tensors)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return functional_call(self._module, self._tensors, args, kwargs, strict=False)

    forward = __call__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def select_parameters(module: nn.Module, names: str | Sequence[str] | None) -> list[str]:
    """Names of ``module``'s parameters matched by ``names``.

    Args:
        module: The model.
        names: ``None`` or ``"all"`` for every parameter; else parameter names or dotted prefixes (``"head"``,
            ``"context"``, ``"trunk.0"``), a single string or a sequence.

    Returns:
        The matching names in ``named_parameters`` order.

    Raises:
        ValueError: If an entry matches no parameter (the message lists the available names).
    """
    available = [n for n, _ in module.named_parameters()]
    if names is None or names == "all":
        return available
    if isinstance(names, str):
        names = (names,)
    picked: set[str] = set()
    for pattern in names:
        hits = [n for n in available if n == pattern or n.startswith(pattern + ".")]
        if not hits:
            raise ValueError(f"params entry {pattern!r} matches no parameter of the model; available: {available}")
        picked.update(hits)
    return [n for n in available if n in picked]


def batch_len(items: Mapping[str, Tensor]) -> int:
    """The common leading (item) dimension of ``items``.

    Raises:
        ValueError: If the tensors disagree or there are none.
    """
    sizes = {int(v.shape[0]) for v in items.values()}
    if len(sizes) != 1:
        raise ValueError(f"item tensors disagree on the leading dimension: sizes {sorted(sizes)}")
    return sizes.pop()


def stack_items(items: Sequence[Mapping[str, Tensor]]) -> Batch:
    """Stack per-task item dicts of equal sizes into ``(T, n, ...)`` tensors."""
    if not items:
        raise ValueError("no tasks to stack")
    return {k: torch.stack([b[k] for b in items]) for k in items[0]}


def index_items(items: Mapping[str, Tensor], index: Tensor | np.ndarray | int | slice) -> Batch:
    """``items[k][index]`` for every key."""
    if isinstance(index, np.ndarray):
        index = torch.as_tensor(index, dtype=torch.long)
    return {k: v[index] for k, v in items.items()}


def split_by_task(objective: Objective) -> dict[str, Objective]:
    """One sub-objective per task id present in ``objective`` (items grouped by ``task_index``).

    Each sub-objective keeps the pooled ``task_ids`` and ``shared`` tensors, so a per-task MaxEnt-IRL objective still
    finds its own grid.
    """
    index = objective.items["task_index"]
    out: dict[str, Objective] = {}
    for i in torch.unique(index).tolist():
        out[objective.task_ids[int(i)]] = objective.subset(index == int(i))
    return out


def draw_items(objective: Objective, n: int, rng: np.random.Generator) -> Batch:
    """``n`` random items of ``objective`` (without replacement when it has enough, else with), no shared tensors."""
    size = len(objective)
    idx = rng.choice(size, size=n, replace=n > size)
    return index_items(objective.items, idx)


_NO_VMAP: set[str] = set()


def vmap_or_loop(fn: Callable[..., Tensor], batched: Sequence[Mapping[str, Tensor]], key: str) -> Tensor:
    """``torch.stack([fn(*args_t) for t])`` over the leading dimension of every dict in ``batched``, vectorised with
    :func:`torch.func.vmap` when the computation allows it.

    Some losses read values (MaxEnt IRL groups items by task with ``torch.unique``), which vmap cannot do; those fall
    back to a Python loop (same values, slower), remembered per ``key`` so the failed attempt is paid once.
    """
    if key not in _NO_VMAP:
        try:
            return vmap(fn)(*batched)
        except RuntimeError as exc:
            if "vmap" not in str(exc):
                raise
            _NO_VMAP.add(key)
            warnings.warn(
                f"{key}: cannot run under torch.func.vmap ({str(exc).splitlines()[0][:100]}); looping over tasks",
                RuntimeWarning,
                stacklevel=2,
            )
    n = {int(v.shape[0]) for d in batched for v in d.values()}
    if len(n) != 1:
        raise ValueError(f"per-task inputs disagree on the number of tasks: {sorted(n)}")
    count = n.pop()
    return torch.stack([fn(*[index_items(d, t) for d in batched]) for t in range(count)])


def _loss_key(loss_fn: LossFn) -> str:
    owner = getattr(loss_fn, "__self__", None)
    return f"{type(owner).__name__ if owner is not None else getattr(loss_fn, '__name__', 'loss')}"


def per_task_losses(
    model: nn.Module,
    loss_fn: LossFn,
    items: Mapping[str, Tensor],
    shared: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """The loss of each task of a stacked batch, with per-task parameter overrides.

    ``loss_t = loss_fn(model with overrides[name][t], items_t + shared)``: task ``t``'s items are always paired with
    row ``t`` of every override (its task embedding, its head, its goal descriptor), so an item is never trained
    with another task's parameters.

    Args:
        model: The shared model.
        loss_fn: ``Objective.loss`` (or any ``loss(model, batch) -> scalar``).
        items: Item tensors stacked over tasks, ``(T, n, ...)``.
        shared: Tensors every batch carries unchanged (e.g. the MaxEnt-IRL grid).
        overrides: Per-task replacements of model tensors by name, ``(T, *tensor_shape)``.

    Returns:
        ``(T,)`` losses.
    """
    shared = dict(shared or {})
    overrides = dict(overrides or {})

    def one(item_t: Batch, over_t: Batch) -> Tensor:
        return loss_fn(FunctionalModel(model, over_t), {**item_t, **shared})

    return vmap_or_loop(one, [dict(items), overrides], _loss_key(loss_fn))


# ------------------------------------------------------------------------------------------------ budgets
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

            return vmap_or_loop(one, [stacked, buffers, items], "finetune/" + _loss_key(loss_fn))
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


# ------------------------------------------------------------------------------------------------ methods
class ReuseMethod(ABC):
    """A way to reuse what was learned on source tasks for a new task (see the module docstring).

    Subclasses set :attr:`name`, implement :meth:`pretrain` and :meth:`start_model`, and may override
    :meth:`adapt` and :meth:`candidate_params`.
    """

    name: str = ""

    @abstractmethod
    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int = 0) -> ReuseMethod:
        """Learn from the source tasks' items (``source.items["task_index"]`` names each item's task).

        Args:
            source: Pooled feedback of the source tasks.
            tasks: ``GoalTask`` objects of the source tasks (needed by methods that read the goal).
            seed: Seeds initialisation and sampling.

        Returns:
            ``self``.
        """

    @abstractmethod
    def start_model(self, task: Any = None) -> RewardModel:
        """The model offered to a new task before any of its feedback (a fresh object each call)."""

    def adapt(
        self, target: Objective, budget: AdaptationBudget = NO_ADAPTATION, task: Any = None, **kwargs: Any
    ) -> RewardModel:
        """Adapt :meth:`start_model` to ``target`` within ``budget`` (one run of :meth:`adapt_many`).

        Args:
            target: The new task's items (any loss kind).
            budget: Steps, learning rate, trained parameters (and prior weight).
            task: The new task (methods that read the goal need it).
            **kwargs: ``checkpoints`` / ``on_checkpoint(step, model)`` as in :func:`finetune`.

        Returns:
            A plain :class:`RewardModel` whose ``metadata["reuse"]`` records the method and budget.
        """
        hook = kwargs.pop("on_checkpoint", None)
        if hook is not None:
            kwargs["on_checkpoint"] = lambda step, ms: hook(step, ms[0])
        return self.adapt_many([target], budget, [task], **kwargs)[0]

    def adapt_many(
        self,
        targets: Sequence[Objective],
        budget: AdaptationBudget | Sequence[AdaptationBudget] = NO_ADAPTATION,
        tasks: Sequence[Any] | None = None,
        *,
        checkpoints: Iterable[int] = (),
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None = None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        """Adapt one start model per target, all in one batched computation (:func:`finetune_many`).

        Args:
            targets: Items of each run's task.
            budget: One budget for all runs, or one per run; per-run budgets may differ only in ``lr``.
            tasks: Each run's task (default ``None`` for all).
            checkpoints: Step counts at which ``on_checkpoint(step, models)`` sees the current models.
            on_checkpoint: See ``checkpoints``.
            on_divergence: ``"raise"`` or ``"stop"`` a run whose loss becomes non-finite (see :func:`finetune_many`).

        Returns:
            One adapted model per target.

        Raises:
            ValueError: On mismatched lengths, or per-run budgets that differ in more than ``lr``.
        """
        tasks = [None] * len(targets) if tasks is None else list(tasks)
        budgets = [budget] * len(targets) if isinstance(budget, AdaptationBudget) else list(budget)
        if not (len(tasks) == len(budgets) == len(targets)):
            raise ValueError(
                f"got {len(targets)} targets, {len(tasks)} tasks and {len(budgets)} budgets: give one per target"
            )
        shared = {(b.steps, b.params, b.prior_weight) for b in budgets}
        if len(shared) > 1:
            raise ValueError(f"per-run budgets may differ only in lr; got (steps, params, prior_weight) {shared}")
        starts = [self.start_model(t) for t in tasks]
        models = self._run(starts, targets, budgets, checkpoints, on_checkpoint, on_divergence)
        for m, t, b in zip(models, targets, budgets, strict=True):
            self._finish(m)
            self._stamp(m, b, len(t))
        return models

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        b = budgets[0]
        return finetune_many(
            starts,
            targets,
            steps=b.steps,
            lr=[x.lr for x in budgets],
            params=b.params,
            penalty=self.penalty(b),
            checkpoints=checkpoints,
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
        )

    def _finish(self, model: RewardModel) -> None:
        """Turn an adapted model into its final form (e.g. freeze a learned context); in place."""
        return None

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        """An extra adaptation loss term for ``budget`` (MAP adaptation's prior); ``None`` by default."""
        return None

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        """The parameter choices :func:`select_budget` tries for this method."""
        return ["all"]

    def candidate_lrs(self) -> list[float]:
        """The learning rates :func:`select_budget` tries for this method."""
        return [1e-3, 1e-2]

    def candidate_prior_weights(self) -> list[float]:
        """The prior strengths :func:`select_budget` tries (only MAP adaptation uses one)."""
        return [0.0]

    def candidate_steps(self) -> list[int]:
        """The step counts :func:`select_budget` tries for this method (0, no adaptation, is always added)."""
        return [0, 10, 30, 100, 300]

    def config(self) -> dict[str, Any]:
        """JSON-ready settings (for provenance)."""
        return {"method": self.name}

    def _stamp(self, model: RewardModel, budget: AdaptationBudget, n_target: int) -> None:
        model.metadata["reuse"] = {
            "method": self.name,
            "budget": budget.to_dict(),
            "n_target_items": int(n_target),
            "config": self.config(),
        }

    def _require_pretrained(self, ready: bool) -> None:
        if not ready:
            raise RuntimeError(f"{type(self).__name__} is not pretrained: call .pretrain(source, tasks) first")


class Scratch(ReuseMethod):
    """The baseline: learn the new task's reward from its ``k`` items alone, from a fresh random model.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        seed: Weight initialisation seed.
        **model_kwargs: Passed to :class:`RewardModel` (``hidden_sizes``, ``use_next_obs``, ...).
    """

    name = "scratch"

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, seed: int = 0, **model_kwargs: Any):
        self.observation_space = observation_space
        self.action_space = action_space
        self.seed = int(seed)
        self.model_kwargs = model_kwargs

    def pretrain(
        self, source: Objective | None = None, tasks: Sequence[Any] | None = None, *, seed: int = 0
    ) -> Scratch:
        """Nothing to learn from source tasks; kept for the common interface."""
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        return RewardModel(self.observation_space, self.action_space, seed=self.seed, **self.model_kwargs)

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "seed": self.seed,
            "model": {k: _jsonable(v) for k, v in self.model_kwargs.items()},
        }


def _jsonable(x: Any) -> Any:
    if isinstance(x, tuple):
        return list(x)
    return x


class PerTaskPretrained(ReuseMethod):
    """Base of the methods pre-trained with :func:`train_per_task` on every source task, each item with its own
    task's tensors (task embedding, trunk + heads, goal conditioning): their settings, what pre-training leaves
    (:attr:`model`, :attr:`task_ids`, :attr:`history`) and the shared part of their :meth:`config`.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        steps: Pre-training steps.
        lr: Pre-training learning rate.
        items_per_task: Items per task per step.
        tasks_per_step: Tasks per step (``None``: all).
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        steps: int = 3000,
        lr: float = 1e-3,
        items_per_task: int = 32,
        tasks_per_step: int | None = None,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.steps, self.lr, self.items_per_task, self.seed = int(steps), float(lr), int(items_per_task), int(seed)
        self.tasks_per_step = tasks_per_step
        self.model_kwargs = model_kwargs
        self.model: RewardModel | None = None
        self.task_ids: list[str] = []
        self.history: list[float] = []

    def _new_model(self, seed: int, **kwargs: Any) -> RewardModel:
        """A fresh model of this method's spaces and ``model_kwargs`` (plus ``kwargs``, e.g. a context)."""
        return RewardModel(self.observation_space, self.action_space, seed=seed, **kwargs, **self.model_kwargs)

    def _train(
        self,
        model: RewardModel,
        source: Objective,
        task_ids: Sequence[str],
        seed: int,
        overrides: Mapping[str, Tensor],
        extra_params: Iterable[nn.Parameter] = (),
    ) -> list[float]:
        """:func:`train_per_task` with this method's settings; returns (and keeps in :attr:`history`) the losses."""
        self.history = train_per_task(
            model,
            source,
            task_ids,
            overrides=overrides,
            extra_params=extra_params,
            steps=self.steps,
            lr=self.lr,
            items_per_task=self.items_per_task,
            tasks_per_step=self.tasks_per_step,
            seed=seed,
        )
        return self.history

    def _base_config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "steps": self.steps,
            "lr": self.lr,
            "items_per_task": self.items_per_task,
            "tasks_per_step": self.tasks_per_step,
            "seed": self.seed,
            "n_source_tasks": len(self.task_ids),
            "model": {k: _jsonable(v) for k, v in self.model_kwargs.items()},
        }


# ------------------------------------------------------------------------------------------------ budget selection
@dataclass
class BudgetSelection:
    """The outcome of :func:`select_budget`.

    Attributes:
        budget: The chosen budget (lowest mean validation score; ties go to fewer steps).
        score: Its mean validation score.
        no_adapt_score: The mean validation score of the start model (``steps=0``); ``score <= no_adapt_score``.
        k: Target items per validation task.
        table: Every candidate: ``{"budget": ..., "score": mean, "scores": per task and seed}``.
        seconds: Wall-clock time of the selection.
    """

    budget: AdaptationBudget
    score: float
    no_adapt_score: float
    k: int
    table: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "budget": self.budget.to_dict(),
            "score": self.score,
            "no_adapt_score": self.no_adapt_score,
            "k": self.k,
            "table": [
                {**row, "score": _finite_or_none(row["score"]), "scores": [_finite_or_none(v) for v in row["scores"]]}
                for row in self.table
            ],
            "seconds": self.seconds,
        }


def select_budget(
    method: ReuseMethod,
    validation: Sequence[tuple[Any, Objective]],
    k: int,
    score: Callable[[RewardModel, Any], float],
    *,
    steps: Sequence[int] | None = None,
    lrs: Sequence[float] | None = None,
    params: Sequence[str | tuple[str, ...]] | None = None,
    prior_weights: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    draw: Callable[[Objective, int, int], Objective] | None = None,
) -> BudgetSelection:
    """Choose the adaptation budget of ``method`` for ``k`` target items on validation tasks.

    For every validation task and seed, ``k`` items are drawn from the task's pool; every (lr, params,
    prior_weight) is run once up to ``max(steps)`` and scored at each step count in ``steps``. The budget with the
    lowest mean score wins; ``steps=0`` (no adaptation) is always a candidate, so the winner is never worse than not
    adapting *on these validation tasks*. Pass validation tasks from the ``train`` split only (never ``held_out``).

    Args:
        method: A pretrained reuse method.
        validation: ``(task, pool)`` pairs: the task (as :meth:`ReuseMethod.start_model` takes it) and an Objective
            with at least ``k`` of its items (or, with a custom ``draw``, whatever ``draw`` reads).
        k: Target items per adaptation (the few-shot budget being tuned for).
        score: ``score(model, task) -> float``, lower is better (e.g. EPIC distance to the task's teacher).
        steps: Step counts to try (``0`` is added if missing); default ``method.candidate_steps()``.
        lrs: Learning rates to try; default ``method.candidate_lrs()``.
        params: Parameter choices; default ``method.candidate_params()``.
        prior_weights: Prior strengths to try; default ``method.candidate_prior_weights()``.
        seeds: Draws of the ``k`` items per task.
        draw: ``draw(pool, k, seed) -> Objective``; default ``k`` distinct random items of the pool. A custom draw
            can collect fresh feedback, e.g. ``k`` labels along demonstrations.

    Returns:
        A :class:`BudgetSelection`.

    Raises:
        ValueError: If ``validation`` is empty, ``k < 1`` or a pool has fewer than ``k`` items.
    """
    if not validation:
        raise ValueError("validation is empty: pass (task, pool) pairs from the train split")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} is not allowed: use an int >= 1")
    if draw is None:
        for _, pool in validation:
            if len(pool) < k:
                raise ValueError(f"a validation pool has {len(pool)} items: need at least k={k}")
    draw = draw or _draw_k
    start = time.perf_counter()
    steps = method.candidate_steps() if steps is None else steps
    lrs = method.candidate_lrs() if lrs is None else lrs
    prior_weights = method.candidate_prior_weights() if prior_weights is None else prior_weights
    step_list = sorted({0, *(int(s) for s in steps)})
    max_steps = step_list[-1]
    params = list(params) if params is not None else method.candidate_params()
    # results[(steps, lr, params, w)] -> list of scores
    results: dict[tuple[int, float, Any, float], list[float]] = {}
    runs = [(task, draw(pool, int(k), int(seed))) for task, pool in validation for seed in seeds]
    run_tasks = [task for task, _ in runs]
    zero_scores = [float(score(method.start_model(task), task)) for task in run_tasks]
    zero_scores = [v if math.isfinite(v) else math.inf for v in zero_scores]
    checks = [s for s in step_list if s > 0]
    lrs = [float(v) for v in lrs]
    for p in params:
        for w in prior_weights:
            if max_steps == 0:
                break
            # every learning rate in one batched call: runs are (lr, task, seed), lr-major
            budgets = [AdaptationBudget(max_steps, lr, p, w) for lr in lrs for _ in runs]

            def record(step: int, models: list[RewardModel], p: Any = p, w: float = w) -> None:
                if step > 0:
                    for i, m in enumerate(models):
                        lr = lrs[i // len(runs)]
                        value = float(score(m, run_tasks[i % len(runs)]))
                        results.setdefault((step, lr, p, w), []).append(value if math.isfinite(value) else math.inf)

            method.adapt_many(
                [t for _, t in runs] * len(lrs),
                budgets,
                run_tasks * len(lrs),
                checkpoints=checks,
                on_checkpoint=record,
                on_divergence="stop",
            )
    no_adapt = float(np.mean(zero_scores))
    table = [{"budget": NO_ADAPTATION.to_dict(), "score": no_adapt, "scores": zero_scores}]
    best, best_score = NO_ADAPTATION, no_adapt
    for (s, lr, p, w), vals in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3])):
        mean = float(np.mean(vals))
        budget = AdaptationBudget(s, lr, p, w)
        table.append({"budget": budget.to_dict(), "score": mean, "scores": vals})
        if mean < best_score - 1e-12 or (math.isclose(mean, best_score) and s < best.steps):
            best, best_score = budget, mean
    return BudgetSelection(best, best_score, no_adapt, int(k), table, time.perf_counter() - start)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _draw_k(pool: Objective, k: int, seed: int) -> Objective:
    idx = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
    return pool.subset(np.sort(idx))


# ------------------------------------------------------------------------------------------------ multi-task training
def train_per_task(
    model: nn.Module,
    source: Objective,
    task_order: Sequence[str],
    *,
    overrides: Mapping[str, Tensor] | None = None,
    extra_params: Iterable[nn.Parameter] = (),
    train_model: bool = True,
    steps: int = 2000,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    items_per_task: int = 32,
    tasks_per_step: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Train on the mean of per-task losses, ``(1/T) sum_t L_t(theta, phi_t)``, each task with its own tensors.

    Every step draws ``tasks_per_step`` tasks (default all) and ``items_per_task`` items of each, and pairs task
    ``t``'s items with row ``task_order.index(t)`` of every override (:func:`per_task_losses`).

    Args:
        model: The shared model (trained in place when ``train_model``).
        source: Pooled items of the tasks; ``source.task_ids`` must all be in ``task_order``.
        task_order: Task id of each override row.
        overrides: Per-task model tensors ``(T, ...)`` by parameter/buffer name (learned if they are parameters
            listed in ``extra_params``, fixed otherwise).
        extra_params: Further tensors to train (the override parameters).
        train_model: Also train the shared model's parameters.
        steps: Gradient steps.
        lr: Adam learning rate.
        weight_decay: AdamW weight decay.
        items_per_task: Items per task per step (drawn with replacement when a task has fewer).
        tasks_per_step: Tasks per step; ``None`` for all.
        seed: Seeds the draws.

    Returns:
        The mean per-task loss of each step.

    Raises:
        ValueError: If a task of ``source`` has no row in ``task_order``.
    """
    groups = split_by_task(source)
    order = list(task_order)
    missing = [t for t in groups if t not in order]
    if missing:
        raise ValueError(f"tasks {missing} of the source data have no row in task_order")
    ids = sorted(groups)
    rows = torch.as_tensor([order.index(t) for t in ids], dtype=torch.long)
    overrides = dict(overrides or {})
    params = ([p for p in model.parameters() if p.requires_grad] if train_model else []) + list(extra_params)
    if not params:
        raise ValueError("nothing to train: train_model=False and no extra_params")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    history: list[float] = []
    n_tasks = len(ids) if tasks_per_step is None else min(int(tasks_per_step), len(ids))
    with train_mode(model):
        for step in range(int(steps)):
            pick = np.sort(rng.choice(len(ids), size=n_tasks, replace=False))
            items = stack_items([draw_items(groups[ids[i]], items_per_task, rng) for i in pick])
            sel = rows[torch.as_tensor(pick)]
            over = {name: value[sel] for name, value in overrides.items()}
            loss = per_task_losses(model, source.loss, items, source.shared, over).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"multi-task loss became {loss.item()} at step {step} (lr={lr}): lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(float(loss.detach()))
    return history
