"""Reuse methods: each learns a known answer from few target items, multi-task pairs items with their own task,
budgets are chosen on validation tasks, any loss kind works, adapted models round-trip through save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import FAMILY, loss_of

from rewardshare.feedback import collect_demonstrations, collect_preferences, collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.conditioning import GoalConditioned, goal_descriptor
from rewardshare.rewardmodels.maml import MAMLConfig, MAMLMethod
from rewardshare.rewardmodels.multitask import SharedTrunkHeads, TaskEmbedding
from rewardshare.rewardmodels.prior import GaussianPrior, MAPAdaptation, fit_gaussian_prior
from rewardshare.rewardmodels.reuse import (
    AdaptationBudget,
    Scratch,
    finetune,
    finetune_many,
    per_task_losses,
    select_budget,
    select_parameters,
    split_by_task,
    stack_items,
)
from rewardshare.rewardmodels.sharing import load_model
from rewardshare.rewardmodels.transfer import Transfer, trainable_for_freeze

SMALL = {"hidden_sizes": (32, 32)}


@pytest.fixture(scope="module")
def pools():
    """Every held-out task with 100 labels (the 'known answer': the teacher's dense reward)."""
    return [(t, make_loss("mse", collect_transitions(t, 100, seed=11))) for t in FAMILY.held_out]


def _constant_tasks(values: dict[str, float], n: int = 40) -> object:
    """Tasks that share their states and actions but not their (constant) reward labels."""
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 5, size=(n, 2)).astype(np.float32)
    action = rng.integers(0, 4, size=n)
    data = {
        "obs": np.concatenate([obs] * len(values)),
        "action": np.concatenate([action] * len(values)),
        "label": np.repeat(np.array(list(values.values()), np.float32), n),
        "task_id": np.repeat(list(values), n),
    }
    return make_loss("mse", data)


# ---------------------------------------------------------------------------------------------------- plumbing
def test_freeze_options_map_to_parameter_names(spaces_):
    model = RewardModel(*spaces_, hidden_sizes=(8, 8))
    assert trainable_for_freeze(model, "none") == "all"
    assert trainable_for_freeze(model, "trunk") == trainable_for_freeze(model, "all_but_last_layer") == ("head",)
    assert trainable_for_freeze(model, "first_layer") == ("trunk.2", "head")
    assert select_parameters(model, ("trunk.2", "head")) == [
        "trunk.2.weight",
        "trunk.2.bias",
        "head.weight",
        "head.bias",
    ]
    with pytest.raises(ValueError, match="freeze='everything' is not allowed"):
        trainable_for_freeze(model, "everything")
    with pytest.raises(ValueError, match="'neck' matches no parameter"):
        select_parameters(model, "neck")


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


def test_per_task_losses_pair_each_task_with_its_own_row(spaces_):
    objective = _constant_tasks({"a": 1.0, "b": -1.0, "c": 3.0})
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


# ---------------------------------------------------------------------------------------------------- multi-task
@pytest.mark.parametrize("cls", [TaskEmbedding, SharedTrunkHeads])
def test_multitask_trains_each_item_with_its_own_task(spaces_, cls):
    # a random task index per batch (the seed code's bug) would leave every task's model near the mean, 0
    objective = _constant_tasks({"plus": 1.0, "minus": -1.0})
    method = cls(*spaces_, hidden_sizes=(16,), steps=300, lr=1e-2, items_per_task=16).pretrain(objective)
    batch = objective.batch()
    plus = method.task_model("plus")(batch["obs"], batch["action"]).detach()
    minus = method.task_model("minus")(batch["obs"], batch["action"]).detach()
    assert torch.allclose(plus, torch.ones_like(plus), atol=0.1)
    assert torch.allclose(minus, -torch.ones_like(minus), atol=0.1)
    with pytest.raises(ValueError, match="'zero' is not a source task"):
        method.task_model("zero")


def test_goal_conditioning_reads_each_task_s_descriptor(spaces_):
    tasks = [FAMILY.train[0], FAMILY.train[5]]
    values = {t.id: float(goal_descriptor(t.goal, 5, 5)[0] + 2 * goal_descriptor(t.goal, 5, 5)[1]) for t in tasks}
    objective = _constant_tasks(values)
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


