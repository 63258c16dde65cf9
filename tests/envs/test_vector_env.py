"""GridGoalVectorEnv equals N single GridGoalEnvs in gymnasium's SyncVectorEnv, step for step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rewardshare  # noqa: F401  (registers the IDs)
from rewardshare.envs import GridGoalEnv, GridGoalVectorEnv, vector_env

POCKET_LAYOUT = """
.....#..
.....#..
.....###
........
"""


def _sync_of_singles(n: int, kwargs: dict[str, Any], goals_per_env: list | None) -> SyncVectorEnv:
    def factory(i: int):
        def make() -> GridGoalEnv:
            kw = dict(kwargs)
            if goals_per_env is not None:
                kw["goal"] = tuple(goals_per_env[i])
                kw.pop("goals", None)
            return GridGoalEnv(**kw)

        return make

    return SyncVectorEnv([factory(i) for i in range(n)], autoreset_mode=AutoresetMode.NEXT_STEP)


def _assert_infos_equal(got: dict, want: dict, where: str) -> None:
    assert set(got) == set(want), where
    for key, value in want.items():
        assert isinstance(got[key], np.ndarray), (where, key)
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, (where, key)
        np.testing.assert_array_equal(got[key], value, err_msg=f"{where}: info[{key!r}]")


def assert_matches_sync(
    kwargs: dict[str, Any],
    n: int = 6,
    steps: int = 500,
    seed: int = 0,
    goals_per_env: list | None = None,
    min_episode_ends: int = 3,
) -> int:
    """Run the vector env and a SyncVectorEnv of single envs on the same random actions; compare everything.

    Returns:
        The number of sub-env episode ends seen (so callers can assert the rollout crossed autoresets).
    """
    vec = GridGoalVectorEnv(n, goals_per_env=goals_per_env, **kwargs)
    sync = _sync_of_singles(n, kwargs, goals_per_env)
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.observation_space == sync.observation_space and vec.action_space == sync.action_space
    obs_v, info_v = vec.reset(seed=seed)
    obs_s, info_s = sync.reset(seed=seed)
    np.testing.assert_array_equal(obs_v, obs_s)
    assert obs_v.dtype == obs_s.dtype == np.float32
    _assert_infos_equal(info_v, info_s, "reset")
    rng = np.random.default_rng(seed + 1000)
    ends = np.zeros(n, dtype=np.int64)
    for t in range(steps):
        actions = rng.integers(4, size=n)
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(actions)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(actions)
        where = f"step {t}"
        np.testing.assert_array_equal(obs_v, obs_s, err_msg=where)
        assert obs_v.dtype == np.float32 and obs_v.shape == obs_s.shape
        np.testing.assert_array_equal(rew_v, rew_s, err_msg=where)
        assert rew_v.dtype == rew_s.dtype == np.float64
        np.testing.assert_array_equal(term_v, term_s, err_msg=where)
        np.testing.assert_array_equal(trunc_v, trunc_s, err_msg=where)
        assert term_v.dtype == trunc_v.dtype == np.bool_
        _assert_infos_equal(info_v, info_s, where)
        np.testing.assert_array_equal(vec.agent_positions, info_s["agent_pos"])
        np.testing.assert_array_equal(vec.goals, info_s["goal"])
        ends += term_v | trunc_v
    assert ends.min() >= min_episode_ends, f"every sub-env should cross autoresets, got {ends.tolist()}"
    return int(ends.sum())


CONFIGS = [
    pytest.param({"size": 5, "max_steps": 15}, id="open-coords-fixed"),
    pytest.param({"size": 4, "max_steps": 12, "start": "random", "obs_mode": "onehot"}, id="onehot-random-start"),
    pytest.param(
        {"layout": "four_rooms", "size": 7, "goal": "random", "start": "random", "observe_goal": True, "max_steps": 25},
        id="fourrooms-random-goal-observed",
    ),
    pytest.param(
        {"layout": "maze", "size": 7, "layout_seed": 3, "goal": "random", "start": "random", "obs_mode": "grid",
         "observe_goal": True, "absorbing_goal": True, "step_cost": 0.1, "goal_reward": 2.0, "max_steps": 20},
        id="maze-grid-absorbing-stepcost",
    ),
    pytest.param(
        {"size": 4, "obs_mode": "onehot", "observe_goal": True, "step_cost": 0.05, "max_steps": 10, "goal": "random",
         "goals": [(0, 3), (3, 0), (2, 2)]},
        id="onehot-goals-list-fixed-start",
    ),
    pytest.param(
        {"layout": POCKET_LAYOUT, "goal": "random", "start": "random", "observe_goal": True, "max_steps": 20},
        id="ascii-pockets-random",
    ),
    pytest.param(
        {"size": 4, "absorbing_goal": True, "max_steps": 9, "obs_mode": "grid"}, id="absorbing-fixed-static-resets",
    ),
]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_vector_env_equals_sync_of_single_envs(kwargs: dict[str, Any]) -> None:
    assert_matches_sync(kwargs)


@pytest.mark.parametrize(
    ("kwargs", "goals"),
    [
        pytest.param({"size": 4, "start": "random", "max_steps": 12}, [(0, 0), (3, 3), (1, 2), (0, 3), (2, 0), (3, 1)],
                     id="random-start"),
        pytest.param({"size": 4, "max_steps": 12, "observe_goal": True, "obs_mode": "onehot"},
                     [(0, 1), (3, 3), (1, 2), (0, 3), (2, 0), (3, 1)], id="fixed-start-static-resets"),
        pytest.param({"size": 4, "max_steps": 12, "goal": "random", "absorbing_goal": True, "step_cost": 0.5,
                      "obs_mode": "grid", "observe_goal": True}, [(0, 1), (3, 3), (1, 2), (0, 3), (2, 0), (3, 1)],
                     id="absorbing-grid-observed"),
    ],
)
def test_vector_env_goals_per_env_equals_sync(kwargs: dict[str, Any], goals: list) -> None:
    assert_matches_sync(kwargs, goals_per_env=goals)


def test_concatenated_observation_path_equals_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    # large grids skip the joint (goal, cell) observation table and concatenate per step: same observations
    monkeypatch.setattr(vector_env, "_MAX_JOINT_OBS_BYTES", 0)
    kwargs = {"size": 5, "goal": "random", "start": "random", "observe_goal": True, "max_steps": 15}
    assert GridGoalVectorEnv(2, obs_mode="grid", observe_goal=True)._joint_obs4 is None
    for obs_mode in ("coords", "onehot", "grid"):
        assert_matches_sync({**kwargs, "obs_mode": obs_mode}, steps=200, min_episode_ends=2)


def test_many_sub_envs_long_rollout_equals_sync() -> None:
    assert_matches_sync({"size": 3, "goal": "random", "start": "random", "max_steps": 6}, n=32, steps=300,
                        min_episode_ends=20)


def test_equality_check_can_fail() -> None:
    # a vector env seeded differently must be caught by the comparison
    vec = GridGoalVectorEnv(3, size=4, start="random")
    sync = _sync_of_singles(3, {"size": 4, "start": "random"}, None)
    obs_v, _ = vec.reset(seed=1)
    obs_s, _ = sync.reset(seed=2)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(obs_v, obs_s)


def test_partial_reset_and_seed_list() -> None:
    vec = GridGoalVectorEnv(4, size=5, start="random")
    vec.reset(seed=[3, None, 5, 6])
    singles = [GridGoalEnv(size=5, start="random") for _ in range(4)]
    for i, s in ((0, 3), (2, 5), (3, 6)):
        singles[i].reset(seed=s)
        assert tuple(vec.agent_positions[i]) == singles[i].agent_pos
    before = vec.agent_positions
    vec.step(np.array([1, 1, 1, 1]))
    moved = vec.agent_positions
    obs, info = vec.reset(options={"reset_mask": np.array([True, False, False, False])})
    np.testing.assert_array_equal(vec.agent_positions[1:], moved[1:])
    singles[0].step(1)
    singles[0].reset()
    assert tuple(vec.agent_positions[0]) == singles[0].agent_pos
    assert before.shape == (4, 2) and obs.shape == (4, 2)


def test_make_vec_returns_native_vector_env() -> None:
    env = gym.make_vec("rewardshare/GridGoal-v0", num_envs=5, vectorization_mode="vector_entry_point")
    assert isinstance(env, GridGoalVectorEnv) and env.num_envs == 5
    assert env.observation_space.shape == (5, 2)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["goal"], np.full((5, 2), 7))
    env = gym.make_vec("rewardshare/GridGoal-MultiGoal-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       obs_mode="onehot")
    assert isinstance(env, GridGoalVectorEnv) and env.single_observation_space.shape == (128,)


def test_returned_arrays_are_new_on_every_call() -> None:
    vec = GridGoalVectorEnv(3, size=4, observe_goal=True)
    calls = [vec.reset(seed=0)]
    for _ in range(3):
        obs, rew, term, trunc, info = vec.step(np.array([1, 2, 3]))
        calls.append((obs, info))
    for i, (obs_a, info_a) in enumerate(calls):
        for obs_b, info_b in calls[i + 1:]:
            assert not np.shares_memory(obs_a, obs_b)
            for key in info_a:
                assert info_a[key] is not info_b[key] and not np.shares_memory(info_a[key], info_b[key]), key


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.array([0, 1, 4]), r"actions=.* are not allowed: every action must be in 0\.\.3"),
        (np.array([0, -1, 2]), r"actions=.* are not allowed: every action must be in 0\.\.3"),
        (np.array([0, 1]), r"actions with shape \(2,\) .* not allowed"),
        (np.array([[0, 1, 2]]), r"actions with shape \(1, 3\) .* not allowed"),
        (np.array([0.0, 1.0, 2.0]), r"actions with shape \(3,\) and dtype float64 are not allowed"),
        (np.array([True, False, True]), r"actions with .* dtype bool are not allowed"),
        (3, r"actions with shape \(\) .* not allowed"),
    ],
)
def test_vector_step_rejects_bad_actions(actions: Any, match: str) -> None:
    vec = GridGoalVectorEnv(3, size=4)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        vec.step(actions)


def test_vector_step_accepts_other_int_dtypes() -> None:
    vec = GridGoalVectorEnv(3, size=4)
    vec.reset(seed=0)
    for dtype in (np.int8, np.int32, np.uint8, np.uint64):
        vec.step(np.array([1, 2, 1], dtype=dtype))
    vec.step([1, 1, 1])
    np.testing.assert_array_equal(vec.agent_positions, [[0, 3], [3, 1], [0, 3]])


def test_goals_per_env_may_include_the_default_goal_cell_and_avoid_the_start() -> None:
    vec = GridGoalVectorEnv(2, goals_per_env=[(0, 1), (1, 0)], size=2, start=(1, 1))
    _, info = vec.reset(seed=0)
    np.testing.assert_array_equal(info["goal"], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(info["agent_pos"], [[1, 1], [1, 1]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, r"num_envs=0 is not allowed"),
        ({"num_envs": 2.0}, r"num_envs=2.0 is not allowed"),
        ({"num_envs": 2, "goals_per_env": [(1, 1)]}, r"goals_per_env has 1 cells: it needs exactly num_envs=2"),
        ({"num_envs": 2, "goals_per_env": [(1, 1), (9, 9)]}, r"options\['goal'\]=\(9, 9\) is outside the grid"),
        ({"num_envs": 2, "goals_per_env": [(1, 1), (0, 0)]}, r"start=\(0, 0\) equals goal"),
        ({"num_envs": 2, "layout": "maze", "layout_seed": None}, r"layout_seed=None"),
        ({"num_envs": 2, "obs_mode": "rgb"}, r"obs_mode='rgb' is not allowed"),
    ],
)
def test_vector_env_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GridGoalVectorEnv(**kwargs)


def test_vector_reset_bad_arguments() -> None:
    vec = GridGoalVectorEnv(3, size=4)
    with pytest.raises(ValueError, match=r"seed has 2 entries: it needs exactly num_envs=3"):
        vec.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"options\['reset_mask'\] with shape \(2,\)"):
        vec.reset(seed=0, options={"reset_mask": np.array([True, False])})


@pytest.mark.parametrize(
    ("kwargs", "goals"),
    [
        pytest.param({"size": 4, "max_steps": 7}, None, id="fixed-goal-static"),
        pytest.param({"size": 4, "max_steps": 7, "start": "random", "goal": "random"}, None, id="random"),
        pytest.param({"size": 4, "max_steps": 7, "observe_goal": True}, [(3, 3), (0, 3), (2, 2), (1, 0)], id="per-env"),
    ],
)
def test_masked_resets_seeds_and_options_match_sync(kwargs: dict[str, Any], goals: list | None) -> None:
    n = 4
    vec = GridGoalVectorEnv(n, goals_per_env=goals, **kwargs)
    sync = _sync_of_singles(n, kwargs, goals)
    rng = np.random.default_rng(5)
    resets = [
        {"seed": 3},
        {"seed": [7, None, 8, 9], "options": {"reset_mask": np.array([True, False, True, False])}},
        {"options": {"goal": (1, 2), "start": (3, 0)}},  # the next autoresets must bring the usual goals back
        {"seed": 11, "options": {"reset_mask": np.array([False, True, False, False]), "start": (0, 1)}},
        {"options": {"reset_mask": np.array([False, False, False, True]), "goal": (2, 1)}},
        {},
    ]
    for k, reset_kwargs in enumerate(resets):
        sync_kwargs = {**reset_kwargs, "options": dict(reset_kwargs.get("options", {}))}
        obs_v, info_v = vec.reset(**reset_kwargs)
        obs_s, info_s = sync.reset(**sync_kwargs)
        np.testing.assert_array_equal(obs_v, obs_s)
        _assert_infos_equal(info_v, info_s, f"reset {k}")
        for t in range(40):
            actions = rng.integers(4, size=n)
            out_v, out_s = vec.step(actions), sync.step(actions)
            for a, b in zip(out_v[:4], out_s[:4], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"reset {k} step {t}")
            _assert_infos_equal(out_v[4], out_s[4], f"reset {k} step {t}")
