"""The two interchangeable ways to compute MAML's per-task query losses: ``torch.func`` and ``higher``.

Both run, for every task ``i`` of a meta-batch, ``K`` inner steps
``theta_i^{k+1} = theta_i^k - alpha (.) grad L(theta_i^k; S_i)`` on the support items and return the query loss
``L(theta_i^K; Q_i)``, differentiable with respect to the meta-parameters (tested to give the same meta-gradient to
1e-6):

- ``"func"`` runs the inner loop with :func:`torch.func.grad` / :func:`torch.func.functional_call` and vectorises the
  meta-batch with :func:`torch.func.vmap` (a loop for losses vmap cannot run, e.g. MaxEnt IRL's ``torch.unique``);
- ``"higher"`` unrolls the same updates task by task on a ``higher.monkeypatch`` copy of the model. ``higher`` is
  unmaintained and patches torch internals, so it is imported lazily and stays behind :func:`query_losses`.

``func`` is the faster one per meta-iteration on one CPU thread (``benchmarks/results/fewshot_reward.json``,
``maml_backend_timing``), hence :data:`DEFAULT_BACKEND`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.func import grad

from rewardshare.rewardmodels.reuse.functional import (
    Batch,
    FunctionalModel,
    LossFn,
    index_items,
    loss_key,
    vmap_or_loop,
)

if TYPE_CHECKING:
    from rewardshare.rewardmodels.reuse.maml_learner import MAML

BACKENDS: tuple[str, ...] = ("func", "higher")
DEFAULT_BACKEND = "func"


def query_losses(
    maml: MAML, backend: str, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
) -> Tensor:
    """Each task's query loss after ``steps`` inner steps on its support items.

    Args:
        maml: The meta-learner (its model, inner parameters, rates and ``first_order`` setting).
        backend: One of :data:`BACKENDS`.
        support: Support items stacked over tasks, ``(T, n_support, ...)``.
        query: Query items ``(T, n_query, ...)``.
        loss_fn: ``Objective.loss``.
        shared: Tensors every batch carries unchanged.
        steps: Inner steps.

    Returns:
        ``(T,)`` query losses.

    Raises:
        ValueError: On an unknown backend.
    """
    if backend == "func":
        return _func_query_losses(maml, support, query, loss_fn, shared, steps)
    if backend == "higher":
        return _higher_query_losses(maml, support, query, loss_fn, shared, steps)
    raise ValueError(f"backend={backend!r} is not allowed: use one of {BACKENDS}")


def _func_query_losses(
    maml: MAML, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
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
    maml: MAML, support: Batch, query: Batch, loss_fn: LossFn, shared: Mapping[str, Any], steps: int
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
            grads = torch.autograd.grad(loss, [params[j] for j in adapted_idx], create_graph=not first_order)
            params = list(params)
            for j, g in zip(adapted_idx, grads, strict=True):
                params[j] = params[j] - rates[names[j]] * (g.detach() if first_order else g)
        losses.append(loss_fn(_HigherModel(fmodule, model, params), q))
    return torch.stack(losses)
