"""The two interchangeable ways to compute MAML's meta-objective: ``torch.func`` and ``higher``.

Both run, for every task ``i`` of a meta-batch of ``T`` tasks, ``K`` inner steps
``theta_i^{k+1} = theta_i^k - alpha (.) grad L(theta_i^k; S_i)`` on the support items and return the mean query
loss ``(1/T) sum_i L(theta_i^K; Q_i)``, differentiable with respect to the meta-parameters (tested to give the same
meta-gradient to 1e-6):

- ``"func"`` batches the tasks. For a :class:`~rewardshare.rewardmodels.model.RewardModel` (an MLP over fixed
  features) and an objective without shared tensors, the adapted weights are *stacked* along a task dimension,
  ``W: (T, out, in)``, and the objective is evaluated once over the merged items of all tasks (task-major), each
  item through its own task's weights with batched matrix products::

      h_t = act(X_t W_1t^T + b_1t) ...,        sum_i L_i(theta_i) = T * L_merged(theta_1..T)

  The identity on the right holds for objectives that are means over equally many items per task (labels,
  preferences, T-REX); it is checked numerically, once per objective class, against the per-task losses computed
  under :func:`torch.func.vmap` with distinct per-task weights, and an objective that fails the check (or any other
  module, or an objective with shared tensors such as MaxEnt IRL) goes through the generic path: the inner loop
  with :func:`torch.func.grad` / :func:`torch.func.functional_call`, vectorised over tasks with
  :func:`torch.func.vmap` (a loop for losses vmap cannot run, e.g. MaxEnt IRL's ``torch.unique``). The per-task
  gradients of the stacked path are one ``autograd.grad`` of the summed loss (tasks share no weight), so a
  meta-iteration is a few large batched operations instead of ``T x K`` small ones
  (``benchmarks/results/maml_backends.json`` measures both backends side by side).
- ``"higher"`` unrolls the same updates task by task on a ``higher.monkeypatch`` copy of the model. ``higher`` is
  unmaintained and patches torch internals, so it is imported lazily and stays behind :func:`mean_query_loss`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import grad

from rewardshare.rewardmodels.model import ACTIVATIONS, RewardModel
from rewardshare.rewardmodels.reuse.functional import (
    Batch,
    FunctionalModel,
    LossFn,
    index_items,
    loss_key,
    vmap_or_loop,
)

# ``maml`` below is a maml_learner.MAML (read through its attributes): importing it, even for annotations only,
# would close a cycle with maml_learner, which calls these backends.

BACKENDS: tuple[str, ...] = ("func", "higher")
DEFAULT_BACKEND = "func"

#: Per objective class: whether ``T * L(merged items) == sum_t L_t`` held (the stacked path's condition).
_ADDITIVE: dict[str, bool] = {}
#: Relative tolerance of that check (float32 sums over a few hundred items).
_ADDITIVE_RTOL = 1e-4


def mean_query_loss(
    maml: nn.Module, backend: str, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
) -> Tensor:
    """The mean over tasks of each task's query loss after ``steps`` inner steps on its support items.

    Args:
        maml: The meta-learner (its model, inner parameters, rates and ``first_order`` setting).
        backend: One of :data:`BACKENDS`.
        support: Support items stacked over tasks, ``(T, n_support, ...)``.
        query: Query items ``(T, n_query, ...)``.
        loss_fn: ``Objective.loss``.
        shared: Tensors every batch carries unchanged.
        steps: Inner steps.

    Returns:
        A scalar.

    Raises:
        ValueError: On an unknown backend.
    """
    if backend == "func":
        if not shared and StackedRewardModel.supports(maml.model):
            out = _stacked_mean_query_loss(maml, support, query, loss_fn, steps)
            if out is not None:
                return out
        return _func_query_losses(maml, support, query, loss_fn, shared, steps).mean()
    if backend == "higher":
        return _higher_query_losses(maml, support, query, loss_fn, shared, steps).mean()
    raise ValueError(f"backend={backend!r} is not allowed: use one of {BACKENDS}")


# -- func, stacked: the tasks' weights along a leading dimension, the items of all tasks merged --------------------
class StackedRewardModel:
    """A :class:`RewardModel` run with per-task weights on the merged items of ``T`` tasks.

    Called like :meth:`RewardModel.forward` with ``B = T * m`` rows in task-major order (rows ``t*m .. (t+1)*m - 1``
    belong to task ``t``); row ``j`` of task ``t`` gets ``head_t(trunk_t(features(x_j)))``. ``tensors`` holds the
    stacked per-task tensors by parameter name (weights ``(T, out, in)``, biases ``(T, 1, out)``, a context
    ``(T, d)``); the others are the module's own. A stacked ``"context"`` becomes each row's context (unless the call
    passes one). Every other attribute is read from the module, so an objective that reads ``model.use_next_obs``
    works unchanged.

    The features of an input do not depend on the weights (only on a context, which is appended last), so with a
    ``cache`` (a dict shared by the calls of one meta-iteration) they are computed once per input tensor, not once
    per inner step.

    Args:
        module: The reward model.
        tensors: Stacked per-task tensors by parameter name.
        n_tasks: ``T``.
        cache: Features by input, shared across calls (``None``: no caching).
    """

    def __init__(
        self,
        module: RewardModel,
        tensors: Mapping[str, Tensor],
        n_tasks: int,
        cache: dict[tuple[int, ...], tuple[tuple[Any, ...], Tensor]] | None = None,
    ) -> None:
        self._module = module
        self._tensors = dict(tensors)
        self._n_tasks = int(n_tasks)
        self._cache = cache

    @staticmethod
    def supports(module: nn.Module) -> bool:
        """Whether ``module`` is a plain :class:`RewardModel` MLP (linear layers and elementwise activations)."""
        if not isinstance(module, RewardModel):
            return False
        cls = type(module)
        if cls.forward is not RewardModel.forward or cls.embed is not RewardModel.embed:
            return False  # a subclass that computes its reward differently
        if cls.features is not RewardModel.features:
            return False
        elementwise = tuple(ACTIVATIONS.values())
        return all(isinstance(m, (nn.Linear, *elementwise)) for m in module.trunk)

    def _linear(self, h: Tensor, prefix: str, layer: nn.Linear) -> Tensor:
        w = self._tensors.get(f"{prefix}.weight", layer.weight)
        b = self._tensors.get(f"{prefix}.bias", layer.bias)
        if w.dim() == 3:
            return torch.baddbmm(b, h, w.transpose(1, 2))
        return torch.matmul(h, w.t()) + b

    def _features(
        self, obs: Tensor, action: Tensor, next_obs: Tensor | None, done: Tensor | None, context: Tensor | None,
        per_task: int,
    ) -> Tensor:
        m = self._module
        stacked_context = context is None and "context" in self._tensors
        # parameter-free features (no context, a fixed one, one passed in, or one replaced below) can be cached
        fixed = not m.context_dim or context is not None or stacked_context or not m.learn_context
        if not fixed or self._cache is None:
            x = m.features(obs, action, next_obs, done, context)
        else:
            inputs = (obs, action, next_obs, done, context)
            key = tuple(id(v) for v in inputs)
            hit = self._cache.get(key)
            if hit is None or any(a is not b for a, b in zip(hit[0], inputs, strict=True)):
                with torch.no_grad():
                    hit = (inputs, m.features(obs, action, next_obs, done, context))
                self._cache[key] = hit
            x = hit[1]
        if stacked_context:
            rows = self._tensors["context"].repeat_interleave(per_task, dim=0)
            x = torch.cat([x[:, : x.shape[1] - m.context_dim], rows.to(x.dtype)], dim=1)
        return x

    def __call__(
        self,
        obs: Tensor,
        action: Tensor,
        next_obs: Tensor | None = None,
        done: Tensor | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        m = self._module
        rows = int(obs.shape[0])
        if rows % self._n_tasks:
            raise ValueError(f"{rows} rows cannot be split into {self._n_tasks} tasks of equal size")
        per_task = rows // self._n_tasks
        x = self._features(obs, action, next_obs, done, context, per_task)
        h = x.reshape(self._n_tasks, per_task, x.shape[-1])
        for name, layer in m.trunk.named_children():
            h = self._linear(h, f"trunk.{name}", layer) if isinstance(layer, nn.Linear) else layer(h)
        return self._linear(h, "head", m.head).reshape(rows)

    forward = __call__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def stack_parameters(model: nn.Module, names: list[str], n_tasks: int) -> dict[str, Tensor]:
    """``model``'s parameters ``names`` broadcast over ``n_tasks`` tasks (views, no copy), in the layout
    :class:`StackedRewardModel` reads: ``(T, *shape)``, biases ``(T, 1, out)``."""
    params = dict(model.named_parameters())
    out = {}
    for n in names:
        p = params[n]
        shape = (1, *p.shape) if n.endswith(".bias") and p.dim() == 1 else tuple(p.shape)
        out[n] = p.reshape(shape).expand(n_tasks, *shape)
    return out


def _merge(items: Batch) -> Batch:
    """``(T, n, ...)`` item tensors as ``(T * n, ...)``, task-major."""
    return {k: v.reshape(v.shape[0] * v.shape[1], *v.shape[2:]) for k, v in items.items()}


def _stacked_mean_query_loss(
    maml: nn.Module, support: Batch, query: Batch, loss_fn: LossFn, steps: int
) -> Tensor | None:
    """The stacked path (see the module docstring); ``None`` when the objective is not a per-task mean."""
    model = maml.model
    assert isinstance(model, RewardModel)
    n_tasks = int(next(iter(support.values())).shape[0])
    fast = stack_parameters(model, list(maml.inner_names), n_tasks)
    rates = {n: r.reshape(fast[n].shape[1:]) if isinstance(r, Tensor) else r for n, r in maml.rates().items()}
    merged_support, merged_query = _merge(support), _merge(query)
    key = "MAML-stacked/" + loss_key(loss_fn)
    cache: dict[tuple[int, ...], tuple[tuple[Any, ...], Tensor]] = {}

    def total(weights: dict[str, Tensor], batch: Batch) -> Tensor:  # sum over tasks of their mean losses
        return n_tasks * loss_fn(StackedRewardModel(model, weights, n_tasks, cache), batch)

    if key not in _ADDITIVE:
        _ADDITIVE[key] = _is_additive(maml, fast, support, merged_support, loss_fn, total)
        if not _ADDITIVE[key]:
            warnings.warn(
                f"{key}: the objective is not a mean over items per task; computing each task's loss separately",
                RuntimeWarning,
                stacklevel=3,
            )
    if not _ADDITIVE[key]:
        return None
    first_order = maml.config.first_order
    for _ in range(steps):
        names = list(fast)
        grads = torch.autograd.grad(
            total(fast, merged_support), [fast[n] for n in names], create_graph=not first_order, allow_unused=True
        )
        fast = {n: fast[n] if g is None else fast[n] - rates[n] * g for n, g in zip(names, grads, strict=True)}
    return total(fast, merged_query) / n_tasks


def _is_additive(
    maml: nn.Module,
    fast: dict[str, Tensor],
    support: Batch,
    merged_support: Batch,
    loss_fn: LossFn,
    total: Any,
) -> bool:
    """Whether ``total`` equals the sum of per-task losses, with distinct per-task weights (so an objective that
    mixed items of different tasks would be caught)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        probe = {n: v + 0.01 * torch.randn(v.shape, generator=gen, dtype=v.dtype).to(v.device) for n, v in fast.items()}
        merged = total(probe, merged_support)
        model = maml.model
        params = dict(model.named_parameters())
        rest = {n: p for n, p in params.items() if n not in probe}
        rest.update(dict(model.named_buffers()))
        per_task = {n: v.reshape(v.shape[0], *params[n].shape) for n, v in probe.items()}

        def one(p: Batch, s: Batch) -> Tensor:
            return loss_fn(FunctionalModel(model, {**rest, **p}), s)

        separate = vmap_or_loop(one, [per_task, support], "MAML/" + loss_key(loss_fn)).sum()
    return bool(torch.isclose(merged, separate, rtol=_ADDITIVE_RTOL, atol=1e-6))


