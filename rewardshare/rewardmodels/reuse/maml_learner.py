"""The MAML / Meta-SGD meta-learner of reward models: meta-training, meta-batches and adaptation.

Model-agnostic meta-learning (Finn et al. 2017) learns initial weights ``theta`` from which a few gradient steps on
a new task's small *support* set give a good reward model. For each task ``i`` of a meta-batch, with a support set
``S_i`` and a *disjoint* query set ``Q_i`` (the reference snippet adapted and evaluated on the same data, which
measures nothing), the inner loop runs ``K`` steps

    theta_i^0 = theta,    theta_i^{k+1} = theta_i^k - alpha (.) grad L(theta_i^k; S_i)

and the meta-objective is the query loss of the adapted weights, averaged over the meta-batch of ``T`` tasks:

    min_{theta, alpha}  (1 / T) sum_i L(theta_i^K; Q_i)

``alpha`` is a fixed scalar (MAML) or, with ``meta_sgd=True``, one learned rate per parameter entry (Meta-SGD, Li et
al. 2017): the meta-learner decides *which* weights move and how far in a few steps (a first prototype found
goal-agnostic few-step MAML with a scalar rate plateaued). ``first_order=True`` treats ``grad L(theta_i^k; S_i)`` as a
constant in the outer gradient (FOMAML). ``inner_params`` restricts the inner loop to some parameters (``"context"``
alone adapts a context vector, as CAVIA does; :mod:`.cavia` also keeps the context out of the outer loop).

The support size ``n_S`` can be drawn anew for every meta-batch, log-uniformly over ``[low, high]``
(``support_size=(low, high)``; :class:`MetaBatchSampler`), so that the initialisation is meta-trained for the whole
range of feedback amounts it will be adapted with at test time (few-shot benchmarks use ``k`` from 1 to 256), not
for one ``k``.

The meta-loss is computed by one of two backends that give the same meta-gradient (:mod:`.maml_backends`:
``torch.func``, the default, or ``higher``).

At test time (:meth:`MAML.adapt_many`) the model adapts with the inner loop's own update (plain gradient steps with
the meta-learned rates, ``optimizer="sgd"``) or with Adam (``optimizer="adam"``, at ``lr_scale * adam_lr``), for as
many steps as the adaptation budget says: with hundreds of target items the few inner steps meta-training optimised
are far too few, and Adam's per-weight normalisation copes with the long run better than fixed rates.

The loss is an :class:`~rewardshare.rewardmodels.objectives.Objective` (reward labels, preferences, T-REX, MaxEnt IRL):
items stacked over tasks ``(T, n, ...)``, the objective's ``shared`` tensors passed along unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import finetune_many
from rewardshare.rewardmodels.reuse.functional import (
    Batch,
    LossFn,
    draw_items,
    index_items,
    select_parameters,
    split_by_task,
    stack_items,
)
from rewardshare.rewardmodels.reuse.maml_backends import BACKENDS, DEFAULT_BACKEND, mean_query_loss
from rewardshare.rewardmodels.training import train_mode


@dataclass
class MAMLConfig:
    """Settings of MAML / Meta-SGD.

    Attributes:
        inner_steps: Gradient steps ``K`` on the support set (meta-training, and :meth:`MAML.adapt`'s default).
        inner_lr: Inner learning rate ``alpha`` (the initial value of every per-parameter rate under Meta-SGD).
        first_order: Drop second-order terms (FOMAML).
        meta_sgd: Learn one inner learning rate per parameter entry (Meta-SGD).
        meta_batch_size: Tasks per meta-iteration.
        support_size: Items per task in the support set (the few-shot ``k`` you expect to adapt with), or a range
            ``(low, high)`` from which every meta-batch draws its support size log-uniformly (capped by the items a
            task has beyond its query set; see :class:`MetaBatchSampler`).
        query_size: Items per task in the query set, disjoint from the support set.
        outer_lr: Adam learning rate of the meta-parameters.
        iterations: Meta-iterations of :meth:`MAML.meta_train`.
        inner_params: Parameter names or prefixes (``"head"``, ``"context"``) the inner loop adapts; ``None``: all.
        backend: ``"func"`` or ``"higher"``.
        adam_lr: Reference learning rate of test-time adaptation with ``optimizer="adam"`` (an adaptation budget's
            ``lr`` multiplies it, as it multiplies the inner rates of ``optimizer="sgd"``).
    """

    inner_steps: int = 5
    inner_lr: float = 0.1
    first_order: bool = False
    meta_sgd: bool = False
    meta_batch_size: int = 8
    support_size: int | tuple[int, int] = 16
    query_size: int = 32
    outer_lr: float = 1e-3
    iterations: int = 500
    inner_params: tuple[str, ...] | None = None
    backend: str = DEFAULT_BACKEND
    adam_lr: float = 1e-2

    def __post_init__(self) -> None:
        if self.inner_params is not None:
            self.inner_params = (self.inner_params,) if isinstance(self.inner_params, str) else tuple(self.inner_params)
        if not isinstance(self.support_size, (int, np.integer)) or isinstance(self.support_size, bool):
            self.support_size = check_support_range(self.support_size)
        for name, low in (
            ("inner_steps", 0),
            ("iterations", 0),
            ("meta_batch_size", 1),
            ("support_size", 1),
            ("query_size", 1),
        ):
            value = getattr(self, name)
            if name == "support_size" and isinstance(value, tuple):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
        if isinstance(self.adam_lr, bool) or not isinstance(self.adam_lr, (int, float)) or not (
            math.isfinite(self.adam_lr) and self.adam_lr > 0
        ):
            raise ValueError(f"adam_lr={self.adam_lr!r} is not allowed: use a finite float > 0")
        for name in ("inner_lr", "outer_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} is not allowed: use a finite float >= 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not allowed: use one of {BACKENDS}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = asdict(self)
        out["inner_params"] = None if self.inner_params is None else list(self.inner_params)
        if isinstance(self.support_size, tuple):
            out["support_size"] = list(self.support_size)
        return out


def check_support_range(value: Any) -> tuple[int, int]:
    """``value`` as a support-size range ``(low, high)`` with ``1 <= low <= high``.

    Raises:
        ValueError: If it is not a pair of such ints.
    """
    pair = tuple(value) if isinstance(value, (list, tuple)) else ()
    if (
        len(pair) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair)
        or not 1 <= pair[0] <= pair[1]
    ):
        raise ValueError(
            f"support_size={value!r} is not allowed: use an int >= 1 or a pair (low, high) with 1 <= low <= high"
        )
    return int(pair[0]), int(pair[1])


def _lr_key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys may not contain "."


class MAML(nn.Module):
    """Meta-learn the initial weights (and, under Meta-SGD, per-parameter inner rates) of a reward model.

    The meta-parameters are ``model``'s own parameters (trained in place) plus :attr:`inner_lrs`.

    Args:
        model: The reward model (any module called like :meth:`RewardModel.forward`).
        config: Settings; default ``MAMLConfig()``.

    Raises:
        ValueError: If ``config.inner_params`` matches no parameter.
    """

    def __init__(self, model: nn.Module, config: MAMLConfig | None = None) -> None:
        super().__init__()
        self.model = model
        self.config = config or MAMLConfig()
        self.inner_names = select_parameters(model, self.config.inner_params)
        params = dict(model.named_parameters())
        self.inner_lrs: nn.ParameterDict | None = None
        if self.config.meta_sgd:
            self.inner_lrs = nn.ParameterDict(
                {
                    _lr_key(n): nn.Parameter(torch.full_like(params[n], float(self.config.inner_lr)))
                    for n in self.inner_names
                }
            )

    # -- inner loop ----------------------------------------------------------------------------------------------
    def rates(self) -> dict[str, Tensor | float]:
        """The inner learning rate of each adapted parameter (a tensor of its shape under Meta-SGD)."""
        if self.inner_lrs is None:
            return {n: float(self.config.inner_lr) for n in self.inner_names}
        return {n: self.inner_lrs[_lr_key(n)] for n in self.inner_names}

    def meta_loss(
        self,
        support: Batch,
        query: Batch,
        loss_fn: LossFn,
        shared: Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
        steps: int | None = None,
    ) -> Tensor:
        """The meta-objective on one meta-batch: the mean query loss after adapting on each task's support set.

        Args:
            support: Support items stacked over tasks, every tensor ``(T, n_support, ...)``.
            query: Query items ``(T, n_query, ...)``, disjoint from the support items.
            loss_fn: ``Objective.loss`` (or any ``loss(model, batch) -> scalar``).
            shared: Tensors every batch carries (``Objective.shared``).
            backend: ``"func"`` or ``"higher"``; default ``config.backend``.
            steps: Inner steps; default ``config.inner_steps``.

        Returns:
            A scalar, differentiable with respect to the model's parameters and :attr:`inner_lrs`.

        Raises:
            ValueError: On an unknown backend or support and query with different numbers of tasks.
        """
        backend = backend or self.config.backend
        steps = self.config.inner_steps if steps is None else int(steps)
        n_tasks = {int(v.shape[0]) for v in [*support.values(), *query.values()]}
        if len(n_tasks) != 1:
            raise ValueError(f"support and query disagree on the number of tasks (leading dims {sorted(n_tasks)})")
        return mean_query_loss(self, backend, support, query, loss_fn, dict(shared or {}), steps)

    def meta_parameters(self) -> Iterator[nn.Parameter]:
        """The meta-learned tensors: the model's trainable parameters and, under Meta-SGD, the inner rates."""
        yield from (p for p in self.model.parameters() if p.requires_grad)
        if self.inner_lrs is not None:
            yield from self.inner_lrs.parameters()

    # -- meta-training -------------------------------------------------------------------------------------------
    def meta_train(
        self,
        source: Objective,
        *,
        iterations: int | None = None,
        seed: int = 0,
        callback: Callable[[int, float], None] | None = None,
    ) -> list[float]:
        """Meta-train on the source tasks of ``source`` (items grouped by ``task_index``).

        Every iteration draws ``meta_batch_size`` tasks and, per task, disjoint support and query items
        (:class:`MetaBatchSampler`), then takes one Adam step on :meth:`meta_loss`.

        Args:
            source: Pooled feedback of the source tasks.
            iterations: Meta-iterations; default ``config.iterations``.
            seed: Seeds the draws.
            callback: ``callback(iteration, meta_loss)`` after every iteration.

        Returns:
            The meta-loss of every iteration.

        Raises:
            ValueError: If a task has fewer than ``support_size + query_size`` items.
            FloatingPointError: If the meta-loss becomes NaN or infinite.
        """
        cfg = self.config
        iterations = cfg.iterations if iterations is None else int(iterations)
        sampler = MetaBatchSampler(split_by_task(source), cfg.meta_batch_size, cfg.support_size, cfg.query_size, seed)
        optimizer = torch.optim.Adam(list(self.meta_parameters()), lr=cfg.outer_lr)
        history: list[float] = []
        with train_mode(self.model):
            for it in range(iterations):
                support, query = sampler.sample()
                loss = self.meta_loss(support, query, source.loss, source.shared)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"MAML meta-loss became {loss.item()} at iteration {it}: lower "
                        f"inner_lr={cfg.inner_lr} or outer_lr={cfg.outer_lr}"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append(float(loss.detach()))
                if callback is not None:
                    callback(it, history[-1])
        return history

    # -- adaptation ----------------------------------------------------------------------------------------------
    def adapt(
        self,
        target: Objective,
        steps: int | None = None,
        lr_scale: float = 1.0,
        *,
        optimizer: str = "sgd",
        params: str | Sequence[str] | None = None,
        checkpoints: Sequence[int] = (),
        on_checkpoint: Callable[[int, RewardModel], None] | None = None,
    ) -> RewardModel:
        """Adapt the meta-learned model to a new task: ``steps`` updates on all of ``target``'s items.

        Args:
            target: The new task's items (any loss kind).
            steps: Update steps; default ``config.inner_steps`` (what meta-training optimised for).
            lr_scale: Multiplies the (learned) inner rates (``optimizer="sgd"``; ``1.0`` is what meta-training
                optimised) or ``config.adam_lr`` (``optimizer="adam"``).
            optimizer: ``"sgd"``, the inner loop's plain gradient step with the meta-learned rates, or ``"adam"``.
            params: Parameters to adapt (see :func:`~.functional.select_parameters`); default the inner loop's. Only
                ``"adam"`` may adapt parameters the inner loop does not (there is no meta-learned rate for them).
            checkpoints: Step counts at which ``on_checkpoint(step, model)`` sees the model being adapted.
            on_checkpoint: See ``checkpoints``.

        Returns:
            A clone of the meta-learned :class:`RewardModel` with adapted weights; the meta-learner is unchanged.

        Raises:
            ValueError: On negative ``steps``, a non-positive ``lr_scale``, an unknown optimizer, parameters without
                a rate under ``"sgd"``, or an empty target.
        """
        hook = None if on_checkpoint is None else (lambda step, ms: on_checkpoint(step, ms[0]))
        return self.adapt_many(
            [target], steps, lr_scale, optimizer=optimizer, params=params, checkpoints=checkpoints, on_checkpoint=hook
        )[0]

    def adapt_many(
        self,
        targets: Sequence[Objective],
        steps: int | None = None,
        lr_scale: float | Sequence[float] = 1.0,
        *,
        optimizer: str = "sgd",
        params: str | Sequence[str] | None = None,
        checkpoints: Sequence[int] = (),
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None = None,
        on_divergence: str = "raise",
        start: Sequence[RewardModel] | None = None,
    ) -> list[RewardModel]:
        """:meth:`adapt` for several targets at once (batched, see :func:`~.adapt.finetune_many`); ``lr_scale`` may
        be one value per target; ``on_divergence`` as in :func:`~.adapt.finetune_many`; ``start`` replaces the
        meta-learned model as each run's start (e.g. a copy with another context)."""
        steps = self.config.inner_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps={steps!r} is not allowed: use an int >= 0")
        scales = [lr_scale] if isinstance(lr_scale, (int, float)) else list(lr_scale)
        for v in scales:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"lr_scale={v!r} is not allowed: use a finite float > 0")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is not allowed: use one of {OPTIMIZERS}")
        if not isinstance(self.model, RewardModel):
            raise TypeError(f"adaptation needs a RewardModel; the meta-learned model is a {type(self.model).__name__}")
        names = list(self.inner_names) if params is None else select_parameters(self.model, params)
        lr: float | list[float] = lr_scale if isinstance(lr_scale, (int, float)) else [float(v) for v in scales]
        models = [self.model] * len(targets) if start is None else list(start)
        common: dict[str, Any] = {
            "steps": int(steps), "params": tuple(names), "checkpoints": checkpoints, "on_checkpoint": on_checkpoint,
            "on_divergence": on_divergence,
        }
        if optimizer == "adam":
            lr = [self.config.adam_lr * float(v) for v in (scales if isinstance(lr, list) else [lr] * len(targets))]
            return finetune_many(models, targets, lr=lr, **common)
        missing = sorted(set(names) - set(self.inner_names))
        if missing:
            raise ValueError(
                f"params {missing} have no meta-learned rate (the inner loop adapts {self.inner_names}): adapt them "
                "with optimizer='adam'"
            )
        all_rates = self.rates()
        rates = {n: (r.detach() if isinstance(r, Tensor) else r) for n, r in all_rates.items() if n in names}
        # the inner loop's plain gradient step (the update meta-training optimised), here outside any graph
        return finetune_many(models, targets, lr=lr, rates=rates, **common)


