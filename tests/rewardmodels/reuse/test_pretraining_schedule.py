"""train_per_task's learning-rate schedule: the default (constant) is the plain AdamW loop it always was, step for
step; the cosine schedule decays the learning rate to 0 at the last step; an unknown schedule is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.functional import draw_items, per_task_losses, split_by_task, stack_items
from rewardshare.rewardmodels.reuse.pretraining import train_per_task


def _setup(spaces_, labels):
    ids = sorted(split_by_task(labels))
    model = RewardModel(*spaces_, hidden_sizes=(16,), context_dim=3, seed=0)
    emb = nn.Parameter(0.1 * torch.randn(len(ids), 3, generator=torch.Generator().manual_seed(0)))
    return ids, model, emb


def _reference_loop(model, source, ids, emb, steps, lr, items_per_task, seed):
    """The loop train_per_task ran before schedules existed (all tasks every step, AdamW, constant lr)."""
    groups = split_by_task(source)
    params = [p for p in model.parameters() if p.requires_grad] + [emb]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    history = []
    model.train()
    for _ in range(steps):
        pick = np.sort(rng.choice(len(ids), size=len(ids), replace=False))
        items = stack_items([draw_items(groups[ids[i]], items_per_task, rng) for i in pick])
        loss = per_task_losses(model, source.loss, items, source.shared, {"context": emb[torch.as_tensor(pick)]})
        loss = loss.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    model.eval()
    return history


def test_default_schedule_is_the_plain_constant_loop(spaces_, labels) -> None:
    ids, model, emb = _setup(spaces_, labels)
    history = train_per_task(model, labels, ids, overrides={"context": emb}, extra_params=[emb], steps=30, lr=3e-3,
                             items_per_task=8, seed=5)
    ids2, ref_model, ref_emb = _setup(spaces_, labels)
    ref = _reference_loop(ref_model, labels, ids2, ref_emb, 30, 3e-3, 8, 5)
    assert history == ref
    assert torch.equal(emb, ref_emb)
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(p, q)
    ids3, const_model, const_emb = _setup(spaces_, labels)
    explicit = train_per_task(const_model, labels, ids3, overrides={"context": const_emb}, extra_params=[const_emb],
                              steps=30, lr=3e-3, items_per_task=8, seed=5, lr_schedule="constant")
    assert explicit == history


def test_cosine_schedule_decays_to_zero(spaces_, labels, monkeypatch) -> None:
    ids, model, emb = _setup(spaces_, labels)
    seen: list[float] = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    history = train_per_task(model, labels, ids, overrides={"context": emb}, extra_params=[emb], steps=20, lr=1e-2,
                             items_per_task=8, seed=5, lr_schedule="cosine")
    assert len(history) == 20 and all(np.isfinite(history))
    expected = [1e-2 * (1 + np.cos(np.pi * t / 20)) / 2 for t in range(20)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6, atol=1e-12)
    assert seen[0] == 1e-2 and seen[-1] < 1e-4


def test_unknown_schedule_is_refused(spaces_, labels) -> None:
    ids, model, emb = _setup(spaces_, labels)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_per_task(model, labels, ids, overrides={"context": emb}, extra_params=[emb], steps=1,
                       lr_schedule="linear")
