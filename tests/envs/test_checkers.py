"""gymnasium's and Stable-Baselines3's env checkers over every registered ID, obs_mode and observe_goal."""

from __future__ import annotations

import itertools
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rewardshare  # noqa: F401  (registers the IDs)
from rewardshare.envs import ENV_IDS, OBS_MODES, GridGoalEnv

CASES = list(itertools.product(ENV_IDS, OBS_MODES, (False, True)))

# SB3 advises a CNN or flattening for 3-D float observations; that is advice about the policy, not a defect
SB3_ADVICE = r".*(image|CNN|unconventional shape|channel).*"


def _make(env_id: str, obs_mode: str, observe_goal: bool, **kwargs: object) -> GridGoalEnv:
    return gym.make(env_id, obs_mode=obs_mode, observe_goal=observe_goal, **kwargs).unwrapped


@pytest.mark.parametrize(("env_id", "obs_mode", "observe_goal"), CASES)
def test_gymnasium_check_env(env_id: str, obs_mode: str, observe_goal: bool) -> None:
    env = _make(env_id, obs_mode, observe_goal)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        gym_check_env(env, skip_render_check=True)


@pytest.mark.parametrize(("env_id", "obs_mode", "observe_goal"), CASES)
def test_sb3_check_env(env_id: str, obs_mode: str, observe_goal: bool) -> None:
    env = _make(env_id, obs_mode, observe_goal)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=SB3_ADVICE)
        sb3_check_env(env, warn=True, skip_render_check=True)


@pytest.mark.parametrize("render_mode", ["rgb_array", "ansi"])
def test_check_env_with_rendering(render_mode: str) -> None:
    env = _make("rewardshare/GridGoal-FourRooms-v0", "coords", True, render_mode=render_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"layout": "maze", "size": 7, "layout_seed": None, "goal": "random", "start": "random", "obs_mode": "grid"},
        {"layout": "four_rooms", "size": 7, "absorbing_goal": True, "step_cost": 0.1, "observe_goal": True},
        {"layout": "S..#.\n.#.#.\n...#G", "goal": (0, 2), "obs_mode": "onehot"},
    ],
)
def test_check_env_variants(kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=SB3_ADVICE)
        gym_check_env(GridGoalEnv(**kwargs), skip_render_check=True)
        sb3_check_env(GridGoalEnv(**kwargs), warn=True, skip_render_check=True)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_passive_env_checker_stays_silent_over_episodes(obs_mode: str) -> None:
    env = gym.make("rewardshare/GridGoal-MultiGoal-v0", obs_mode=obs_mode, max_steps=10, disable_env_checker=False)
    assert "PassiveEnvChecker" in str(env)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset(seed=0)
        for a in range(60):
            *_, terminated, truncated, _ = env.step(a % 4)
            if terminated or truncated:
                env.reset()
