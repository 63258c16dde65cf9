"""Task embedding and shared trunk + heads: each item trains with its own task's tensors; a new task gets a new
embedding that becomes a fixed context."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reuse_data import constant_tasks
from rm_data import FAMILY

from rewardshare.feedback import collect_preferences
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget
from rewardshare.rewardmodels.reuse.multitask import SharedTrunkHeads, TaskEmbedding


@pytest.mark.parametrize("cls", [TaskEmbedding, SharedTrunkHeads])
def test_multitask_trains_each_item_with_its_own_task(spaces_, cls):
    # a random task index per batch (the seed code's bug) would leave every task's model near the mean, 0
    objective = constant_tasks({"plus": 1.0, "minus": -1.0})
    method = cls(*spaces_, hidden_sizes=(16,), steps=300, lr=1e-2, items_per_task=16).pretrain(objective)
    batch = objective.batch()
    plus = method.task_model("plus")(batch["obs"], batch["action"]).detach()
    minus = method.task_model("minus")(batch["obs"], batch["action"]).detach()
    assert torch.allclose(plus, torch.ones_like(plus), atol=0.1)
    assert torch.allclose(minus, -torch.ones_like(minus), atol=0.1)
    with pytest.raises(ValueError, match="'zero' is not a source task"):
        method.task_model("zero")


def test_a_new_task_gets_a_new_embedding_and_a_frozen_context_after_adaptation(pretrained, pools):
    method = pretrained["task_embedding"]
    task, pool = pools[0]
    start = method.start_model(task)
    assert start.learn_context
    torch.testing.assert_close(start.context.detach(), method.embeddings.mean(0))
    adapted = method.adapt(pool.subset(np.arange(16)), AdaptationBudget(20, 3e-2, ("context",)), task)
    assert not adapted.learn_context and not torch.equal(adapted.context, start.context.detach())
    before, after = dict(start.named_parameters()), dict(adapted.named_parameters())
    assert set(before) - set(after) == {"context"}  # the context became a fixed buffer
    for n, a in after.items():
        assert torch.equal(a, before[n]), n  # only the embedding moved


def test_multitask_pretraining_accepts_preferences(spaces_):
    prefs = make_loss("bradley_terry", collect_preferences(list(FAMILY.train[:3]), 60, segment_length=4, seed=1))
    method = TaskEmbedding(*spaces_, embedding_dim=2, hidden_sizes=(16,), steps=40, items_per_task=8).pretrain(prefs)
    assert len(method.history) == 40 and method.history[-1] < method.history[0]
