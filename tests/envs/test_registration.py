"""Registered IDs: one place, idempotent registration, gym.make and gym.make_vec entry points."""

from __future__ import annotations

import importlib
import warnings

import gymnasium as gym
import pytest

import rewardshare
from rewardshare.envs import ENV_IDS, GridGoalEnv, GridGoalVectorEnv, register_envs

EXPECTED = {
    "rewardshare/GridGoal-v0": ("open-8x8", (7, 7)),
    "rewardshare/GridGoal-FourRooms-v0": ("four_rooms-9x9", (8, 8)),
    "rewardshare/GridGoal-Maze-v0": ("maze-9x9-s0", (8, 8)),
    "rewardshare/GridGoal-MultiGoal-v0": ("open-8x8", None),
}


def test_registration_is_safe_to_repeat() -> None:
    specs_before = {env_id: gym.spec(env_id) for env_id in ENV_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an ID is registered over an existing one
        register_envs()
        register_envs()
        importlib.reload(rewardshare)
    for env_id in ENV_IDS:
        assert gym.spec(env_id) is specs_before[env_id]


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_registered_ids_make_the_documented_envs(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.kwargs == ENV_IDS[env_id]
    assert spec.vector_entry_point is not None
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, GridGoalEnv)
    env.reset(seed=0)
    layout_name, goal = EXPECTED[env_id]
    assert env.unwrapped.layout.name == layout_name
    if goal is not None:
        assert env.unwrapped.goal == goal
    else:
        assert env.unwrapped.observe_goal and env.observation_space.shape == (4,)
    assert env_id in GridGoalEnv.__doc__
    vec = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vec, GridGoalVectorEnv) and vec.num_envs == 4


def test_ids_listed_in_the_package() -> None:
    assert set(EXPECTED) == set(ENV_IDS)