# -- func, generic: torch.func.grad inside torch.func.vmap over tasks --------------------------------------------------
def _func_query_losses(
    maml: nn.Module, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
) -> Tensor:
    model = maml.model
    fast = {n: p for n, p in model.named_parameters() if n in maml.inner_names}
    frozen = {n: p for n, p in model.named_parameters() if n not in fast}
    frozen.update(dict(model.named_buffers()))
    rates = maml.rates()
    first_order = maml.config.first_order

    def inner_loop(s: Batch) -> dict[str, Tensor]:
        def support_loss(f: dict[str, Tensor]) -> Tensor:
            return loss_fn(FunctionalModel(model, {**frozen, **f}), s)

        adapted = fast
        for _ in range(steps):
            g = grad(support_loss)(adapted)
            if first_order:
                g = {n: v.detach() for n, v in g.items()}
            adapted = {n: adapted[n] - rates[n] * g[n] for n in adapted}
        return adapted

    def one_task(s: Batch, q: Batch) -> Tensor:
        adapted = inner_loop({**s, **shared})
        return loss_fn(FunctionalModel(model, {**frozen, **adapted}), {**q, **shared})

    return vmap_or_loop(one_task, [support, query], "MAML/" + loss_key(loss_fn))


# -- higher --------------------------------------------------------------------------------------------------------
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


def _higher_query_losses(
    maml: nn.Module, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
) -> Tensor:
    import higher  # lazily: unmaintained, patches torch internals

    model = maml.model
    first_order = maml.config.first_order
    names = [n for n, _ in model.named_parameters()]
    base = dict(model.named_parameters())
    rates = maml.rates()
    adapted_idx = [j for j, n in enumerate(names) if n in maml.inner_names]
    fmodule = higher.monkeypatch(model, copy_initial_weights=False, track_higher_grads=True)
    losses = []
    for t in range(int(next(iter(support.values())).shape[0])):
        s = {**index_items(support, t), **shared}
        q = {**index_items(query, t), **shared}
        params = [base[n] for n in names]
        for _ in range(steps):
            loss = loss_fn(_HigherModel(fmodule, model, params), s)
            grads = torch.autograd.grad(
                loss, [params[j] for j in adapted_idx], create_graph=not first_order, allow_unused=True
            )
            params = list(params)
            for j, g in zip(adapted_idx, grads, strict=True):
                if g is not None:
                    params[j] = params[j] - rates[names[j]] * (g.detach() if first_order else g)
        losses.append(loss_fn(_HigherModel(fmodule, model, params), q))
    return torch.stack(losses)