# ---------------------------------------------------------------------------------------------------- every method
def _methods(spaces_):
    quick = {"steps": 300, "lr": 3e-3, **SMALL}
    maml = MAMLMethod(
        *spaces_,
        MAMLConfig(
            inner_steps=3,
            meta_sgd=True,
            meta_batch_size=4,
            support_size=16,
            query_size=16,
            outer_lr=3e-3,
            iterations=60,
        ),
        **SMALL,
    )
    return {
        "scratch": Scratch(*spaces_, **SMALL),
        "transfer": Transfer(*spaces_, **quick),
        "multitask_embedding": TaskEmbedding(*spaces_, embedding_dim=4, **quick),
        "shared_trunk_heads": SharedTrunkHeads(*spaces_, **quick),
        "goal_conditioned": GoalConditioned(*spaces_, **quick),
        "meta_sgd": maml,
        "map_prior": MAPAdaptation(maml, pretrain_base=False, prior_steps=20, max_prior_tasks=6),
    }


@pytest.fixture(scope="module")
def pretrained(spaces_, labels):
    methods = _methods(spaces_)
    for name, method in methods.items():
        method.pretrain(labels, FAMILY.train)
        assert method.name == name
    return methods


BUDGETS = {
    "scratch": AdaptationBudget(100, 1e-2),
    "transfer": AdaptationBudget(50, 3e-3),
    "multitask_embedding": AdaptationBudget(100, 3e-2, ("context",)),
    "shared_trunk_heads": AdaptationBudget(100, 1e-2, ("head",)),
    "goal_conditioned": AdaptationBudget(30, 1e-3),
    "meta_sgd": AdaptationBudget(3, 1.0),
    "map_prior": AdaptationBudget(100, 1e-2, prior_weight=0.01),
}


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


def test_goal_conditioning_is_good_zero_shot(pretrained, pools):
    method = pretrained["goal_conditioned"]
    scratch = pretrained["scratch"]
    zero_shot = [loss_of(pool, method.start_model(task)) for task, pool in pools]
    untrained = [loss_of(pool, scratch.start_model(task)) for task, pool in pools]
    assert np.mean(zero_shot) < 0.6 * np.mean(untrained)


def test_a_new_task_gets_a_new_embedding_and_a_frozen_context_after_adaptation(pretrained, pools):
    method = pretrained["multitask_embedding"]
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


@pytest.mark.parametrize(
    "name", ["transfer", "multitask_embedding", "shared_trunk_heads", "goal_conditioned", "meta_sgd", "map_prior"]
)
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


# ---------------------------------------------------------------------------------------------------- other losses
@pytest.fixture(scope="module")
def other_targets(spaces_):
    task = FAMILY.held_out[0]
    prefs = make_loss("bradley_terry", collect_preferences(task, 24, segment_length=4, seed=0))
    irl = make_loss("maxent_irl", collect_demonstrations(task, 6, seed=0), env=task.make_env(), iterations=20)
    return task, {"bradley_terry": prefs, "maxent_irl": irl}


@pytest.mark.parametrize("kind", ["bradley_terry", "maxent_irl"])
@pytest.mark.parametrize(
    "name",
    ["scratch", "transfer", "multitask_embedding", "shared_trunk_heads", "goal_conditioned", "meta_sgd", "map_prior"],
)
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


def test_multitask_pretraining_accepts_preferences(spaces_):
    prefs = make_loss("bradley_terry", collect_preferences(list(FAMILY.train[:3]), 60, segment_length=4, seed=1))
    method = TaskEmbedding(*spaces_, embedding_dim=2, hidden_sizes=(16,), steps=40, items_per_task=8).pretrain(prefs)
    assert len(method.history) == 40 and method.history[-1] < method.history[0]


# ---------------------------------------------------------------------------------------------------- budgets
def _epic_free_score(pool):
    return lambda model, task: loss_of(pool, model)


