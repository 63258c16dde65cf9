"""The objective interface: a loss over a dataset held as tensors, evaluated on batches, callable on any reward model.

An :class:`Objective` holds a dataset as tensors (one row per *item*: a labelled transition, a preference pair or a
demonstration step) and computes a scalar loss on a batch of items::

    objective = make_loss("bradley_terry", preferences)
    batch = objective.sample(32, generator)          # or objective.batch(indices), objective.batches(...)
    loss = objective(model, batch)                   # a scalar Tensor, differentiable w.r.t. the model

``model`` is anything called like :meth:`RewardModel.forward` (``model(obs, action, next_obs, done, context=...)``),
so reuse methods (transfer, multi-task, MAML, MAP) train with every kind of feedback through one interface.

Items may carry a per-item ``context`` (``(n, context_dim)``, see :meth:`Objective.with_context`) which is passed to the
model; every batch carries ``task_index`` (``(n,)`` int64 into :attr:`Objective.task_ids`).

The kinds live one per module (:mod:`.labels`, :mod:`.preferences`, :mod:`.demonstrations`) and import only this
module; the factory (:func:`rewardshare.rewardmodels.objectives.make_loss`) imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

Batch = dict[str, torch.Tensor]
RewardFn = Callable[..., torch.Tensor]


def get_field(data: Any, name: str, default: Any = None, required: bool = True) -> Any:
    """Read field ``name`` from a dataset object or a mapping of arrays.

    Raises:
        ValueError: If the field is missing (or ``None``) and ``required``.
    """
    value = data.get(name, default) if isinstance(data, Mapping) else getattr(data, name, default)
    if value is None and required:
        raise ValueError(f"data has no field {name!r} (got {type(data).__name__}); a dataset with {name!r} is needed")
    return value


def as_tensor(x: Any) -> torch.Tensor:
    """An array as a tensor: floats as float32, integers and bools as int64 (what reward models read)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return torch.as_tensor(arr.astype(np.float32, copy=False))
    return torch.as_tensor(arr.astype(np.int64, copy=False) if arr.dtype.kind in "iub" else arr)


