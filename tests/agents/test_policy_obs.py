"""The policy's one-hot view of a GridGoal state, decoupled from the observation the reward model reads."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardshare.agents.policy_obs import GridOneHot, PolicyObsVecEnvWrapper, resolve_policy_obs
from rewardshare.envs import GridGoalEnv


@pytest.mark.parametrize("obs_mode", ["coords", "grid", "onehot"])
@pytest.mark.parametrize("observe_goal", [False, True])
def test_onehot_view_equals_the_onehot_env(obs_mode: str, observe_goal: bool) -> None:
    kw = dict(layout="four_rooms", size=7, observe_goal=observe_goal, goal="random", start="random")
    env = GridGoalEnv(obs_mode=obs_mode, **kw)
    twin = GridGoalEnv(obs_mode="onehot", **kw)
    view = GridOneHot(env)
    assert view.observation_space == twin.observation_space
    obs, _ = env.reset(seed=4)
    o2, _ = twin.reset(seed=4)
    batch, expected = [obs], [o2]
    for a in np.random.default_rng(0).integers(4, size=40):
        obs, _, term, trunc, _ = env.step(int(a))
        o2, *_ = twin.step(int(a))
        np.testing.assert_array_equal(view.one(obs), o2)
        batch.append(obs)
        expected.append(o2)
        if term or trunc:
            break
    np.testing.assert_array_equal(view(np.stack(batch)), np.stack(expected))


def test_vec_wrapper_converts_terminal_observation() -> None:
    venv = DummyVecEnv([lambda: GridGoalEnv(size=4, start=(3, 2))])
    w = PolicyObsVecEnvWrapper(venv, GridOneHot(GridGoalEnv(size=4)))
    obs = w.reset()
    assert obs.shape == (1, 16) and obs[0, 14] == 1.0
    obs, _, dones, infos = w.step(np.array([1]))  # reaches the goal (3, 3)
    assert dones[0]
    term = infos[0]["terminal_observation"]
    assert term.shape == (16,) and term[15] == 1.0
    assert obs[0, 14] == 1.0  # reset to the start


def test_resolve() -> None:
    assert resolve_policy_obs("auto", GridGoalEnv(size=4, obs_mode="onehot")) is None
    assert resolve_policy_obs("env", GridGoalEnv(size=4)) is None
    assert isinstance(resolve_policy_obs("auto", GridGoalEnv(size=4)), GridOneHot)
    with pytest.raises(ValueError, match=r"policy_obs='pixels' is not allowed"):
        resolve_policy_obs("pixels", GridGoalEnv(size=4))
    import gymnasium as gym

    assert resolve_policy_obs("auto", gym.make("CartPole-v1")) is None
    with pytest.raises(ValueError, match=r"needs a GridGoal env"):
        resolve_policy_obs("onehot", gym.make("FrozenLake-v1"))
