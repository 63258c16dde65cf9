"""The latent-task model: a prior over task latents from the source tasks, and inference of a new task's latent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardshare.envs import TaskFamily
from rewardshare.feedback import Teacher, collect_demonstrations, collect_transitions
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, grid_mdp, reward_tensor
from rewardshare.rewardmodels.reuse import AdaptationBudget, LatentTask, make_method
from rewardshare.rewardmodels.reuse.latent import MIN_NOISE_VARIANCE

FAMILY = TaskFamily("open", 5, split_seed=0)


@pytest.fixture(scope="module")
def method() -> LatentTask:
    torch.set_num_threads(1)
    env = FAMILY.train[0].make_env()
    source = make_loss("mse", collect_transitions(list(FAMILY.train), 96 * len(FAMILY.train), seed=0))
    m = make_method("latent", env.observation_space, env.action_space, seed=0, hidden_sizes=(48, 48),
                    steps=700, lr=5e-3, items_per_task=32, embedding_dim=4, infer_steps=100)
    return m.pretrain(source, list(FAMILY.train))


def _epic(model, task) -> float:
    mdp = grid_mdp(task, model)
    return epic_from_tensors(reward_tensor(model, mdp), reward_tensor(Teacher(task).true_reward, mdp), mdp)


def test_prior_is_fitted_on_the_source_latents(method: LatentTask) -> None:
    assert isinstance(method, LatentTask) and method.name == "latent"
    assert method.embeddings is not None and method.prior_mean is not None and method.prior_precision is not None
    torch.testing.assert_close(method.prior_mean, method.embeddings.mean(dim=0))
    assert method.prior_precision.shape == (4, 4)
    assert torch.allclose(method.prior_precision, method.prior_precision.T, atol=1e-4)
    assert torch.linalg.eigvalsh(method.prior_precision).min() > 0
    assert method.noise_variance >= MIN_NOISE_VARIANCE
    # zero-shot, a new task gets the network at the prior mean; a source task gets its own latent
    torch.testing.assert_close(method.start_model(FAMILY.held_out[0]).context, method.prior_mean)
    torch.testing.assert_close(method.start_model(FAMILY.train[3]).context, method.embeddings[3])


def test_posterior_modes_are_sorted_and_weighted(method: LatentTask) -> None:
    targets = [make_loss("mse", collect_transitions(t, 12, seed=1)) for t in FAMILY.held_out[:2]]
    posts = method.infer(targets)
    assert len(posts) == 2
    for post in posts:
        assert post.z.shape == (method.n_top + 1 + method.n_prior_samples, 4)
        assert torch.all(post.neg_log_posterior[1:] >= post.neg_log_posterior[:-1])
        assert float(post.weights.sum()) == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(post.map, post.z[0])
    # different feedback, different latents
    assert not torch.allclose(posts[0].map, posts[1].map)
    # the public negative log posterior is the one the inference ranks its modes by
    for post, target in zip(posts, targets, strict=True):
        torch.testing.assert_close(method.neg_log_posterior(target, post.z), post.neg_log_posterior, rtol=1e-4,
                                   atol=1e-4)


def test_inference_beats_zero_shot_and_the_mean_start(method: LatentTask) -> None:
    tasks = list(FAMILY.held_out)
    targets = [make_loss("mse", collect_transitions(t, 24, seed=2)) for t in tasks]
    adapted = method.adapt_many(targets, AdaptationBudget(steps=0), tasks)
    zero = [_epic(method.start_model(t), t) for t in tasks]
    inferred = [_epic(m, t) for m, t in zip(adapted, tasks, strict=True)]
    assert np.mean(inferred) < 0.6 * np.mean(zero), (inferred, zero)
    for m in adapted:
        assert not m.learn_context  # the inferred latent is fixed in the returned model
        assert m.metadata["reuse"]["method"] == "latent"
        assert len(m.metadata["latent_posterior"]["weights"]) == len(m.metadata["latent_posterior"]["z"])


def test_one_demonstration_says_where_the_goal_is_through_the_termination_link(method: LatentTask) -> None:
    # fitted at pre-training on the source labels' episode-end flags: high rewards end episodes
    link = method.termination
    assert link is not None and link.scale > 0 and method.config()["termination"] == [link.scale, link.bias]
    tasks = list(FAMILY.held_out)
    targets = [make_loss("maxent_irl", collect_demonstrations(t, n_episodes=1, seed=4), iterations=30) for t in tasks]
    assert all(int(t.items["done"].sum()) == 1 for t in targets)  # each demonstration ended at its goal
    posts = method.infer(targets)
    # demonstrations get every start (one batched soft value iteration for all of them)
    assert all(p.z.shape[0] == method.n_top + 1 + method.n_prior_samples for p in posts)
    with_end = [_epic(method.model_at(p.map), t) for p, t in zip(posts, tasks, strict=True)]
    method.termination = None
    try:
        without = [_epic(method.model_at(p.map), t) for p, t in zip(method.infer(targets), tasks, strict=True)]
    finally:
        method.termination = link
    assert np.mean(with_end) < 0.6 * np.mean(without), (with_end, without)  # measured 0.06 vs 0.19


def test_released_weights_stay_near_the_pretrained_ones_under_the_prior(method: LatentTask) -> None:
    task = FAMILY.held_out[0]
    target = make_loss("mse", collect_transitions(task, 48, seed=3))
    free = method.adapt(target, AdaptationBudget(steps=50, lr=1e-2, params="all", prior_weight=0.0), task)
    held = method.adapt(target, AdaptationBudget(steps=50, lr=1e-2, params="all", prior_weight=10.0), task)
    anchor = dict(method.model.named_parameters())

    def dist(m) -> float:
        return sum(float(((p.detach() - anchor[n].detach()) ** 2).sum()) for n, p in m.named_parameters())

    assert 0 < dist(held) < dist(free)


def test_bad_settings_are_refused() -> None:
    env = FAMILY.train[0].make_env()
    spaces = (env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="n_top=0 is not allowed"):
        LatentTask(*spaces, n_top=0)
    with pytest.raises(ValueError, match="infer_lr=-1 is not allowed"):
        LatentTask(*spaces, infer_lr=-1)
    with pytest.raises(RuntimeError, match="not pretrained"):
        LatentTask(*spaces).infer([])