def check_finite(name: str, x: np.ndarray) -> None:
    """Refuse a float field holding NaN or inf.

    Raises:
        ValueError: Naming the field and the first bad item.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise ValueError(f"data field {name!r} holds NaN or inf (first at item {bad}): clean the data before training")


def task_indices(task_id: Any, n: int) -> tuple[torch.Tensor, list[str]]:
    """Per-item task indices ``(n,)`` int64 and the sorted task ids they index (``[""]`` when there is no task id)."""
    if task_id is None:
        return torch.zeros(n, dtype=torch.int64), [""]
    ids = np.asarray(task_id).astype(str)
    names, index = np.unique(ids, return_inverse=True)
    return torch.as_tensor(index.astype(np.int64)), [str(s) for s in names]


def call_reward(
    model: RewardFn,
    obs: torch.Tensor,
    action: torch.Tensor,
    next_obs: torch.Tensor | None,
    done: torch.Tensor | None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """Call ``model`` like :meth:`RewardModel.forward`, passing ``context`` only when there is one."""
    if context is None:
        return model(obs, action, next_obs, done)
    return model(obs, action, next_obs, done, context=context)


class Objective:
    """A loss over ``len(self)`` items, evaluated on batches (dicts of tensors whose first dim indexes items).

    Subclasses define :meth:`loss`. Item tensors live in ``self.items``; tensors shared by all items (e.g. a grid's
    per-cell observations) in ``self.shared`` and are passed along in every batch.

    Attributes:
        kind: The loss kind (one of :data:`~rewardshare.rewardmodels.objectives.LOSS_KINDS`).
        task_ids: Task id of each ``task_index`` value.
    """

    kind: str = ""

    def __init__(self, items: dict[str, torch.Tensor], task_ids: Sequence[str], shared: dict[str, Any] | None = None):
        sizes = {k: v.shape[0] for k, v in items.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"item fields have different lengths: {sizes}")
        self.items = items
        self.task_ids = list(task_ids)
        self.shared: dict[str, Any] = dict(shared or {})

    def __len__(self) -> int:
        return int(next(iter(self.items.values())).shape[0]) if self.items else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, n={len(self)}, tasks={len(self.task_ids)})"

    def _new(self, items: dict[str, torch.Tensor], shared: dict[str, Any] | None = None) -> Objective:
        obj = object.__new__(type(self))
        obj.__dict__.update(self.__dict__)
        obj.items = items
        obj.shared = dict(self.shared if shared is None else shared)
        return obj

    @property
    def device(self) -> torch.device:
        """Where the item tensors live."""
        return next(iter(self.items.values())).device

    def to(self, device: str | torch.device) -> Objective:
        """A copy with every tensor on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if self.items and self.device == device:
            return self

        def move(x: Any) -> Any:
            if torch.is_tensor(x):
                return x.to(device)
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            if isinstance(x, list):
                return [move(v) for v in x]
            return x

        return self._new(move(self.items), move(self.shared))

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> Objective:
        """The objective over the selected items (indices or a boolean mask)."""
        idx = torch.as_tensor(np.asarray(indices.cpu() if torch.is_tensor(indices) else indices))
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        idx = idx.to(torch.int64).to(self.device)
        return self._new({k: v[idx] for k, v in self.items.items()})

    def split(self, fraction: float, seed: int = 0) -> tuple[Objective, Objective | None]:
        """Split items into ``(train, validation)``; validation gets ``round(fraction * n)`` random items.

        Returns ``(self, None)`` when that leaves either side empty (too few items to validate).

        Raises:
            ValueError: If ``fraction`` is outside ``[0, 1)``.
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"val_fraction={fraction!r} is not allowed: use a float in [0, 1)")
        n = len(self)
        n_val = int(round(fraction * n))
        if n_val < 1 or n - n_val < 1:
            return self, None
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    def with_context(self, context: np.ndarray | torch.Tensor | Mapping[str, Any]) -> Objective:
        """A copy whose items carry a context vector, passed to the model as ``context=``.

        Args:
            context: ``(n, context_dim)`` per item, or ``{task_id: (context_dim,)}`` per task.
        """
        if isinstance(context, Mapping):
            missing = [t for t in self.task_ids if t not in context]
            if missing:
                raise ValueError(f"context has no entry for task(s) {missing}; it has {sorted(context)}")
            table = torch.as_tensor(np.stack([np.asarray(context[t], dtype=np.float32) for t in self.task_ids]))
            ctx = table.to(self.device)[self.items["task_index"]]
        else:
            ctx = torch.as_tensor(np.asarray(context, dtype=np.float32)).to(self.device)
            if ctx.dim() != 2 or ctx.shape[0] != len(self):
                raise ValueError(f"context has shape {tuple(ctx.shape)}: expected ({len(self)}, context_dim)")
        items = dict(self.items)
        items["context"] = ctx
        return self._new(items)

    # -- batches -------------------------------------------------------------------------------------------------
    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None) -> Batch:
        """The items at ``indices`` (all items if ``None``) plus the shared tensors."""
        if indices is None:
            out = dict(self.items)
        else:
            idx = torch.as_tensor(indices, device=self.device) if not torch.is_tensor(indices) else indices
            out = {k: v[idx] for k, v in self.items.items()}
        out.update(self.shared)
        return out

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch: every item once, in a random order drawn from ``generator``, in batches of ``batch_size``."""
        n = len(self)
        order = torch.randperm(n, generator=generator).to(self.device)
        for start in range(0, n, max(1, int(batch_size))):
            yield self.batch(order[start : start + batch_size])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``min(batch_size, n)`` distinct random items."""
        n = len(self)
        idx = torch.randperm(n, generator=generator)[: min(int(batch_size), n)]
        return self.batch(idx.to(self.device))

    # -- the loss ------------------------------------------------------------------------------------------------
    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """The mean loss of ``model`` over ``batch`` (a scalar tensor)."""
        raise NotImplementedError

    def __call__(self, model: RewardFn, batch: Batch | None = None) -> torch.Tensor:
        return self.loss(model, self.batch() if batch is None else batch)
