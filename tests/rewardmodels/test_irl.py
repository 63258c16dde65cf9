"""MaxEnt IRL: exact soft value iteration on the grid, and recovery of a goal-reaching reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import TINY, make_demonstrations

from rewardshare.envs import GoalTask, GridMDP
from rewardshare.rewardmodels import RewardModel, fit, make_loss
from rewardshare.rewardmodels.objectives import (
    MaxEntIRLObjective,
    TerminationLink,
    boltzmann_log_likelihood,
    default_iterations,
    demonstration_log_likelihood,
    greedy_policy,
    reward_table,
    soft_value_iteration,
)


def test_soft_value_iteration_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(6, 3))
    nxt = rng.integers(6, size=(6, 3))
    v = np.zeros(6)
    for _ in range(200):
        q = reward + 0.8 * v[nxt]
        v = np.log(np.exp(q).sum(axis=1))
    v_t, q_t, logp_t = soft_value_iteration(torch.as_tensor(reward), torch.as_tensor(nxt), gamma=0.8, iterations=200)
    np.testing.assert_allclose(v_t.numpy(), v, rtol=1e-10)
    np.testing.assert_allclose(q_t.numpy(), q, rtol=1e-10)
    np.testing.assert_array_equal(logp_t.numpy(), (q_t - v_t[:, None]).numpy())
    np.testing.assert_allclose(torch.logsumexp(logp_t, dim=1).numpy(), 0.0, atol=1e-10)
    # numpy in, numpy out, same numbers
    v_n, q_n, logp_n = soft_value_iteration(reward, nxt, gamma=0.8, iterations=200)
    assert isinstance(v_n, np.ndarray)
    np.testing.assert_array_equal(logp_n, logp_t.numpy())
    assert default_iterations(0.9) == 88
    with pytest.raises(ValueError, match="gamma=1.0"):
        soft_value_iteration(torch.as_tensor(reward), torch.as_tensor(nxt), gamma=1.0)
    with pytest.raises(ValueError, match="temperature=0"):
        soft_value_iteration(reward, nxt, temperature=0)


def test_soft_value_iteration_runs_a_batch_of_reward_tables_like_each_alone():
    rng = np.random.default_rng(3)
    rewards = torch.as_tensor(rng.normal(size=(3, 6, 4)))
    nxt = torch.as_tensor(rng.integers(6, size=(6, 4)))
    batched = soft_value_iteration(rewards, nxt, gamma=0.9, iterations=40)
    assert batched.log_policy.shape == (3, 6, 4) and batched.value.shape == (3, 6)
    for i in range(3):
        alone = soft_value_iteration(rewards[i], nxt, gamma=0.9, iterations=40)
        torch.testing.assert_close(batched.log_policy[i], alone.log_policy, rtol=0, atol=1e-12)
        torch.testing.assert_close(batched.value[i], alone.value, rtol=0, atol=1e-12)


def test_termination_link_recovers_a_logistic_and_stays_finite_when_classes_separate():
    gen = torch.Generator().manual_seed(0)
    reward = 4 * torch.rand(20000, generator=gen) - 2
    done = torch.rand(20000, generator=gen) < torch.sigmoid(1.5 * reward - 0.5)
    link = TerminationLink.fit(reward, done, l2=1e-6)
    assert link.scale == pytest.approx(1.5, abs=0.1) and link.bias == pytest.approx(-0.5, abs=0.1)
    # the teacher's goal-reaching reward (+6) stands apart from every other (<= +1): finite, and decisive
    sep = TerminationLink.fit(torch.tensor([6.0] * 5 + [1.0, -1.0, 0.0] * 100),
                              torch.tensor([True] * 5 + [False] * 300))
    assert 0 < sep.scale < 100
    logp = sep.log_prob(torch.tensor([6.0, 1.0]), torch.tensor([True, True]))
    assert float(logp[0]) > -0.5 and float(logp[1]) < -3
    # log p(done) and log p(not done) are the two sides of one Bernoulli
    both = sep.log_prob(torch.tensor([3.0, 3.0]), torch.tensor([True, False])).exp().sum()
    assert float(both) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="ended episodes and of steps that did not"):
        TerminationLink.fit(torch.ones(4), torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="l2=0 is not allowed"):
        TerminationLink.fit(torch.ones(2), torch.tensor([True, False]), l2=0)


def test_latent_losses_score_many_contexts_in_one_pass_and_read_where_episodes_end():
    demos = make_demonstrations(episodes=3, seed=0)
    env = TINY.make_env(obs_mode="coords", observe_goal=False)
    objective = make_loss("maxent_irl", demos, env=env)
    assert objective.items["done"].sum() == int(np.sum(demos.done)) > 0
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), context_dim=2, seed=0)
    contexts = torch.tensor([[0.0, 0.0], [4.0, 4.0], [1.0, -2.0]])
    with torch.no_grad():
        batched = objective.latent_losses(model, contexts)
        for i, c in enumerate(contexts):
            one = objective.with_context({TINY.id: c.tolist()})(model)
            assert float(batched[i]) == pytest.approx(float(one), rel=1e-5)
        # with a link, each step adds -log p(done_t | R(s_t, a_t)) (mean over steps)
        link = TerminationLink(scale=2.0, bias=-3.0)
        with_link = objective.latent_losses(model, contexts, link)
        table = reward_table(model, objective.shared["irl_obs"][0], objective.shared["irl_next_state"],
                             objective.shared["irl_done"][0], contexts)
        r = table[:, objective.items["state"], objective.items["action"]]
        extra = -link.log_prob(r, objective.items["done"]).sum(dim=1) / len(objective)
        torch.testing.assert_close(with_link, batched + extra)


def test_the_done_table_marks_only_cells_where_demonstrations_ended():
    env = TINY.make_env(obs_mode="coords", observe_goal=False)
    reached = make_demonstrations(episodes=2, seed=0)
    assert reached.done.any()
    # demonstrations that reach the goal show where episodes end: every move into it, as the env reports
    np.testing.assert_array_equal(make_loss("maxent_irl", reached, env=env).shared["irl_done"][0].numpy(),
                                  GridMDP.from_env(env, TINY.goal).done)
    # truncated ones do not: the goal is not read from the task id
    cut = make_demonstrations(episodes=2, seed=0, max_steps=1)
    assert not cut.done.any()
    assert not make_loss("maxent_irl", cut, env=env).shared["irl_done"].any()


def test_temperature_rescales_the_reward():
    # V_tau(R) = tau * V_1(R / tau) and the policies agree: a temperature is a reward scale
    rng = np.random.default_rng(1)
    reward = rng.normal(size=(7, 4))
    nxt = rng.integers(7, size=(7, 4))
    hot = soft_value_iteration(reward, nxt, gamma=0.9, temperature=2.5)
    plain = soft_value_iteration(reward / 2.5, nxt, gamma=0.9)
    np.testing.assert_allclose(hot.value, 2.5 * plain.value, rtol=1e-12)
    np.testing.assert_allclose(hot.log_policy, plain.log_policy, atol=1e-12)


def test_boltzmann_likelihood_of_expert_demonstrations_names_their_goal():
    # the likelihood of a Boltzmann-rational expert, one reward table per candidate goal: an exact goal posterior
    env = GoalTask("open", 5, (4, 4)).make_env()
    goals = [(4, 4), (0, 4), (4, 0)]
    mdps = [GridMDP.from_env(env, g) for g in goals]
    path = [((0, 0), 1), ((0, 1), 2), ((1, 1), 1), ((1, 2), 2), ((2, 2), 2), ((3, 2), 1), ((3, 3), 2), ((4, 3), 1)]
    states = mdps[0].state_of(np.array([c for c, _ in path]))
    actions = np.array([a for _, a in path])
    log_lik = [
        boltzmann_log_likelihood(m.done.astype(np.float64), m, states, actions, gamma=0.9, temperature=0.5)
        for m in mdps
    ]
    assert int(np.argmax(log_lik)) == 0 and all(np.isfinite(log_lik))
    logp = soft_value_iteration(torch.as_tensor(mdps[0].done, dtype=torch.float64), mdps[0], temperature=0.5).log_policy
    ll = demonstration_log_likelihood(logp, torch.as_tensor(states), torch.as_tensor(actions))
    assert float(ll) == pytest.approx(log_lik[0], rel=1e-12)


def _reaches_goal(model: RewardModel, task: GoalTask) -> float:
    mdp = GridMDP.from_env(task.make_env())
    with torch.no_grad():
        r = reward_table(model, torch.as_tensor(mdp.obs), torch.as_tensor(mdp.next_state), torch.as_tensor(mdp.done))
    policy = greedy_policy(r, mdp.next_state, gamma=0.9)
    hits = 0
    for start in range(mdp.n_states):
        s = start
        for _ in range(mdp.n_states):
            s = mdp.next_state[s, policy[s]]
            if s == mdp.goal_state:
                hits += 1
                break
    return hits / mdp.n_states


def test_maxent_irl_recovers_a_reward_whose_optimal_policy_reaches_the_goal():
    demos = make_demonstrations(episodes=15, seed=0)
    env = TINY.make_env()
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(32, 32), seed=0)
    objective = make_loss("maxent_irl", demos, env=env)
    assert isinstance(objective, MaxEntIRLObjective) and len(objective) == demos.n_steps
    with torch.no_grad():
        before = float(objective(model))
    untrained = _reaches_goal(model, TINY)
    result = fit(model, demos, loss="maxent_irl", env=env, epochs=120, lr=5e-3, batch_size=4096)
    assert result.loss == "maxent_irl"
    assert result.final_train_loss < 0.5 * before
    assert untrained < 1.0 and _reaches_goal(model, TINY) == 1.0


def test_maxent_irl_handles_several_tasks_and_gradients_reach_the_model():
    other = GoalTask("open", 5, (0, 4))
    demos_a, demos_b = make_demonstrations(episodes=3, seed=0), make_demonstrations(other, episodes=3, seed=1)
    from rewardshare.feedback import Demonstrations

    both = Demonstrations.concatenate([demos_a, demos_b])
    env = TINY.make_env(obs_mode="coords", observe_goal=False)
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), context_dim=2, seed=0)
    objective = make_loss("maxent_irl", both, env=env).with_context({TINY.id: [4.0, 4.0], other.id: [0.0, 4.0]})
    assert objective.task_ids == sorted([TINY.id, other.id]) and set(objective.mdps) == set(objective.task_ids)
    loss = objective(model)
    loss.backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    # the per-task loss is the step-weighted mean of the single-task losses
    parts = [make_loss("maxent_irl", d, env=env).with_context({t.id: c}) for d, t, c in
             ((demos_a, TINY, [4.0, 4.0]), (demos_b, other, [0.0, 4.0]))]
    with torch.no_grad():
        expected = sum(float(p(model)) * len(p) for p in parts) / len(objective)
        assert float(objective(model)) == pytest.approx(expected, rel=1e-5)


def test_maxent_irl_needs_a_grid_env():
    demos = make_demonstrations(episodes=2)
    demos.metadata.clear()
    with pytest.raises(ValueError, match="needs the grid's dynamics: pass env="):
        make_loss("maxent_irl", demos)
    import gymnasium as gym

    with pytest.raises(TypeError, match="GridGoalEnv"):
        make_loss("maxent_irl", demos, env=gym.make("FrozenLake-v1"))