def test_select_budget_never_prefers_adaptation_that_hurts(pretrained, labels):
    # validation tasks from the TRAIN split; scored on all their labels
    groups = split_by_task(labels)
    validation = [(t, groups[t.id]) for t in FAMILY.train[:3]]
    scores = {t.id: _epic_free_score(groups[t.id]) for t, _ in validation}
    score = lambda model, task: scores[task.id](model, task)  # noqa: E731
    method = pretrained["goal_conditioned"]
    sel = select_budget(method, validation, 4, score, steps=[0, 50], lrs=[0.3], params=["all"])
    # lr 0.3 for 50 steps on 4 labels destroys a good prior: no adaptation must win
    assert sel.budget.steps == 0 and sel.score == sel.no_adapt_score
    assert [row["budget"]["steps"] for row in sel.table] == [0, 50]
    assert sel.table[1]["score"] > sel.table[0]["score"]
    scratch = select_budget(pretrained["scratch"], validation, 64, score, steps=[0, 100], lrs=[1e-2])
    assert scratch.budget.steps == 100 and scratch.score < scratch.no_adapt_score - 0.3


def test_select_budget_validates_its_inputs(pretrained, labels):
    groups = split_by_task(labels)
    score = lambda model, task: 0.0  # noqa: E731
    with pytest.raises(ValueError, match="validation is empty"):
        select_budget(pretrained["transfer"], [], 4, score)
    with pytest.raises(ValueError, match="need at least k=1000"):
        select_budget(pretrained["transfer"], [(FAMILY.train[0], groups[FAMILY.train[0].id])], 1000, score)


# ---------------------------------------------------------------------------------------------------- prior
def test_gaussian_prior_penalty_is_the_weighted_squared_distance():
    prior = GaussianPrior({"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([1.0, 4.0])})
    assert float(prior.penalty({"w": torch.tensor([2.0, 0.0])}, 0.5)) == pytest.approx(0.5 * (1 * 1 + 4 * 4))
    with pytest.raises(KeyError, match="'v' has no prior"):
        prior.penalty({"v": torch.zeros(1)}, 1.0)


def test_fitted_prior_has_unit_mean_precision_and_a_strong_prior_holds_the_weights(spaces_, labels, pools):
    mu = RewardModel(*spaces_, hidden_sizes=(8,), seed=0)
    prior = fit_gaussian_prior(mu, labels, steps=5, lr=1e-2, max_tasks=4)
    flat = torch.cat([v.reshape(-1) for v in prior.precision.values()])
    assert prior.n_tasks == 4 and float(flat.min()) >= 1e-3 and float(flat.max()) <= 1e3
    assert float(flat.mean()) == pytest.approx(1.0, rel=0.2)  # 1 before clipping
    _, pool = pools[0]
    moved = []
    for weight in (0.0, 100.0):
        out = finetune(mu, pool, steps=30, lr=1e-2, penalty=lambda p, w=weight: prior.penalty(p, w))
        with torch.no_grad():
            moved.append(float(prior.penalty(dict(out.named_parameters()), 1.0)))  # the prior's own distance to mu
    assert moved[1] < 0.1 * moved[0]
    with pytest.raises(ValueError, match="at least 2 source tasks"):
        fit_gaussian_prior(mu, split_by_task(labels)[FAMILY.train[0].id])


def test_methods_refuse_to_adapt_before_pretraining(spaces_, pools):
    with pytest.raises(RuntimeError, match="TaskEmbedding is not pretrained"):
        TaskEmbedding(*spaces_).start_model()


# ---------------------------------------------------------------------------------------------------- batching
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


def test_transfer_from_one_source_task_or_an_existing_model(spaces_, labels):
    source_id = FAMILY.train[3].id
    method = Transfer(*spaces_, source_task=source_id, hidden_sizes=(16,), steps=150, lr=1e-2).pretrain(labels)
    own = split_by_task(labels)[source_id]
    other = split_by_task(labels)[FAMILY.train[4].id]
    model = method.start_model()
    assert loss_of(own, model) < 0.5 * loss_of(other, model)  # it learned its one source task, not the pool
    assert model.metadata["reuse_pretrain"]["source_tasks"] == [source_id]
    reused = Transfer.from_model(model, freeze="trunk")
    assert reused.candidate_params() == [("head",)]
    torch.testing.assert_close(reused.start_model().head.weight, model.head.weight)
    with pytest.raises(ValueError, match="source_task='nowhere' is not in the source data"):
        Transfer(*spaces_, source_task="nowhere").pretrain(labels)
