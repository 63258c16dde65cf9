"""MAML / Meta-SGD: backends agree, support and query are disjoint, adaptation learns, settings are validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import FAMILY, loss_of

from rewardshare.feedback import collect_demonstrations, collect_preferences, collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget
from rewardshare.rewardmodels.reuse import functional as functional_mod
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.maml import MAMLMethod
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig, MetaBatchSampler


def _model(spaces_, seed=0, **kw):
    return RewardModel(*spaces_, hidden_sizes=(32, 32), seed=seed, **kw)


def _meta_batch(objective, n_tasks=4, support=8, query=12, seed=0):
    return MetaBatchSampler(split_by_task(objective), n_tasks, support, query, seed=seed).sample()


def _meta_grads(maml, support, query, objective, backend):
    params = list(maml.meta_parameters())
    loss = maml.meta_loss(support, query, objective.loss, objective.shared, backend=backend)
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize(
    ("first_order", "meta_sgd", "inner_params"),
    [(False, False, None), (True, False, None), (False, True, None), (True, True, None), (False, False, ("head",))],
)
def test_backends_give_the_same_meta_gradient(spaces_, labels, first_order, meta_sgd, inner_params):
    cfg = MAMLConfig(
        inner_steps=3, inner_lr=0.05, first_order=first_order, meta_sgd=meta_sgd, inner_params=inner_params
    )
    maml = MAML(_model(spaces_), cfg)
    support, query = _meta_batch(labels)
    loss_f, g_func = _meta_grads(maml, support, query, labels, "func")
    loss_h, g_higher = _meta_grads(maml, support, query, labels, "higher")
    torch.testing.assert_close(loss_f, loss_h, atol=1e-6, rtol=1e-6)
    assert len(g_func) == len(g_higher) == len(list(maml.meta_parameters()))
    for a, b in zip(g_func, g_higher, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert max(float(g.abs().max()) for g in g_func) > 1e-4  # a non-trivial gradient was compared


def test_first_and_second_order_gradients_differ(spaces_, labels):
    support, query = _meta_batch(labels)
    grads = []
    for fo in (False, True):
        maml = MAML(_model(spaces_), MAMLConfig(inner_steps=3, inner_lr=0.1, first_order=fo))
        grads.append(_meta_grads(maml, support, query, labels, "func")[1])
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


def test_func_backend_vectorises_a_reward_model(spaces_, labels):
    # the default backend must really run under vmap with the project's RewardModel (not fall back to a loop)
    functional_mod._NO_VMAP.discard("MAML/LabelObjective")
    maml = MAML(_model(spaces_), MAMLConfig(inner_steps=1))
    support, query = _meta_batch(labels)
    maml.meta_loss(support, query, labels.loss, labels.shared)
    assert "MAML/LabelObjective" not in functional_mod._NO_VMAP


def test_backends_agree_on_preferences(spaces_):
    prefs = make_loss("bradley_terry", collect_preferences(list(FAMILY.train[:4]), 80, segment_length=4, seed=0))
    maml = MAML(_model(spaces_), MAMLConfig(inner_steps=2, inner_lr=0.05))
    support, query = _meta_batch(prefs, n_tasks=3, support=5, query=8)
    for a, b in zip(
        _meta_grads(maml, support, query, prefs, "func")[1],
        _meta_grads(maml, support, query, prefs, "higher")[1],
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_backends_agree_on_maxent_irl(spaces_):
    demos = collect_demonstrations(list(FAMILY.train[:3]), 12, seed=0)
    env = FAMILY.train[0].make_env()
    irl = make_loss("maxent_irl", demos, env=env, iterations=8)
    maml = MAML(_model(spaces_), MAMLConfig(inner_steps=2, inner_lr=0.05))
    support, query = _meta_batch(irl, n_tasks=3, support=4, query=6)
    with pytest.warns(RuntimeWarning, match="looping over tasks"):
        functional_mod._NO_VMAP.discard("MAML/MaxEntIRLObjective")
        g_func = _meta_grads(maml, support, query, irl, "func")[1]
    g_higher = _meta_grads(maml, support, query, irl, "higher")[1]
    for a, b in zip(g_func, g_higher, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_sampler_draws_disjoint_support_and_query_from_one_task():
    # items labelled by their own index, so a label identifies an item
    n_tasks, per_task = 6, 40
    data = {
        "obs": np.zeros((n_tasks * per_task, 2), np.float32),
        "action": np.zeros(n_tasks * per_task, np.int64),
        "label": np.arange(n_tasks * per_task, dtype=np.float32),
        "task_id": np.repeat([f"t{i}" for i in range(n_tasks)], per_task),
    }
    objective = make_loss("mse", data)
    support, query = MetaBatchSampler(split_by_task(objective), 5, 10, 20, seed=3).sample()
    assert support["label"].shape == (5, 10) and query["label"].shape == (5, 20)
    for t in range(5):
        items = torch.cat([support["label"][t], query["label"][t]]).long()
        assert len(set(items.tolist())) == 30  # support and query share no item, no item drawn twice
        assert len(set((items // per_task).tolist())) == 1  # all from one task
        assert set(support["task_index"][t].tolist()) == {int(items[0] // per_task)}
    assert len(set((support["label"][:, 0].long() // per_task).tolist())) == 5  # distinct tasks


def test_sampler_refuses_tasks_with_too_few_items(labels):
    with pytest.raises(ValueError, match="need support_size \\+ query_size = 120"):
        MetaBatchSampler(split_by_task(labels), 2, 60, 60)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inner_steps": -1}, "inner_steps=-1"),
        ({"meta_batch_size": 0}, "meta_batch_size=0"),
        ({"inner_lr": float("nan")}, "inner_lr=nan"),
        ({"backend": "jax"}, "backend='jax'"),
    ],
)
def test_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAMLConfig(**kwargs)


def test_unknown_inner_params_are_refused(spaces_):
    with pytest.raises(ValueError, match="'neck' matches no parameter"):
        MAML(_model(spaces_), MAMLConfig(inner_params=("neck",)))


def test_adapt_returns_a_new_reward_model_and_leaves_the_meta_model(spaces_, labels):
    maml = MAML(_model(spaces_), MAMLConfig(inner_steps=3, inner_lr=0.1))
    before = {k: v.clone() for k, v in maml.model.state_dict().items()}
    target = split_by_task(labels)[labels.task_ids[0]].subset(np.arange(16))
    unchanged = maml.adapt(target, steps=0)
    adapted = maml.adapt(target)
    assert isinstance(adapted, RewardModel) and adapted is not maml.model
    for k, v in maml.model.state_dict().items():
        assert torch.equal(v, before[k])
    batch = target.batch()
    torch.testing.assert_close(unchanged(batch["obs"], batch["action"]), maml.model(batch["obs"], batch["action"]))
    assert loss_of(target, adapted) < loss_of(target, maml.model)


def test_adapt_validates_its_arguments(spaces_, labels):
    maml = MAML(_model(spaces_))
    with pytest.raises(ValueError, match="steps=-2"):
        maml.adapt(labels.subset([0, 1]), steps=-2)
    with pytest.raises(ValueError, match="lr_scale=0"):
        maml.adapt(labels.subset([0, 1]), lr_scale=0)
    with pytest.raises(ValueError, match="target 0 is empty"):
        maml.adapt(labels.subset(np.zeros(0, dtype=np.int64)))


def test_meta_training_lowers_the_held_out_query_loss(spaces_, labels):
    # a known answer: the teacher's dense reward on held-out goals; 8 support labels, loss over all 100 labels
    cfg = MAMLConfig(
        inner_steps=3,
        inner_lr=0.1,
        meta_sgd=True,
        meta_batch_size=4,
        support_size=8,
        query_size=16,
        outer_lr=3e-3,
        iterations=60,
    )
    method = MAMLMethod(*spaces_, cfg, hidden_sizes=(32, 32)).pretrain(labels)
    assert method.name == "meta_sgd" and len(method.history) == 60
    untrained = RewardModel(*spaces_, hidden_sizes=(32, 32), seed=0)
    start, adapted, scratch = [], [], []
    for task in FAMILY.held_out:
        pool = make_loss("mse", collect_transitions(task, 100, seed=5))
        for seed in range(2):
            support = pool.subset(np.random.default_rng(seed).choice(100, 8, replace=False))
            model = method.adapt(support, AdaptationBudget(steps=3, lr=1.0), task)
            assert model.metadata["reuse"]["method"] == "meta_sgd"
            start.append(loss_of(pool, method.start_model()))
            adapted.append(loss_of(pool, model))
            scratch.append(loss_of(pool, untrained))
    assert np.mean(adapted) < np.mean(start) - 0.1
    assert np.mean(adapted) < np.mean(scratch) - 0.2


# -- support sizes over the k range, the stacked func path, test-time optimisers ---------------------------------------
def _indexed_tasks(n_tasks: int, per_task: int):
    data = {
        "obs": np.zeros((n_tasks * per_task, 2), np.float32),
        "action": np.zeros(n_tasks * per_task, np.int64),
        "label": np.arange(n_tasks * per_task, dtype=np.float32),
        "task_id": np.repeat([f"t{i}" for i in range(n_tasks)], per_task),
    }
    return split_by_task(make_loss("mse", data))


def test_sampler_draws_support_sizes_log_uniformly_over_a_range():
    sampler = MetaBatchSampler(_indexed_tasks(4, 300), 3, (1, 256), 16, seed=0)
    sizes = []
    for _ in range(400):
        support, query = sampler.sample()
        sizes.append(support["label"].shape[1])
        assert query["label"].shape == (3, 16)
        for t in range(3):  # still disjoint within a task
            items = torch.cat([support["label"][t], query["label"][t]]).long().tolist()
            assert len(set(items)) == len(items)
    sizes = np.array(sizes)
    assert sizes.min() >= 1 and sizes.max() <= 256 and sizes.max() >= 128
    # log-uniform: [1, 16) and [16, 256] each hold about half the draws
    assert 0.35 < np.mean(sizes < 16) < 0.65
    assert sampler.sizes == sizes.tolist()


def test_sampler_caps_the_support_size_at_what_a_task_has_beyond_its_query():
    sampler = MetaBatchSampler(_indexed_tasks(3, 40), 3, (1, 256), 8, seed=1)
    sizes = [sampler.sample()[0]["label"].shape[1] for _ in range(200)]
    assert max(sizes) == 32 and min(sizes) >= 1
    with pytest.raises(ValueError, match="the smallest support size \\+ query_size = 48"):
        MetaBatchSampler(_indexed_tasks(3, 40), 3, (8, 256), 40)


@pytest.mark.parametrize("bad", [(0, 4), (5, 4), (1, 2, 3), "16", (1.5, 4)])
def test_a_malformed_support_range_is_refused(bad):
    with pytest.raises(ValueError, match="support_size=.* is not allowed"):
        MAMLConfig(support_size=bad)


def test_a_support_range_round_trips_through_the_config(spaces_, labels):
    cfg = MAMLConfig(support_size=[1, 64], query_size=8, iterations=3, meta_batch_size=2, inner_steps=1)
    assert cfg.support_size == (1, 64) and cfg.to_dict()["support_size"] == [1, 64]
    maml = MAML(_model(spaces_), cfg)
    history = maml.meta_train(labels, seed=0)  # 100 labels per task: a support of up to 64 plus 8 query
    assert len(history) == 3 and all(np.isfinite(history))


def test_the_stacked_func_path_runs_without_looping_and_falls_back_for_a_non_mean_objective(spaces_, labels):
    from rewardshare.rewardmodels.reuse import maml_backends

    maml = MAML(_model(spaces_), MAMLConfig(inner_steps=2, inner_lr=0.05))
    support, query = _meta_batch(labels)
    maml_backends._ADDITIVE.pop("MAML-stacked/LabelObjective", None)
    _meta_grads(maml, support, query, labels, "func")
    assert maml_backends._ADDITIVE["MAML-stacked/LabelObjective"] is True

    def summed(model, batch):  # a sum over items: T * L(merged) is not the sum of the tasks' losses
        return labels.loss(model, batch) * batch["label"].shape[0]

    summed.__name__ = "summed_label_loss"
    maml_backends._ADDITIVE.pop("MAML-stacked/summed_label_loss", None)
    params = list(maml.meta_parameters())
    with pytest.warns(RuntimeWarning, match="not a mean over items per task"):
        g_func = torch.autograd.grad(maml.meta_loss(support, query, summed, backend="func"), params)
    g_higher = torch.autograd.grad(maml.meta_loss(support, query, summed, backend="higher"), params)
    for a, b in zip(g_func, g_higher, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_maml_adapts_with_adam_and_refuses_sgd_on_weights_without_a_rate(spaces_, labels):
    maml = MAML(_model(spaces_), MAMLConfig(inner_lr=0.05, inner_params=("head",), adam_lr=1e-2))
    target = split_by_task(labels)[labels.task_ids[0]]
    sgd = maml.adapt(target, steps=50)
    adam = maml.adapt(target, steps=50, optimizer="adam", params="all")
    before = dict(maml.model.named_parameters())
    assert torch.equal(dict(sgd.named_parameters())["trunk.0.weight"], before["trunk.0.weight"])  # head only
    assert not torch.equal(dict(adam.named_parameters())["trunk.0.weight"], before["trunk.0.weight"])
    assert loss_of(target, adam) < loss_of(target, sgd)
    with pytest.raises(ValueError, match=r"params \['trunk.0.bias', 'trunk.0.weight'\] have no meta-learned rate"):
        maml.adapt(target, steps=1, params=("trunk.0", "head"))
    with pytest.raises(ValueError, match="optimizer='rmsprop' is not allowed"):
        maml.adapt(target, steps=1, optimizer="rmsprop")


def test_budgets_name_the_optimiser_and_candidate_steps_reach_the_thousands(pretrained):
    from rewardshare.rewardmodels.reuse.maml import split_optimizer

    method = pretrained["meta_sgd"]
    assert method.candidate_params() == ["all", ("adam", "all")]
    assert max(method.candidate_steps()) >= 1000
    assert split_optimizer("all") == ("sgd", "all") and split_optimizer(("adam", "head")) == ("adam", ("head",))
    assert split_optimizer(("adam",)) == ("adam", "all")


def test_budget_selection_lets_meta_sgd_leave_its_few_step_plateau(pretrained, labels):
    # validation tasks from the train split, all 100 labels each: a few hundred SGD steps (the old cap: 60 x the
    # inner steps) leave the model far from the labels; the thousands of steps and Adam now on offer do not
    from rewardshare.rewardmodels.reuse.selection import select_budget

    method = pretrained["meta_sgd"]
    groups = split_by_task(labels)
    validation = [(t, groups[t.id]) for t in FAMILY.train[:3]]
    pools = {t.id: pool for t, pool in validation}

    def score(model, task):
        return loss_of(pools[task.id], model)

    old_steps = [0, 3, 6, 15, 60, 180]
    old = select_budget(method, validation, 100, score, steps=old_steps, params=["all"], max_widen=0)
    # the default parameter choices (SGD with the meta-learned rates, Adam), on a short grid to keep the test fast
    new = select_budget(method, validation, 100, score, steps=[0, 30, 300, 1000], lrs=[1.0], max_widen=0)
    assert new.budget.steps > max(old_steps) and new.budget.params == ("adam", "all")
    assert new.score < 0.5 * old.score, (new.budget, new.score, old.budget, old.score)