#: Test-time optimisers of :meth:`MAML.adapt_many`.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


def log_uniform_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An int in ``[low, high]`` with ``P(s) = log((s + 1) / s) / log((high + 1) / low)`` (log-uniform)."""
    value = int(np.exp(rng.uniform(np.log(low), np.log(high + 1))))
    return min(max(value, low), high)


class MetaBatchSampler:
    """Draws meta-batches: ``n_tasks`` distinct tasks, each with disjoint support and query items.

    With a support range ``(low, high)``, every meta-batch draws one support size ``s`` log-uniformly from it
    (:func:`log_uniform_int`: as many draws in ``[1, 16]`` as in ``[16, 256]``), shared by the batch's tasks (their
    tensors stack), and capped at ``min_t n_t - query_size`` over the batch's tasks (a task has only ``n_t`` items;
    the query set keeps its size).

    Args:
        tasks: Per task id, its items (an Objective, e.g. from :func:`~.functional.split_by_task`).
        n_tasks: Tasks per meta-batch (drawn with replacement only when there are fewer tasks).
        support_size: Support items per task, or a range ``(low, high)``.
        query_size: Query items per task.
        seed: Seed of the draws.

    Raises:
        ValueError: If ``tasks`` is empty, the support range is malformed, or a task has fewer than
            ``low + query_size`` items (``low = support_size`` for a fixed size).
    """

    def __init__(
        self,
        tasks: Mapping[str, Objective],
        n_tasks: int,
        support_size: int | tuple[int, int],
        query_size: int,
        seed: int = 0,
    ) -> None:
        if not tasks:
            raise ValueError("tasks is empty: meta-training needs at least one source task")
        if isinstance(support_size, (int, np.integer)) and not isinstance(support_size, bool):
            self.support_range = (int(support_size), int(support_size))
        else:
            self.support_range = check_support_range(support_size)
        self.task_ids = sorted(tasks)
        self.tasks = [tasks[t] for t in self.task_ids]
        need = self.support_range[0] + query_size
        for tid, obj in zip(self.task_ids, self.tasks, strict=True):
            if len(obj) < need:
                what = "support_size" if self.support_range[0] == self.support_range[1] else "the smallest support size"
                raise ValueError(
                    f"task {tid!r} has {len(obj)} items: need {what} + query_size = {need} "
                    "(collect more items per source task or lower the sizes)"
                )
        self.n_tasks, self.query_size = int(n_tasks), int(query_size)
        self.rng = np.random.default_rng(seed)
        self.sizes: list[int] = []  # the support size of every meta-batch drawn (for inspection)

    @property
    def support_size(self) -> int:
        """The largest support size (the fixed one when there is no range)."""
        return self.support_range[1]

    def sample(self) -> tuple[Batch, Batch]:
        """``(support, query)`` items, tensors ``(n_tasks, s, ...)`` and ``(n_tasks, query_size, ...)``."""
        picked = self.rng.choice(len(self.tasks), size=self.n_tasks, replace=self.n_tasks > len(self.tasks))
        low, high = self.support_range
        size = low if low == high else log_uniform_int(self.rng, low, high)
        size = min(size, min(len(self.tasks[int(i)]) for i in picked) - self.query_size)
        self.sizes.append(size)
        supports, queries = [], []
        for i in picked:
            items = draw_items(self.tasks[int(i)], size + self.query_size, self.rng)
            supports.append(index_items(items, slice(0, size)))  # type: ignore[arg-type]
            queries.append(index_items(items, slice(size, None)))  # type: ignore[arg-type]
        return stack_items(supports), stack_items(queries)
