"""RewardModel: spaces, shapes, one inference path, context, errors, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import rewardshare  # noqa: F401  (registers the grid envs)
from rewardshare.rewardmodels import RewardModel, space_from_dict, space_to_dict


def _batch(env: gym.Env, n: int = 6, seed: int = 0):
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    o, a, o2, d = [], [], [], []
    for _ in range(n):
        act = env.action_space.sample()
        nxt, _, term, trunc, _ = env.step(act)
        o.append(obs), a.append(act), o2.append(nxt), d.append(term)
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    return np.array(o), np.array(a), np.array(o2), np.array(d)


ENVS = {
    "grid-coords": lambda: gym.make("rewardshare/GridGoal-v0"),
    "grid-onehot": lambda: gym.make("rewardshare/GridGoal-FourRooms-v0", obs_mode="onehot"),
    "grid-grid": lambda: gym.make("rewardshare/GridGoal-v0", obs_mode="grid", observe_goal=True),
    "frozenlake": lambda: gym.make("FrozenLake-v1"),
    "cartpole": lambda: gym.make("CartPole-v1"),
    "pendulum": lambda: gym.make("Pendulum-v1"),  # Box actions
}


@pytest.mark.parametrize("name", list(ENVS))
def test_forward_and_predict_agree_on_every_space(name):
    env = ENVS[name]()
    model = RewardModel(env.observation_space, env.action_space, use_next_obs=True, use_done=True, seed=0)
    obs, act, nxt, done = _batch(env)
    out = model.predict(obs, act, nxt, done)
    assert out.dtype == np.float32 and out.shape == (6,)
    with torch.no_grad():
        ref = model(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(nxt), torch.as_tensor(done))
    np.testing.assert_array_equal(out, ref.numpy())
    # the batch dimension is independent: row i alone gives the same reward
    np.testing.assert_allclose(model.predict(obs[2:3], act[2:3], nxt[2:3], done[2:3]), out[2:3], rtol=1e-6)


def test_input_size_matches_featurizers():
    env = gym.make("rewardshare/GridGoal-v0")  # Box (2,), Discrete(4)
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), use_next_obs=True,
                        use_done=True, context_dim=3)
    assert model.input_dim == 2 + 4 + 2 + 1 + 3
    assert model.trunk[0].in_features == model.input_dim and model.head.in_features == 8
    lake = gym.make("FrozenLake-v1")
    assert RewardModel(lake.observation_space, lake.action_space).input_dim == 16 + 4


def test_action_is_one_hot_not_a_scalar():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, seed=0)
    obs = np.zeros((4, 2), np.float32)
    feats = model.features(torch.as_tensor(obs), torch.arange(4))
    np.testing.assert_array_equal(feats[:, 2:].numpy(), np.eye(4))
    # coords 0..7 are rescaled to [-1, 1]
    high = model.features(torch.full((1, 2), 7.0), torch.zeros(1, dtype=torch.int64))
    np.testing.assert_allclose(high[0, :2].numpy(), [1.0, 1.0], rtol=1e-6)


def test_shape_and_value_errors_name_expected_and_actual():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, use_next_obs=True)
    obs = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"obs has shape \(3, 3\): expected \(B, 2\)"):
        model.predict(np.zeros((3, 3)), [0, 1, 2], obs)
    with pytest.raises(ValueError, match=r"action has shape \(2,\): expected \(3,\)"):
        model.predict(obs, [0, 1], obs)
    with pytest.raises(ValueError, match="next_obs is required"):
        model.predict(obs, [0, 1, 2])
    with pytest.raises(ValueError, match=r"outside Discrete\(4"):
        model.predict(obs, [0, 1, 4], obs)
    with pytest.raises(TypeError, match="Discrete action must be an integer"):
        model(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="context_dim=0"):
        model.predict(obs, [0, 1, 2], obs, context=np.zeros(2))
    with pytest.raises(TypeError, match="not supported"):
        RewardModel(spaces.MultiBinary(3), env.action_space)
    with pytest.raises(ValueError, match="hidden_sizes"):
        RewardModel(env.observation_space, env.action_space, hidden_sizes=(0,))
    with pytest.raises(ValueError, match="activation"):
        RewardModel(env.observation_space, env.action_space, activation="gelu-ish")


def test_sb3_style_actions_are_accepted():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, seed=0)
    obs = np.zeros((3, 2), np.float32)
    flat = model.predict(obs, np.array([0, 1, 2]))
    np.testing.assert_array_equal(model.predict(obs, np.array([[0], [1], [2]])), flat)
    np.testing.assert_array_equal(model.predict(obs, np.array([0.0, 1.0, 2.0])), flat)
    with pytest.raises(TypeError, match="non-integer"):
        model.predict(obs, np.array([0.5, 1.0, 2.0]))


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    env = gym.make("rewardshare/GridGoal-v0")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = RewardModel(env.observation_space, env.action_space, seed=7)
    after = torch.rand(1)
    b = RewardModel(env.observation_space, env.action_space, seed=7)
    c = RewardModel(env.observation_space, env.action_space, seed=8)
    assert torch.equal(before, after)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    assert not torch.equal(a.head.weight, c.head.weight)


def test_context_fixed_learnable_and_per_sample():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, context_dim=2, seed=0)
    assert "context" in dict(model.named_buffers()) and model.parameter_group("all") == list(model.parameters())
    obs, act = np.zeros((2, 2), np.float32), np.array([0, 1])
    base = model.predict(obs, act)
    model.set_context([1.0, -1.0])
    moved = model.predict(obs, act)
    assert not np.allclose(base, moved)
    # a per-sample context overrides the stored one row by row
    per = model.predict(obs, act, context=np.array([[0.0, 0.0], [1.0, -1.0]], np.float32))
    np.testing.assert_allclose(per, [base[0], moved[1]], rtol=1e-6)
    model.set_context([0.5, 0.5], learnable=True)
    assert [n for n, _ in model.named_parameters()][0] == "context"
    assert model.parameter_group("context")[0] is model.context
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        model.set_context([1.0, 2.0, 3.0])
    plain = RewardModel(env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="context_dim=0"):
        plain.set_context([1.0])
    with pytest.raises(ValueError, match="not learnable"):
        plain.parameter_group("context")


def test_parameter_groups_and_clone():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8, 8), seed=0)
    assert len(model.parameter_group("trunk")) == 4 and len(model.parameter_group("head")) == 2
    twin = model.clone()
    with torch.no_grad():
        twin.head.bias.add_(1.0)
    obs, act = np.zeros((1, 2), np.float32), np.array([0])
    np.testing.assert_allclose(twin.predict(obs, act) - model.predict(obs, act), [1.0], rtol=1e-5)
    twin.reset_head(seed=1)
    assert not torch.equal(twin.head.weight, model.head.weight)
    with pytest.raises(ValueError, match="name='body'"):
        model.parameter_group("body")


def test_config_round_trip_rebuilds_the_architecture():
    env = gym.make("CartPole-v1")
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(16,), use_done=True, context_dim=2,
                        learn_context=True, activation="tanh")
    twin = RewardModel.from_config(model.config())
    assert twin.config() == model.config()
    twin.load_state_dict(model.state_dict())
    obs, act, _, done = _batch(env)
    np.testing.assert_array_equal(twin.predict(obs, act, done=done), model.predict(obs, act, done=done))
    # infinite CartPole bounds survive JSON and are not normalized
    space = space_from_dict(space_to_dict(env.observation_space))
    assert space == env.observation_space


def test_check_spaces_names_both_pairs():
    small = gym.make("rewardshare/GridGoal-v0", obs_mode="onehot")
    big = gym.make("rewardshare/GridGoal-FourRooms-v0", obs_mode="onehot")
    model = RewardModel(small.observation_space, small.action_space)
    model.check_spaces(small.observation_space, small.action_space)
    pattern = r"model reads observation_space=Box\(shape=\(64,\).*env has observation_space=Box\(shape=\(81,\)"
    with pytest.raises(ValueError, match=pattern):
        model.check_spaces(big.observation_space, big.action_space)


def test_device_follows_to():
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, context_dim=2).to("meta")
    assert model.device == torch.device("meta") and model.context.device == torch.device("meta")
    assert model.obs_featurizer.scale.device == torch.device("meta")


def test_unseeded_models_differ_and_seeded_models_repeat():
    obs, act = spaces.Box(0.0, 7.0, (2,)), spaces.Discrete(4)
    a, b = RewardModel(obs, act), RewardModel(obs, act)
    assert not torch.equal(a.head.weight, b.head.weight)  # seed=None draws from the global RNG, which advances
    c, d = RewardModel(obs, act, seed=3), RewardModel(obs, act, seed=3)
    assert torch.equal(c.head.weight, d.head.weight)
