"""Posterior rewards: exact mean / std / pessimistic values through every wrapper, table path == forward path."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardshare.envs import GoalTask, GridGoalEnv, GridGoalVectorEnv
from rewardshare.envs.layouts import make_layout
from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior
from rewardshare.wrappers import (
    LearnedRewardVecEnvWrapper,
    LearnedRewardVectorWrapper,
    LearnedRewardWrapper,
    PosteriorReward,
    RewardOptions,
    as_reward_source,
)

N_S, N_A, N_ENVS, T = 16, 4, 3, 80
# member tables on FrozenLake 4x4 (Discrete(16) x Discrete(4)): r_m(s, a) = U[m, s] + V[m, a] with dyadic values,
# so float32 model outputs and float64 mean / std are exact and the expected values below are known in closed form
U = np.stack([np.arange(N_S) * 0.25, -np.arange(N_S) * 0.5])
V = np.array([[2.0, 1.0, 0.0, -1.0], [-2.0, 0.5, 0.0, 3.0]])
W = np.array([0.25, 0.75])


def _lake() -> gym.Env:
    return gym.make("FrozenLake-v1", is_slippery=False, max_episode_steps=12)


def _linear_model(u: np.ndarray, v: np.ndarray, context: np.ndarray | None = None) -> RewardModel:
    """A linear model on one-hot features: r(s, a[, z]) = u[s] + v[a] (+ context . z)."""
    env = _lake()
    dim = 0 if context is None else len(context)
    m = RewardModel(env.observation_space, env.action_space, hidden_sizes=(), context_dim=dim, seed=0)
    weights = np.concatenate([u, v] + ([] if context is None else [context]))
    with torch.no_grad():
        m.head.weight.copy_(torch.as_tensor(weights, dtype=torch.float32)[None])
        m.head.bias.zero_()
    return m


def _tables() -> np.ndarray:
    return U[:, :, None] + V[:, None, :]  # (2, S, A)


def _expected(beta: float) -> np.ndarray:
    r = _tables()
    mean = 0.25 * r[0] + 0.75 * r[1]
    std = np.sqrt(0.25 * (r[0] - mean) ** 2 + 0.75 * (r[1] - mean) ** 2)
    return mean - beta * std


def _ensemble() -> PosteriorReward:
    return PosteriorReward.from_models([_linear_model(U[0], V[0]), _linear_model(U[1], V[1])], W)


def test_two_members_exact_mean_std_and_pessimistic() -> None:
    src = _ensemble()
    s = np.repeat(np.arange(N_S), N_A)
    a = np.tile(np.arange(N_A), N_S)
    mean, std = src.moments(s, a)
    r = _tables()
    assert np.array_equal(src.member_rewards(s, a), r.reshape(2, -1))
    assert np.array_equal(mean, _expected(0.0).reshape(-1))
    assert np.array_equal(mean - 2.0 * std, _expected(2.0).reshape(-1))
    # one entry by hand: s=0, a=0: members 2 and -2, weights 1/4, 3/4 -> mean -1, var 9/4 + 3/4 = 3
    assert (mean[0], std[0]) == (-1.0, math.sqrt(3.0))
    assert src.with_beta(2.0)(s[:1], a[:1], s[:1], np.zeros(1, bool), np.zeros(1))[0] == -1.0 - 2.0 * math.sqrt(3.0)
    assert src.config()["weights"] == [0.25, 0.75] and src.n_members == 2


def test_uniform_weights_equal_the_ensemble_mean_and_spread() -> None:
    models = [_linear_model(U[0], V[0]), _linear_model(U[1], V[1])]
    s, a = np.arange(N_S), np.arange(N_S) % N_A
    post = as_reward_source(models, uncertainty="pessimistic", beta=0.5)
    bonus = as_reward_source(models, spread_bonus=-0.5)  # the ensemble's population std, negated
    np.testing.assert_allclose(post(s, a, s, np.zeros(N_S, bool), np.zeros(N_S)),
                               bonus(s, a, s, np.zeros(N_S, bool), np.zeros(N_S)), rtol=0, atol=1e-12)


def test_zero_weight_members_are_dropped_and_a_single_member_is_its_own_reward() -> None:
    src = PosteriorReward.from_models([_linear_model(U[0], V[0]), _linear_model(U[1], V[1])], [0.0, 3.0], beta=5.0)
    s, a = np.arange(N_S), np.arange(N_S) % N_A
    assert src.n_members == 1 and src.weights.tolist() == [1.0]
    assert np.array_equal(src(s, a, s, np.zeros(N_S, bool), np.zeros(N_S)), _tables()[1][s, a])


def _latent() -> RewardModel:
    """A latent-task model r(s, a, z) = U[0, s] + V[0, a] + z . (2, -2) with modes z_0 = (1, 0), z_1 = (0, 1) of
    probabilities 1/4, 3/4: its members are the base table + 2 and the base table - 2."""
    m = _linear_model(U[0], V[0], context=np.array([2.0, -2.0]))
    m.metadata["latent_posterior"] = {"z": [[1.0, 0.0], [0.0, 1.0]], "weights": [0.25, 0.75]}
    return m


def test_latent_posterior_runs_all_modes_in_one_forward() -> None:
    model = _latent()
    calls = []
    predict = model.predict
    model.predict = lambda *a, **k: calls.append(len(a[0])) or predict(*a, **k)  # type: ignore[method-assign]
    src = PosteriorReward.from_latent(model, beta=1.0)
    s, a = np.arange(N_S), np.arange(N_S) % N_A
    mean, std = src.moments(s, a)
    base = _tables()[0][s, a]
    assert calls == [2 * N_S]  # both modes in one predict
    # members base + 2 and base - 2 with weights 1/4, 3/4: mean base - 1, std sqrt(3)
    assert np.array_equal(mean, base - 1.0) and np.array_equal(std, np.full(N_S, math.sqrt(3.0)))
    assert src.kind == "latent_posterior" and src.config()["members"]["z"] == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("beta", [None, 0.0, 2.0])
@pytest.mark.parametrize("use_table", [True, False])
def test_single_env_wrapper_gives_the_exact_posterior_reward(beta: float | None, use_table: bool) -> None:
    options = (RewardOptions(uncertainty="mean", use_table=use_table) if beta is None
               else RewardOptions(uncertainty="pessimistic", beta=beta, use_table=use_table))
    expected = _expected(0.0 if beta is None else beta)
    env = LearnedRewardWrapper(_lake(), _ensemble(), options)
    assert (env.table is not None) == use_table
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for a in rng.integers(N_A, size=T).tolist():
        nxt, r, term, trunc, info = env.step(a)
        assert r == expected[obs, a]
        assert info["true_reward"] == float(term and nxt == N_S - 1)  # the env's own reward is kept
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    assert env.table_misses == 0


def _sb3_rewards(reward, options: RewardOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    venv = DummyVecEnv([_lake for _ in range(N_ENVS)])
    venv.seed(3)
    w = LearnedRewardVecEnvWrapper(venv, reward, options)
    obs = w.reset()
    acts = np.random.default_rng(2).integers(N_A, size=(T, N_ENVS))
    got, want, true = [], [], []
    for t in range(T):
        nxt, r, _, infos = w.step(acts[t])
        got.append(r)
        want.append([obs[i] for i in range(N_ENVS)])
        true.append([i["true_reward"] for i in infos])
        obs = nxt
    return np.array(got), np.array(want), np.array(true)


@pytest.mark.parametrize("kind", ["ensemble", "latent"])
def test_sb3_vec_wrapper_table_and_forward_paths_give_the_exact_rewards(kind: str) -> None:
    reward = _ensemble() if kind == "ensemble" else _latent()
    options = dict(uncertainty="pessimistic", beta=2.0)
    table_r, prev_obs, true = _sb3_rewards(reward, RewardOptions(use_table=True, **options))
    fwd_r, prev_obs2, true2 = _sb3_rewards(reward, RewardOptions(use_table=False, **options))
    assert np.array_equal(table_r, fwd_r) and np.array_equal(prev_obs, prev_obs2) and np.array_equal(true, true2)
    acts = np.random.default_rng(2).integers(N_A, size=(T, N_ENVS))
    if kind == "ensemble":
        expected = _expected(2.0)[prev_obs, acts]
    else:  # base +- 2: mean base - 1, std sqrt(3)
        expected = _tables()[0][prev_obs, acts] - 1.0 - 2.0 * math.sqrt(3.0)
    assert np.array_equal(table_r, expected.astype(np.float32))


@pytest.mark.parametrize("use_table", [True, False])
def test_gymnasium_vector_wrapper_gives_the_exact_rewards(use_table: bool) -> None:
    venv = SyncVectorEnv([_lake for _ in range(N_ENVS)])
    w = LearnedRewardVectorWrapper(venv, _ensemble(), RewardOptions(uncertainty="pessimistic", beta=2.0,
                                                                     use_table=use_table))
    assert (w.table is not None) == use_table
    obs, _ = w.reset(seed=4)
    expected = _expected(2.0)
    resetting = np.zeros(N_ENVS, dtype=bool)
    n_checked = 0
    for a in np.random.default_rng(5).integers(N_A, size=(T, N_ENVS)):
        nxt, r, term, trunc, infos = w.step(a)
        for i in range(N_ENVS):
            if resetting[i]:  # NEXT_STEP autoreset: a reset step is no transition
                assert r[i] == 0.0
            else:
                assert r[i] == expected[obs[i], a[i]]
                n_checked += 1
        assert np.array_equal(infos["true_reward"], ((term & (nxt == N_S - 1)) & ~resetting).astype(float))
        obs, resetting = nxt, term | trunc
    assert n_checked > T and w.table_misses == 0


def _goal_posterior() -> GoalPosterior:
    return GoalPosterior(make_layout("open", 5), candidates=[(4, 4), (0, 4), (2, 0)], prior=[0.25, 0.5, 0.25])


def _goal_expected(post: GoalPosterior, pos: np.ndarray, act: np.ndarray, beta: float) -> np.ndarray:
    r = post.rewards[:, pos[:, 0] * 5 + pos[:, 1], act]  # (G, B)
    mean = np.einsum("g,gb->b", post.weights, r)
    std = np.sqrt(np.einsum("g,gb->b", post.weights, (r - mean) ** 2))
    return mean - beta * std


@pytest.mark.parametrize("uncertainty", [None, "mean", "pessimistic"])
def test_goal_posterior_on_the_grid_table_and_forward(uncertainty: str | None) -> None:
    post = _goal_posterior()
    beta = 1.5 if uncertainty == "pessimistic" else 0.0
    kw = {"beta": beta} if uncertainty == "pessimistic" else {}
    runs = {}
    for use_table in (True, False):
        env = LearnedRewardWrapper(GridGoalEnv(size=5, start="random", max_steps=15), post,
                                   RewardOptions(uncertainty=uncertainty, use_table=use_table, **kw))
        assert (env.table is not None) == use_table and env.source.kind == "goal_posterior"
        _, info = env.reset(seed=0)
        pos, acts, rewards = [], [], []
        for a in np.random.default_rng(6).integers(4, size=60).tolist():
            pos.append(info["agent_pos"])
            acts.append(a)
            _, r, term, trunc, info = env.step(a)
            rewards.append(r)
            if term or trunc:
                _, info = env.reset()
        runs[use_table] = (np.array(pos), np.array(acts), np.array(rewards))
    (pos, acts, r_table), (_, _, r_fwd) = runs[True], runs[False]
    assert np.array_equal(r_table, r_fwd)
    np.testing.assert_allclose(r_table, _goal_expected(post, pos, acts, beta), rtol=1e-12, atol=1e-12)
    if uncertainty != "pessimistic":  # the posterior mean is GoalPosterior.reward (float32 there)
        np.testing.assert_allclose(r_table, post.reward(pos, acts), rtol=1e-6, atol=1e-6)


def test_goal_posterior_on_the_native_vector_env_table_path() -> None:
    post = _goal_posterior()
    venv = GridGoalVectorEnv(8, size=5, start="random", max_steps=15)
    w = LearnedRewardVectorWrapper(venv, post, RewardOptions(uncertainty="pessimistic", beta=1.0))
    assert w.table is not None
    _, info = w.reset(seed=0)
    resetting = np.zeros(8, dtype=bool)
    for a in np.random.default_rng(7).integers(4, size=(30, 8)):
        pos = np.asarray(info["agent_pos"])
        _, r, term, trunc, info = w.step(a)
        want = _goal_expected(post, pos, a, 1.0)
        np.testing.assert_allclose(r[~resetting], want[~resetting], rtol=1e-12, atol=1e-12)
        resetting = term | trunc
    assert w.table_misses == 0


def test_uncertainty_options_are_validated() -> None:
    with pytest.raises(ValueError, match=r"uncertainty='optimistic' is not allowed: use None, 'mean'"):
        RewardOptions(uncertainty="optimistic")
    with pytest.raises(ValueError, match=r"beta=-1 is not allowed: use a finite float >= 0"):
        RewardOptions(uncertainty="pessimistic", beta=-1)
    with pytest.raises(ValueError, match=r"beta=nan is not allowed"):
        RewardOptions(uncertainty="pessimistic", beta=float("nan"))
    with pytest.raises(ValueError, match=r"beta=2.0 is only read with uncertainty='pessimistic' \(uncertainty='mean'"):
        RewardOptions(uncertainty="mean", beta=2.0)
    with pytest.raises(ValueError, match=r"spread_bonus=0.5 and uncertainty='pessimistic' are both set"):
        RewardOptions(uncertainty="pessimistic", spread_bonus=0.5)
    opts = RewardOptions(uncertainty="pessimistic", beta=2)
    assert opts.beta == 2.0 and isinstance(opts.beta, float)
    assert opts.to_dict()["uncertainty"] == "pessimistic" and opts.without_source_options().uncertainty is None


def test_uncertainty_needs_a_posterior() -> None:
    env = _lake()
    plain = _linear_model(U[0], V[0])
    with pytest.raises(ValueError, match=r"uncertainty='mean' needs a posterior over rewards .* got a single "
                                         r"RewardModel without metadata\['latent_posterior'\]"):
        LearnedRewardWrapper(env, plain, RewardOptions(uncertainty="mean"))
    with pytest.raises(ValueError, match=r"uncertainty='pessimistic' needs a posterior .* got reward='true'"):
        LearnedRewardWrapper(env, "true", RewardOptions(uncertainty="pessimistic"))
    with pytest.raises(ValueError, match=r"got a list of 1 model\(s\) \(an ensemble needs at least 2\)"):
        as_reward_source([plain], uncertainty="mean")
    with pytest.raises(ValueError, match=r"model.metadata has no 'latent_posterior'"):
        PosteriorReward.from_latent(plain)
    bad = _latent()
    bad.metadata["latent_posterior"] = {"z": [[1.0, 0.0, 0.0]], "weights": [1.0]}
    with pytest.raises(ValueError, match=r"latent_posterior z of shape \(1, 3\) is not allowed: .*shape \(M, 2\)"):
        PosteriorReward.from_latent(bad)
    with pytest.raises(ValueError, match=r"weights of shape \(3,\) are not allowed: use 2 finite values >= 0"):
        PosteriorReward.from_models([plain, plain], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"weights of shape \(2,\) are not allowed"):
        PosteriorReward.from_models([plain, plain], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"beta=-0.5 is not allowed"):
        PosteriorReward.from_models([plain, plain], beta=-0.5)
    with pytest.raises(TypeError, match=r"posterior=str is not allowed"):
        PosteriorReward.from_goal_posterior("goal")
    grid = GridGoalEnv(size=5)
    with pytest.raises(ValueError, match=r"does not fit the env|does not fit this env"):
        LearnedRewardWrapper(grid, _ensemble(), RewardOptions(uncertainty="mean"))


def test_a_posterior_source_takes_the_options_beta() -> None:
    src = _ensemble()
    assert as_reward_source(src) is src and src.beta == 0.0
    assert as_reward_source(src, uncertainty="pessimistic").beta == 1.0  # DEFAULT_BETA
    strict = as_reward_source(src, uncertainty="pessimistic", beta=3.0)
    assert strict.beta == 3.0 and strict.members is src.members and strict.name.endswith("pessimistic3")
    assert as_reward_source(_latent()).name == "model"  # no option: the model at its MAP latent, as before


def test_train_agent_accepts_the_uncertainty_options() -> None:
    from rewardshare.agents import train_agent

    task = GoalTask("open", 5, (4, 4))
    env = task.make_env()
    models = [RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=s) for s in range(2)]
    curve = train_agent("ppo", task, models, seed=0, total_timesteps=256, eval_every=256, eval_episodes=2, n_envs=2,
                        reward_options=RewardOptions(uncertainty="pessimistic", beta=0.5))
    assert curve.metadata["reward"]["kind"] == "ensemble_posterior" and curve.metadata["reward"]["beta"] == 0.5
    assert curve.metadata["reward_options"]["uncertainty"] == "pessimistic"


def test_a_large_table_is_built_in_chunks_of_model_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardshare.wrappers import table as table_module

    monkeypatch.setattr(table_module, "TABLE_CHUNK_ROWS", 8)  # 2 members: 4 table rows per call
    src = _ensemble().with_beta(2.0)
    calls = []
    rewards = src.members.rewards
    src.members.rewards = lambda obs, *a: calls.append(len(obs)) or rewards(obs, *a)  # type: ignore[method-assign]
    env = LearnedRewardWrapper(_lake(), src, RewardOptions(use_table=True))
    assert calls == [4] * (N_S * N_A // 4)
    assert np.array_equal(env.table.values[..., 0, 0], _expected(2.0))
