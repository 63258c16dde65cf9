"""MAML and Meta-SGD for reward models, with two interchangeable backends (``torch.func`` and ``higher``).

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
alone gives CAVIA, Zintgraf et al. 2019).

Backends compute the same meta-gradient (tested to 1e-6): ``"func"`` runs the inner loop with
:func:`torch.func.grad` / :func:`torch.func.functional_call` and vectorises the meta-batch with
:func:`torch.func.vmap`; ``"higher"`` unrolls the same updates task by task on a ``higher.monkeypatch`` copy of the
model. ``func`` is the faster one per meta-iteration on one CPU thread (``benchmarks/results/fewshot_reward.json``,
``maml_backend_timing``), hence :data:`DEFAULT_BACKEND`. ``higher`` is unmaintained and patches torch internals, so
it stays behind this one small interface. (MaxEnt IRL's loss groups items by task with ``torch.unique``, which vmap
cannot run; the ``func`` backend then loops over the meta-batch.)

The loss is an :class:`~.losses.Objective` (reward labels, preferences, T-REX, MaxEnt IRL): items stacked over tasks
``(T, n, ...)``, the objective's ``shared`` tensors passed along unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.func import grad

from rewardshare.rewardmodels.losses import Objective
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.reuse import (
    AdaptationBudget,
    Batch,
    FunctionalModel,
    LossFn,
    ReuseMethod,
    _jsonable,
    _loss_key,
    draw_items,
    finetune_many,
    index_items,
    select_parameters,
    split_by_task,
    stack_items,
    vmap_or_loop,
)
from rewardshare.rewardmodels.training import train_mode

BACKENDS: tuple[str, ...] = ("func", "higher")
DEFAULT_BACKEND = "func"


class _HigherModel:
    """A ``higher`` monkey-patched module bound to one list of fast weights; other attributes from the module."""

    def __init__(self, fmodule: Any, module: nn.Module, params: list[Tensor]) -> None:
        self._fmodule = fmodule
        self._module = module
        self._params = params

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self._fmodule(*args, params=self._params, **kwargs)

    forward = __call__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@dataclass
class MAMLConfig:
    """Settings of MAML / Meta-SGD.

    Attributes:
        inner_steps: Gradient steps ``K`` on the support set (meta-training, and :meth:`MAML.adapt`'s default).
        inner_lr: Inner learning rate ``alpha`` (the initial value of every per-parameter rate under Meta-SGD).
        first_order: Drop second-order terms (FOMAML).
        meta_sgd: Learn one inner learning rate per parameter entry (Meta-SGD).
        meta_batch_size: Tasks per meta-iteration.
        support_size: Items per task in the support set (the few-shot ``k`` you expect to adapt with).
        query_size: Items per task in the query set, disjoint from the support set.
        outer_lr: Adam learning rate of the meta-parameters.
        iterations: Meta-iterations of :meth:`MAML.meta_train`.
        inner_params: Parameter names or prefixes (``"head"``, ``"context"``) the inner loop adapts; ``None``: all.
        backend: ``"func"`` or ``"higher"``.
    """

    inner_steps: int = 5
    inner_lr: float = 0.1
    first_order: bool = False
    meta_sgd: bool = False
    meta_batch_size: int = 8
    support_size: int = 16
    query_size: int = 32
    outer_lr: float = 1e-3
    iterations: int = 500
    inner_params: tuple[str, ...] | None = None
    backend: str = DEFAULT_BACKEND

    def __post_init__(self) -> None:
        if self.inner_params is not None:
            self.inner_params = (self.inner_params,) if isinstance(self.inner_params, str) else tuple(self.inner_params)
        for name, low in (
            ("inner_steps", 0),
            ("iterations", 0),
            ("meta_batch_size", 1),
            ("support_size", 1),
            ("query_size", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
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
        return out


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

    def _split_state(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        fast = {n: p for n, p in self.model.named_parameters() if n in self.inner_names}
        frozen = {n: p for n, p in self.model.named_parameters() if n not in fast}
        frozen.update(dict(self.model.named_buffers()))
        return fast, frozen

    def _inner_loop(
        self,
        fast: dict[str, Tensor],
        frozen: dict[str, Tensor],
        rates: Mapping[str, Tensor | float],
        loss_fn: LossFn,
        support: Batch,
        steps: int,
        first_order: bool,
    ) -> dict[str, Tensor]:
        def support_loss(f: dict[str, Tensor]) -> Tensor:
            return loss_fn(FunctionalModel(self.model, {**frozen, **f}), support)

        for _ in range(steps):
            g = grad(support_loss)(fast)
            if first_order:
                g = {n: v.detach() for n, v in g.items()}
            fast = {n: fast[n] - rates[n] * g[n] for n in fast}
        return fast

    def _query_losses_func(
        self, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
    ) -> Tensor:
        fast, frozen = self._split_state()
        rates = self.rates()
        first_order = self.config.first_order

        def one_task(s: Batch, q: Batch) -> Tensor:
            adapted = self._inner_loop(fast, frozen, rates, loss_fn, {**s, **shared}, steps, first_order)
            return loss_fn(FunctionalModel(self.model, {**frozen, **adapted}), {**q, **shared})

        return vmap_or_loop(one_task, [support, query], "MAML/" + _loss_key(loss_fn))

    def _query_losses_higher(
        self, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
    ) -> Tensor:
        import higher  # lazily: unmaintained, patches torch internals

        names = [n for n, _ in self.model.named_parameters()]
        base = dict(self.model.named_parameters())
        rates = self.rates()
        adapted_idx = [j for j, n in enumerate(names) if n in self.inner_names]
        fmodule = higher.monkeypatch(self.model, copy_initial_weights=False, track_higher_grads=True)
        losses = []
        for t in range(int(next(iter(support.values())).shape[0])):
            s = {**index_items(support, t), **shared}
            q = {**index_items(query, t), **shared}
            params = [base[n] for n in names]
            for _ in range(steps):
                loss = loss_fn(_HigherModel(fmodule, self.model, params), s)
                grads = torch.autograd.grad(
                    loss, [params[j] for j in adapted_idx], create_graph=not self.config.first_order
                )
                params = list(params)
                for j, g in zip(adapted_idx, grads, strict=True):
                    params[j] = params[j] - rates[names[j]] * (g.detach() if self.config.first_order else g)
            losses.append(loss_fn(_HigherModel(fmodule, self.model, params), q))
        return torch.stack(losses)

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
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not allowed: use one of {BACKENDS}")
        steps = self.config.inner_steps if steps is None else int(steps)
        n_tasks = {int(v.shape[0]) for v in [*support.values(), *query.values()]}
        if len(n_tasks) != 1:
            raise ValueError(f"support and query disagree on the number of tasks (leading dims {sorted(n_tasks)})")
        run = self._query_losses_func if backend == "func" else self._query_losses_higher
        return run(support, query, loss_fn, dict(shared or {}), steps).mean()

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
        checkpoints: Sequence[int] = (),
        on_checkpoint: Callable[[int, RewardModel], None] | None = None,
    ) -> RewardModel:
        """Adapt the meta-learned model to a new task: ``steps`` inner-loop updates on all of ``target``'s items.

        Args:
            target: The new task's items (any loss kind).
            steps: Inner steps; default ``config.inner_steps`` (what meta-training optimised for).
            lr_scale: Multiplies the (learned) inner rates; ``1.0`` is what meta-training optimised.
            checkpoints: Step counts at which ``on_checkpoint(step, model)`` sees the model being adapted.
            on_checkpoint: See ``checkpoints``.

        Returns:
            A clone of the meta-learned :class:`RewardModel` with adapted weights; the meta-learner is unchanged.

        Raises:
            ValueError: On negative ``steps``, a non-positive ``lr_scale`` or an empty target.
        """
        hook = None if on_checkpoint is None else (lambda step, ms: on_checkpoint(step, ms[0]))
        return self.adapt_many([target], steps, lr_scale, checkpoints=checkpoints, on_checkpoint=hook)[0]

    def adapt_many(
        self,
        targets: Sequence[Objective],
        steps: int | None = None,
        lr_scale: float | Sequence[float] = 1.0,
        *,
        checkpoints: Sequence[int] = (),
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None = None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        """:meth:`adapt` for several targets at once (batched, see :func:`~.reuse.finetune_many`); ``lr_scale`` may
        be one value per target; ``on_divergence`` as in :func:`~.reuse.finetune_many`."""
        steps = self.config.inner_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps={steps!r} is not allowed: use an int >= 0")
        scales = [lr_scale] if isinstance(lr_scale, (int, float)) else list(lr_scale)
        for v in scales:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"lr_scale={v!r} is not allowed: use a finite float > 0")
        if not isinstance(self.model, RewardModel):
            raise TypeError(f"adaptation needs a RewardModel; the meta-learned model is a {type(self.model).__name__}")
        rates = {n: (r.detach() if isinstance(r, Tensor) else r) for n, r in self.rates().items()}
        # the inner loop's plain gradient step (the update meta-training optimised), here outside any graph
        return finetune_many(
            [self.model] * len(targets),
            targets,
            steps=int(steps),
            lr=lr_scale if isinstance(lr_scale, (int, float)) else [float(v) for v in scales],
            params=tuple(self.inner_names),
            rates=rates,
            checkpoints=checkpoints,
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
        )


class MetaBatchSampler:
    """Draws meta-batches: ``n_tasks`` distinct tasks, each with disjoint support and query items.

    Args:
        tasks: Per task id, its items (an Objective, e.g. from :func:`~.reuse.split_by_task`).
        n_tasks: Tasks per meta-batch (drawn with replacement only when there are fewer tasks).
        support_size: Support items per task.
        query_size: Query items per task.
        seed: Seed of the draws.

    Raises:
        ValueError: If ``tasks`` is empty or a task has fewer than ``support_size + query_size`` items.
    """

    def __init__(
        self, tasks: Mapping[str, Objective], n_tasks: int, support_size: int, query_size: int, seed: int = 0
    ) -> None:
        if not tasks:
            raise ValueError("tasks is empty: meta-training needs at least one source task")
        self.task_ids = sorted(tasks)
        self.tasks = [tasks[t] for t in self.task_ids]
        need = support_size + query_size
        for tid, obj in zip(self.task_ids, self.tasks, strict=True):
            if len(obj) < need:
                raise ValueError(
                    f"task {tid!r} has {len(obj)} items: need support_size + query_size = {need} "
                    "(collect more items per source task or lower the sizes)"
                )
        self.n_tasks, self.support_size, self.query_size = int(n_tasks), int(support_size), int(query_size)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[Batch, Batch]:
        """``(support, query)`` items, tensors ``(n_tasks, support_size, ...)`` and ``(n_tasks, query_size, ...)``."""
        picked = self.rng.choice(len(self.tasks), size=self.n_tasks, replace=self.n_tasks > len(self.tasks))
        supports, queries = [], []
        for i in picked:
            items = draw_items(self.tasks[int(i)], self.support_size + self.query_size, self.rng)
            supports.append(index_items(items, slice(0, self.support_size)))  # type: ignore[arg-type]
            queries.append(index_items(items, slice(self.support_size, None)))  # type: ignore[arg-type]
        return stack_items(supports), stack_items(queries)


class MAMLMethod(ReuseMethod):
    """MAML / Meta-SGD as a reuse method: meta-train on the source tasks, adapt with the learned inner loop.

    An :class:`AdaptationBudget` reads here as: ``steps`` inner steps, ``lr`` a multiplier of the meta-learned inner
    rates (``1.0`` = as meta-trained); ``params`` is fixed by ``config.inner_params``.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        config: MAML settings.
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.
    """

    name = "maml"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: MAMLConfig | None = None,
        *,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.maml_config = config or MAMLConfig()
        self.seed = int(seed)
        self.model_kwargs = model_kwargs
        self.maml: MAML | None = None
        self.history: list[float] = []
        if self.maml_config.meta_sgd:
            self.name = "meta_sgd"

    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None) -> MAMLMethod:
        """Meta-train on the source tasks."""
        seed = self.seed if seed is None else int(seed)
        model = RewardModel(self.observation_space, self.action_space, seed=seed, **self.model_kwargs)
        self.maml = MAML(model, self.maml_config)
        self.history = self.maml.meta_train(source, seed=seed)
        return self

    def start_model(self, task: Any = None) -> RewardModel:
        self._require_pretrained(self.maml is not None)
        assert self.maml is not None
        return self.maml.model.clone()  # type: ignore[operator]

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        # budget.steps inner steps at budget.lr times the meta-learned rates (see the class docstring)
        self._require_pretrained(self.maml is not None)
        assert self.maml is not None
        return self.maml.adapt_many(
            targets,
            budgets[0].steps,
            [b.lr for b in budgets],
            checkpoints=list(checkpoints),
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
        )

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        inner = self.maml_config.inner_params
        return ["all" if inner is None else tuple(inner)]

    def candidate_lrs(self) -> list[float]:
        # multipliers of the meta-learned rates: 1.0 is what meta-training optimised; smaller ones let many more
        # steps than K run without diverging
        return [0.1, 0.3, 1.0]

    def candidate_steps(self) -> list[int]:
        k = max(1, self.maml_config.inner_steps)
        return [0, k, 2 * k, 5 * k, 20 * k, 60 * k]

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "maml": self.maml_config.to_dict(),
            "seed": self.seed,
            "model": {k: _jsonable(v) for k, v in self.model_kwargs.items()},
        }
