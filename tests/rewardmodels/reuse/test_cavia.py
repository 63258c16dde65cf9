"""CAVIA: both backends give the same meta-gradient, only the context adapts in the inner loop (from zero, never
meta-trained), meta-training makes the context's adaptation learn a held-out task, and the registry builds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import FAMILY, loss_of

from rewardshare.feedback import collect_preferences, collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget, make_method
from rewardshare.rewardmodels.reuse.cavia import CAVIA, CAVIAMethod
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.maml_learner import MAMLConfig, MetaBatchSampler


def _model(spaces_, seed=0):
    return RewardModel(*spaces_, hidden_sizes=(32, 32), context_dim=4, learn_context=True, seed=seed)


def _grads(cavia, support, query, objective, backend):
    params = list(cavia.meta_parameters())
    loss = cavia.meta_loss(support, query, objective.loss, objective.shared, backend=backend)
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize(("first_order", "meta_sgd"), [(False, False), (True, False), (False, True)])
def test_backends_give_the_same_meta_gradient(spaces_, labels, first_order, meta_sgd):
    cavia = CAVIA(_model(spaces_), MAMLConfig(inner_steps=3, inner_lr=0.5, first_order=first_order, meta_sgd=meta_sgd))
    support, query = MetaBatchSampler(split_by_task(labels), 4, 8, 12, seed=0).sample()
    loss_f, g_func = _grads(cavia, support, query, labels, "func")
    loss_h, g_higher = _grads(cavia, support, query, labels, "higher")
    torch.testing.assert_close(loss_f, loss_h, atol=1e-6, rtol=1e-6)
    for a, b in zip(g_func, g_higher, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert max(float(g.abs().max()) for g in g_func) > 1e-4


def test_backends_agree_on_preferences(spaces_):
    prefs = make_loss("bradley_terry", collect_preferences(list(FAMILY.train[:4]), 80, segment_length=4, seed=0))
    cavia = CAVIA(_model(spaces_), MAMLConfig(inner_steps=2, inner_lr=0.5))
    support, query = MetaBatchSampler(split_by_task(prefs), 3, 5, 8, seed=0).sample()
    for a, b in zip(_grads(cavia, support, query, prefs, "func")[1], _grads(cavia, support, query, prefs, "higher")[1],
                    strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_the_inner_loop_adapts_the_context_and_the_outer_loop_the_network(spaces_, labels):
    model = _model(spaces_)
    cavia = CAVIA(model, MAMLConfig(inner_steps=2, inner_lr=0.5, meta_batch_size=4, support_size=(1, 32),
                                    query_size=16, iterations=20, outer_lr=3e-3))
    assert cavia.inner_names == ["context"]
    assert all(p is not model.context for p in cavia.meta_parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cavia.meta_train(labels, seed=0)
    after = dict(model.named_parameters())
    assert torch.equal(after["context"], torch.zeros(4))  # the inner loop's start is never meta-trained
    assert not torch.equal(after["trunk.0.weight"], before["trunk.0.weight"])
    target = split_by_task(labels)[labels.task_ids[0]].subset(np.arange(16))
    adapted = cavia.adapt(target, steps=5)
    for n, p in adapted.named_parameters():
        if n != "context":
            assert torch.equal(p, after[n]), n
    assert not torch.equal(adapted.context, after["context"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"inner_params": ("head",)}, "CAVIA's inner loop adapts"),
])
def test_cavia_refuses_other_inner_parameters(spaces_, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAVIA(_model(spaces_), MAMLConfig(**kwargs))
    with pytest.raises(ValueError, match="needs a model with a learnable context"):
        CAVIA(RewardModel(*spaces_, hidden_sizes=(8,)), MAMLConfig())
    with pytest.raises(TypeError, match="inner_params is not a setting of cavia"):
        make_method("cavia", *spaces_, inner_params=("head",))
    with pytest.raises(ValueError, match="context_dim=0 is not allowed"):
        make_method("cavia", *spaces_, context_dim=0)


def test_cavia_learns_a_held_out_task_from_a_few_labels_and_returns_a_plain_model(spaces_, labels, tmp_path):
    method = make_method("cavia", *spaces_, hidden_sizes=(32, 32), context_dim=4, inner_steps=3, inner_lr=0.5,
                         meta_batch_size=4, support_size=(1, 64), query_size=16, outer_lr=3e-3, iterations=150)
    assert isinstance(method, CAVIAMethod) and method.name == "cavia"
    method.pretrain(labels)
    assert method.candidate_params() == [("context",), ("adam", "context"), ("adam", "all")]
    start, adapted = [], []
    for task in FAMILY.held_out:
        pool = make_loss("mse", collect_transitions(task, 100, seed=5))
        target = pool.subset(np.random.default_rng(0).choice(100, 8, replace=False))
        model = method.adapt(target, AdaptationBudget(3, 1.0, ("context",)), task)
        assert not model.learn_context and model.metadata["reuse"]["method"] == "cavia"
        start.append(loss_of(pool, method.start_model()))
        adapted.append(loss_of(pool, model))
    assert np.mean(adapted) < np.mean(start) - 0.2, (np.mean(adapted), np.mean(start))
    released = method.adapt(target, AdaptationBudget(20, 1.0, ("adam", "all")), task)
    assert not torch.equal(released.head.weight, method.start_model().head.weight)
    model.save(tmp_path / "cavia")
