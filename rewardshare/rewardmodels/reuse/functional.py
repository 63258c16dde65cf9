"""Functional tools of the reuse methods: models run with substituted weights, items stacked and drawn per task.

Reuse methods train one shared network on many tasks at once, each task with its own tensors (an embedding, a head,
a goal descriptor, adapted weights). These helpers run a module with such per-task tensors
(:class:`FunctionalModel`, :func:`per_task_losses`), vectorised over tasks with :func:`torch.func.vmap` where the loss
allows (:func:`vmap_or_loop`), and group, stack and draw the items of an :class:`~rewardshare.rewardmodels.objectives.
Objective` by task.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from rewardshare.rewardmodels.objectives import Objective

Batch = dict[str, Tensor]
LossFn = Callable[[Any, Batch], Tensor]

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


def loss_key(loss_fn: LossFn) -> str:
    """A short name of ``loss_fn`` (its objective's class) that keys :func:`vmap_or_loop`'s memory."""
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

    return vmap_or_loop(one, [dict(items), overrides], loss_key(loss_fn))

