"""Goal conditioning: the model reads each task's descriptor, and is good zero-shot on held-out goals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reuse_data import constant_tasks
from rm_data import FAMILY, loss_of

from rewardshare.rewardmodels.reuse.conditioning import GoalConditioned, goal_descriptor


def test_goal_conditioning_reads_each_task_s_descriptor(spaces_):
    tasks = [FAMILY.train[0], FAMILY.train[5]]
    values = {t.id: float(goal_descriptor(t.goal, 5, 5)[0] + 2 * goal_descriptor(t.goal, 5, 5)[1]) for t in tasks}
    objective = constant_tasks(values)
    method = GoalConditioned(*spaces_, hidden_sizes=(16,), steps=300, lr=1e-2).pretrain(objective, tasks)
    batch = objective.batch()
    for t in tasks:
        pred = method.start_model(t)(batch["obs"], batch["action"]).detach()
        assert torch.allclose(pred, torch.full_like(pred, values[t.id]), atol=0.1)
    with pytest.raises(ValueError, match="task=None is not allowed"):
        method.start_model(None)


def test_goal_descriptor_is_normalised():
    assert goal_descriptor((0, 4), 5, 5).tolist() == [-1.0, 1.0]
    assert goal_descriptor((2, 2), 5, 5).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="outside the 5x5 grid"):
        goal_descriptor((5, 0), 5, 5)


def test_goal_conditioning_is_good_zero_shot(pretrained, pools):
    method = pretrained["goal_conditioned"]
    scratch = pretrained["scratch"]
    zero_shot = [loss_of(pool, method.start_model(task)) for task, pool in pools]
    untrained = [loss_of(pool, scratch.start_model(task)) for task, pool in pools]
    assert np.mean(zero_shot) < 0.6 * np.mean(untrained)
