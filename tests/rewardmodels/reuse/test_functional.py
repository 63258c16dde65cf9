"""Functional tools: per-task losses pair each task's items with that task's own tensors."""

from __future__ import annotations

import pytest
import torch
from reuse_data import constant_tasks
from rm_data import loss_of

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.functional import per_task_losses, select_parameters, split_by_task, stack_items


def test_per_task_losses_pair_each_task_with_its_own_row(spaces_):
    objective = constant_tasks({"a": 1.0, "b": -1.0, "c": 3.0})
    model = RewardModel(*spaces_, hidden_sizes=(8,), context_dim=2, seed=0)
    groups = split_by_task(objective)
    items = stack_items([groups[t].items for t in ("a", "b", "c")])
    rows = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-3.0, 1.0]])
    got = per_task_losses(model, objective.loss, items, overrides={"context": rows})
    for i, t in enumerate(("a", "b", "c")):
        m = model.clone()
        m.set_context(rows[i])
        assert float(got[i].detach()) == pytest.approx(loss_of(groups[t], m), rel=1e-5)
    swapped = per_task_losses(model, objective.loss, items, overrides={"context": rows.flip(0)})
    assert not torch.allclose(got, swapped)


def test_select_parameters_matches_names_and_prefixes(spaces_):
    model = RewardModel(*spaces_, hidden_sizes=(8, 8))
    assert select_parameters(model, ("trunk.2", "head")) == [
        "trunk.2.weight",
        "trunk.2.bias",
        "head.weight",
        "head.bias",
    ]
    assert select_parameters(model, "all") == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError, match="'neck' matches no parameter"):
        select_parameters(model, "neck")
