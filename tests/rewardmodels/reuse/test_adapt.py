"""Adaptation budgets and batched fine-tuning: validated budgets, only the chosen parameters move, batched runs equal
separate runs, divergence raises or stops a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reuse_data import SMALL
from rm_data import loss_of

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.adapt import AdaptationBudget, finetune, finetune_many


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": -1}, "steps=-1"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"prior_weight": -1.0}, "prior_weight=-1.0"),
        ({"steps": 1.5}, "steps=1.5"),
    ],
)
def test_budget_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptationBudget(**kwargs)


def test_budget_round_trips_through_json_fields():
    budget = AdaptationBudget(30, 1e-2, ("head", "context"), 0.1)
    assert AdaptationBudget.from_dict(budget.to_dict()) == budget


def test_finetune_trains_only_the_chosen_parameters_and_reports_checkpoints(spaces_, pools):
    _, pool = pools[0]
    model = RewardModel(*spaces_, **SMALL, seed=1)
    seen = []
    out = finetune(
        model,
        pool,
        steps=20,
        lr=1e-2,
        params=("head",),
        checkpoints=[0, 10, 20],
        on_checkpoint=lambda step, m: seen.append((step, loss_of(pool, m))),
    )
    assert [s for s, _ in seen] == [0, 10, 20]
    assert seen[0][1] == pytest.approx(loss_of(pool, model)) and seen[-1][1] == pytest.approx(loss_of(pool, out))
    assert loss_of(pool, out) < loss_of(pool, model)
    for (name, a), (_, b) in zip(model.named_parameters(), out.named_parameters(), strict=True):
        assert torch.equal(a, b) == (not name.startswith("head")), name
    with pytest.raises(ValueError, match="target 0 is empty"):
        finetune(model, pool.subset(np.zeros(0, np.int64)), steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="checkpoints=\\[50\\]"):
        finetune(model, pool, steps=5, lr=1e-3, checkpoints=[50])


@pytest.mark.parametrize("use_rates", [False, True])
def test_batched_adaptation_equals_separate_runs(spaces_, pools, use_rates):
    models = [RewardModel(*spaces_, **SMALL, seed=s) for s in range(3)]
    targets = [pool.subset(np.arange(i, 100, 7)) for i, (_, pool) in enumerate(pools[:3])]
    rates = {n: 0.05 for n in ("head.weight", "head.bias")} if use_rates else None
    params = ("head",) if use_rates else "all"
    together = finetune_many(models, targets, steps=15, lr=1e-2, params=params, rates=rates)
    for model, target, batched in zip(models, targets, together, strict=True):
        alone = finetune_many([model], [target], steps=15, lr=1e-2, params=params, rates=rates)[0]
        for (n, a), (_, b) in zip(alone.named_parameters(), batched.named_parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=n)
    if use_rates:  # a plain gradient step is exactly theta - lr * rate * grad
        model, target = models[0], targets[0]
        one = finetune_many([model], [target], steps=1, lr=2.0, params=params, rates=rates)[0]
        loss = target(model)
        g = torch.autograd.grad(loss, [model.head.weight])[0]
        torch.testing.assert_close(one.head.weight, model.head.weight - 2.0 * 0.05 * g)


def test_batched_adaptation_loops_over_targets_it_cannot_stack(spaces_, pools, other_targets):
    model = RewardModel(*spaces_, **SMALL, seed=0)
    _, targets = other_targets
    uneven = [pools[0][1].subset(np.arange(5)), pools[1][1].subset(np.arange(9))]
    for runs in (uneven, [targets["maxent_irl"], targets["maxent_irl"]]):
        together = finetune_many([model, model], runs, steps=5, lr=1e-2)
        for target, batched in zip(runs, together, strict=True):
            alone = finetune(model, target, steps=5, lr=1e-2)
            torch.testing.assert_close(alone.head.weight, batched.head.weight, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="give one target per model"):
        finetune_many([model], uneven, steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="different architectures"):
        finetune_many([model, RewardModel(*spaces_, hidden_sizes=(4,))], uneven, steps=1, lr=1e-2)


def test_a_diverging_run_raises_or_stops_at_its_last_finite_weights(spaces_, pools):
    model = RewardModel(*spaces_, **SMALL, seed=0)
    target = pools[0][1].subset(np.arange(30))
    rates = {n: 1.0 for n, _ in model.named_parameters()}
    with pytest.raises(FloatingPointError, match="non-finite at step"):
        finetune_many([model], [target], steps=60, lr=50.0, rates=rates)
    gentle, wild = finetune_many(
        [model, model], [target, target], steps=60, lr=[1e-3, 50.0], rates=rates, on_divergence="stop"
    )
    assert "adaptation_stopped_at_step" not in gentle.metadata
    assert 0 < wild.metadata["adaptation_stopped_at_step"] < 60
    assert all(torch.isfinite(p).all() for p in wild.parameters()) and np.isfinite(loss_of(target, wild))
    torch.testing.assert_close(
        gentle.head.weight, finetune_many([model], [target], steps=60, lr=1e-3, rates=rates)[0].head.weight
    )
