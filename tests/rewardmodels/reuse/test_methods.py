"""Every pre-trained reuse method learns a held-out task from few items, with labels, preferences or MaxEnt IRL,
and its adapted model is a plain RewardModel that round-trips through save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reuse_data import BUDGETS, SMALL
from rm_data import loss_of

from rewardshare.rewardmodels import RewardModel, TaskEmbedding
from rewardshare.rewardmodels.reuse import AdaptationBudget
from rewardshare.rewardmodels.sharing import load_model


@pytest.mark.parametrize("name", list(BUDGETS))
def test_each_method_learns_a_held_out_task_better_than_an_untrained_model(spaces_, pretrained, pools, name):
    method = pretrained[name]
    untrained = RewardModel(*spaces_, **SMALL, seed=123)
    adapted, base = [], []
    for task, pool in pools:
        target = pool.subset(np.random.default_rng(0).choice(len(pool), 16, replace=False))
        model = method.adapt(target, BUDGETS[name], task)
        assert isinstance(model, RewardModel) and model.metadata["reuse"]["method"] == name
        adapted.append(loss_of(pool, model))
        base.append(loss_of(pool, untrained))
    assert np.mean(adapted) < np.mean(base) - 0.3, (np.mean(adapted), np.mean(base))


@pytest.mark.parametrize("name", [n for n in BUDGETS if n != "scratch"])
def test_adapted_models_round_trip_through_save_and_load(pretrained, pools, tmp_path, name):
    task, pool = pools[1]
    model = pretrained[name].adapt(pool.subset(np.arange(8)), BUDGETS[name], task)
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    batch = pool.batch()
    torch.testing.assert_close(
        loaded.predict(batch["obs"], batch["action"]), model.predict(batch["obs"], batch["action"])
    )
    assert loaded.metadata["reuse"] == model.metadata["reuse"]
    if model.context_dim:
        torch.testing.assert_close(loaded.context, model.context)


@pytest.mark.parametrize("kind", ["bradley_terry", "maxent_irl"])
@pytest.mark.parametrize("name", list(BUDGETS))
def test_every_method_adapts_with_preferences_and_maxent_irl(pretrained, other_targets, kind, name):
    task, targets = other_targets
    target = targets[kind]
    method = pretrained[name]
    budget = (
        AdaptationBudget(3, 0.5)
        if name == "meta_sgd"
        else AdaptationBudget(15, 1e-2, BUDGETS[name].params, BUDGETS[name].prior_weight)
    )
    adapted = method.adapt(target, budget, task)
    assert loss_of(target, adapted) < loss_of(target, method.start_model(task))


def test_methods_refuse_to_adapt_before_pretraining(spaces_):
    with pytest.raises(RuntimeError, match="TaskEmbedding is not pretrained"):
        TaskEmbedding(*spaces_).start_model()
