"""Multi-task pre-training: one shared network trained on every source task, each item with its own task's tensors.

The mean of per-task losses, ``(1/T) sum_t L_t(theta, phi_t)``, where ``phi_t`` are task ``t``'s own tensors (a task
embedding, a head, a goal descriptor) substituted into the shared model (:func:`~.functional.per_task_losses`).
Transfer pre-trains with it too (no per-task tensors: a pooled source model).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.functional import draw_items, per_task_losses, split_by_task, stack_items
from rewardshare.rewardmodels.training import train_mode

#: Learning-rate schedules of :func:`train_per_task`.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


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
    lr_schedule: str = "constant",
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
        lr_schedule: ``"constant"`` (``lr`` at every step) or ``"cosine"`` (``lr`` decayed along a half cosine to 0
            at the last step, :class:`torch.optim.lr_scheduler.CosineAnnealingLR`).

    Returns:
        The mean per-task loss of each step.

    Raises:
        ValueError: If a task of ``source`` has no row in ``task_order``, or on an unknown ``lr_schedule``.
    """
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={lr_schedule!r} is not allowed: use one of {LR_SCHEDULES}")
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
    # the constant schedule has no scheduler at all, so its steps are those of the code before schedules existed
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(steps)))
                 if lr_schedule == "cosine" else None)
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
            if scheduler is not None:
                scheduler.step()
            history.append(float(loss.detach()))
    return history
