"""Task embedding and shared trunk + heads: each item trains with its own task's tensors; a new task gets a new
embedding that becomes a fixed context."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reuse_data import constant_tasks
from rm_data import FAMILY, loss_of

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


def test_trunk_heads_can_release_the_trunk_under_a_pull_towards_the_pretrained_one(pretrained, pools):
    method = pretrained["trunk_heads"]
    assert "all" in method.candidate_params() and max(method.candidate_steps()) >= 1000
    assert any(w > 0 for w in method.candidate_prior_weights())
    start = method.start_model()
    theta0 = {n: p.detach().clone() for n, p in start.named_parameters()}
    moved = {n: p + 0.1 for n, p in theta0.items()}
    penalty = method.penalty(AdaptationBudget(10, 1e-2, "all", 0.5))
    expected = 0.5 * sum(0.01 * p.numel() for p in theta0.values())
    assert float(penalty(moved)) == pytest.approx(expected, rel=1e-5)
    assert method.penalty(AdaptationBudget(10, 1e-2, "all", 0.0)) is None

    task, pool = pools[0]  # every label of a held-out goal: a new head alone cannot fit it, the released trunk can
    head = method.adapt(pool, AdaptationBudget(1000, 1e-2, ("head",)), task)
    free = method.adapt(pool, AdaptationBudget(1000, 3e-3, "all", 1e-4), task)
    held = method.adapt(pool, AdaptationBudget(1000, 3e-3, "all", 10.0), task)
    assert loss_of(pool, free) < 0.5 * loss_of(pool, head), (loss_of(pool, free), loss_of(pool, head))

    def trunk_distance(model):
        return sum(float(((p.detach() - theta0[n]) ** 2).sum()) for n, p in model.named_parameters() if "trunk" in n)

    assert trunk_distance(held) < 0.1 * trunk_distance(free)
