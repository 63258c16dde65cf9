"""``fit``: train a reward model on feedback with one of the losses of :mod:`rewardshare.rewardmodels.objectives`."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardshare.rewardmodels.objectives import Objective, make_loss


@contextmanager
def train_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in training mode for the block, then back in the mode it had (also when the block raises).

    Yields:
        ``model``.
    """
    was_training = model.training
    model.train()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        loss: The loss kind trained.
        train_loss: Mean training loss of each epoch (over its batches, before each step).
        val_loss: Validation loss after each epoch (empty without validation).
        best_epoch: 0-based epoch with the lowest validation loss (the last epoch without validation); with
            ``restore_best`` the model ends with that epoch's weights.
        epochs: Epochs run (the last may be partial when ``steps`` ran out).
        steps: Gradient steps taken.
        stopped_early: Whether early stopping (or the callback) ended training.
        n_train: Training items.
        n_val: Validation items (0: no validation).
        seconds: Wall-clock time.
        seed: The seed of the batch order and validation split.
    """

    loss: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs: int = 0
    steps: int = 0
    stopped_early: bool = False
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0
    seed: int = 0

    @property
    def best_val_loss(self) -> float | None:
        """The lowest validation loss (``None`` without validation)."""
        return min(self.val_loss) if self.val_loss else None

    @property
    def final_train_loss(self) -> float | None:
        """The last epoch's mean training loss."""
        return self.train_loss[-1] if self.train_loss else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (for provenance and result files)."""
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """A compact dict without the per-epoch histories (stored in a model's metadata)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("train_loss", "val_loss")}
        out["final_train_loss"] = self.final_train_loss
        out["best_val_loss"] = self.best_val_loss
        return out


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: use an int >= 1" + (" or None" if allow_none else ""))


def fit(
    model: nn.Module,
    data: Any,
    *,
    loss: str = "auto",
    epochs: int = 100,
    steps: int | None = None,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    val_fraction: float = 0.0,
    patience: int | None = None,
    seed: int = 0,
    progress: bool = False,
    params: Iterable[nn.Parameter] | None = None,
    restore_best: bool = True,
    max_grad_norm: float | None = None,
    env: Any = None,
    loss_kwargs: dict[str, Any] | None = None,
    callback: Callable[[int, float, float | None], bool | None] | None = None,
) -> FitResult:
    """Train ``model`` in place on feedback with AdamW.

    Args:
        model: A :class:`RewardModel` (or any module called like its ``forward``).
        data: ``Transitions`` / ``Preferences`` / ``Demonstrations`` or an :class:`~losses.Objective`.
        loss: ``"auto"`` (labels -> ``"mse"``, preferences -> ``"bradley_terry"``, demonstrations -> ``"maxent_irl"``
            with a grid env else ``"trex"``), ``"mse"``, ``"bradley_terry"``, ``"trex"`` or ``"maxent_irl"``.
        epochs: Passes over the training items (ignored when ``steps`` is given).
        steps: Total gradient steps instead of epochs (epochs repeat as needed; the last may be partial).
        lr: Learning rate.
        batch_size: Items per step (``maxent_irl`` items are demonstration steps; the soft value iteration runs
            once per task in the batch).
        weight_decay: AdamW's decoupled weight decay.
        val_fraction: Fraction of items held out for validation (``0``: none). Too few items to fill both sides
            means no validation.
        patience: Stop after this many epochs without a lower validation loss (needs validation; ``None``: never).
        seed: Seeds the validation split, the batch order and T-REX pair sampling: same seed, same model in ->
            identical weights out.
        progress: Show a tqdm progress bar over epochs.
        params: The parameters to train (default all, e.g. ``model.parameter_group("head")``); others stay fixed.
        restore_best: With validation, end with the weights of the best validation epoch.
        max_grad_norm: Clip the gradient norm to this value (``None``: no clipping).
        env: Grid env for ``maxent_irl`` (its observation mode must be the model's).
        loss_kwargs: Extra options of the loss (see :func:`~losses.make_loss`).
        callback: Called after each epoch as ``callback(epoch, train_loss, val_loss)``; returning ``True`` stops.

    Returns:
        A :class:`FitResult`; also stored (without histories) as ``model.metadata["fit"]`` when the model has metadata.

    Raises:
        ValueError: On empty data, a bad argument (named in the message) or data of the wrong kind.
        FloatingPointError: If the loss becomes NaN or infinite (the message gives epoch, step and advice).
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("steps", steps, allow_none=True)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("patience", patience, allow_none=True)
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} is not allowed: use a positive float")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay={weight_decay!r} is not allowed: use a float >= 0")
    kwargs = dict(loss_kwargs or {})
    if not isinstance(data, Objective) and _wants_seed(loss, data, env):
        kwargs.setdefault("seed", seed)  # T-REX draws its pairs at random
    objective = make_loss(loss, data, env=env, **kwargs)
    if len(objective) == 0:
        raise ValueError("data is empty: there is nothing to fit")
    device = model_device(model)
    objective = objective.to(device)
    train_obj, val_obj = objective.split(val_fraction, seed=seed)
    if patience is not None and val_obj is None:
        raise ValueError(
            f"patience={patience} needs validation data: set val_fraction > 0 (with {len(objective)} items, "
            f"val_fraction={val_fraction} leaves no validation item)"
        )
    param_list = list(model.parameters()) if params is None else list(params)
    if not param_list:
        raise ValueError("params is empty: give at least one parameter to train")
    optimizer = torch.optim.AdamW(param_list, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(int(seed))
    n_val = 0 if val_obj is None else len(val_obj)
    result = FitResult(loss=objective.kind, n_train=len(train_obj), n_val=n_val, seed=seed)
    max_epochs = epochs if steps is None else math.ceil(steps / math.ceil(len(train_obj) / batch_size))
    best_state: dict[str, torch.Tensor] | None = None
    best_val = math.inf
    bad_epochs = 0
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc=f"fit {objective.kind}", unit="epoch")
    with train_mode(model):
        try:
            for epoch in range(max_epochs):
                losses = []
                for batch in train_obj.batches(batch_size, generator):
                    value = train_obj.loss(model, batch)
                    if not torch.isfinite(value):
                        raise FloatingPointError(
                            f"the {objective.kind!r} loss became {value.item()} at epoch {epoch}, step {result.steps} "
                            f"(lr={lr}): lower lr, set max_grad_norm, or check the data for extreme values"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    value.backward()
                    if max_grad_norm is not None:
                        nn.utils.clip_grad_norm_(param_list, max_grad_norm)
                    optimizer.step()
                    losses.append(float(value.detach()))
                    result.steps += 1
                    if steps is not None and result.steps >= steps:
                        break
                result.epochs = epoch + 1
                result.train_loss.append(float(np.mean(losses)))
                val = None
                if val_obj is not None:
                    with torch.no_grad():
                        val = float(val_obj.loss(model, val_obj.batch()))
                    result.val_loss.append(val)
                    if val < best_val:
                        best_val, bad_epochs, result.best_epoch = val, 0, epoch
                        if restore_best:
                            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        bad_epochs += 1
                else:
                    result.best_epoch = epoch
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(train=f"{result.train_loss[-1]:.4g}", val="-" if val is None else f"{val:.4g}")
                if callback is not None and callback(epoch, result.train_loss[-1], val):
                    result.stopped_early = True
                    break
                if patience is not None and bad_epochs >= patience:
                    result.stopped_early = True
                    break
                if steps is not None and result.steps >= steps:
                    break
        finally:
            if bar is not None:
                bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    meta = getattr(model, "metadata", None)
    if isinstance(meta, dict):
        meta["fit"] = result.summary()
    return result


def _wants_seed(loss: str, data: Any, env: Any) -> bool:
    if loss != "auto":
        return loss == "trex"
    from rewardshare.rewardmodels.objectives import infer_kind

    try:
        return infer_kind(data, env) == "trex"
    except ValueError:
        return False


def model_device(module: nn.Module) -> torch.device:
    """Where a model computes: its ``device`` attribute if it has one, else that of its first parameter or buffer,
    else the CPU."""
    dev = getattr(module, "device", None)
    if isinstance(dev, torch.device):
        return dev
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")
