"""The grid's tabular MDP: states, dynamics and observations agree with the env, step by step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rewardshare.envs import (
    GoalTask,
    GridGoalEnv,
    GridGoalVectorEnv,
    GridMDP,
    distances_to,
    env_from_metadata,
    goal_distances,
    goal_from_task_id,
    grid_env_of,
    grid_states,
    layout_transitions,
    make_layout,
    transition_table,
)

TINY = GoalTask("open", 5, (4, 4))


def test_grid_mdp_matches_the_env():
    env = TINY.make_env(obs_mode="onehot")
    mdp = GridMDP.from_env(env)
    assert mdp.n_states == 25 and mdp.n_actions == 4 and mdp.obs.shape == (25, 25) and mdp.goal == (4, 4)
    s = mdp.state_of(np.array([[0, 0]]))[0]
    assert mdp.cells[mdp.next_state[s, 1]].tolist() == [0, 1]  # right
    assert mdp.next_state[s, 0] == s  # up bumps the border
    assert mdp.done[mdp.state_of(np.array([[3, 4]]))[0], 2]  # down into the goal ends the episode
    assert not mdp.done[mdp.goal_state].any()
    with pytest.raises(ValueError, match=r"position \[5, 0\] is not a free cell"):
        mdp.state_of(np.array([[5, 0]]))
    with pytest.raises(ValueError, match=r"goal=\(9, 9\) is not a free cell"):
        GridMDP.from_env(env, goal=(9, 9))


@pytest.mark.parametrize("layout", ["four_rooms", "maze"])
def test_every_transition_of_the_mdp_is_what_the_env_does(layout):
    env = GridGoalEnv(layout=layout, size=9, obs_mode="grid", observe_goal=True, start="random")
    goal = env.layout.free_cells[0]
    mdp = GridMDP.from_env(env, goal=goal)
    for s, cell in enumerate(map(tuple, mdp.cells.tolist())):
        if cell == goal:
            continue  # the env cannot start on its goal
        for a in range(4):
            env.reset(options={"start": cell, "goal": goal})
            obs, _, terminated, _, info = env.step(a)
            nxt = mdp.next_state[s, a]
            assert info["agent_pos"].tolist() == mdp.cells[nxt].tolist()
            np.testing.assert_array_equal(obs, mdp.obs[nxt])
            assert terminated == mdp.done[s, a]


def test_grid_env_of_unwraps_wrappers_and_vector_envs():
    env = GridGoalEnv()
    assert grid_env_of(env) is env
    assert grid_env_of(gym.wrappers.TimeLimit(env, 10)) is env
    venv = GridGoalVectorEnv(3, obs_mode="onehot")
    assert grid_env_of(venv) is venv.prototype and venv.prototype.obs_mode == "onehot"
    with pytest.raises(TypeError, match="needs a rewardshare GridGoalEnv"):
        grid_env_of(gym.make("CartPole-v1"))


@pytest.mark.parametrize("observe_goal", [False, True])
def test_grid_states_enumerate_every_observation_the_env_emits(observe_goal):
    env = GridGoalEnv(layout="four_rooms", size=7, observe_goal=observe_goal, goal="random", start="random")
    grid = grid_states(env)
    free = env.layout.free_cells
    assert grid.n_states == len(free) * (len(free) if observe_goal else 1)
    rows = {o.tobytes(): i for i, o in enumerate(grid.observations)}
    assert len(rows) == grid.n_states  # states are told apart by their observations
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    for _ in range(300):
        s = rows[obs.tobytes()]
        assert grid.cells[s].tolist() == info["agent_pos"].tolist()
        if observe_goal:
            assert grid.goals[s].tolist() == info["goal"].tolist()
        a = int(rng.integers(4))
        obs, _, terminated, truncated, info = env.step(a)
        assert rows[obs.tobytes()] == grid.next_state[s, a]
        if terminated or truncated:
            obs, info = env.reset()


def test_grid_states_refuse_a_new_maze_per_episode():
    with pytest.raises(ValueError, match="new maze per episode"):
        grid_states(GridGoalEnv(layout="maze", size=9, layout_seed=None))


def test_cached_tables_are_shared_and_read_only():
    layout = make_layout("four_rooms", 9)
    table = layout_transitions(layout)
    assert table is layout_transitions(make_layout("four_rooms", 9))
    np.testing.assert_array_equal(table, transition_table(layout))
    dist = goal_distances(layout, (1, 1))
    np.testing.assert_array_equal(dist, distances_to(layout, (1, 1)))
    assert not table.flags.writeable and not dist.flags.writeable


def test_goal_from_task_id_inverts_the_task_id():
    assert goal_from_task_id("four_rooms-9x9/g1_7") == (1, 7)
    assert goal_from_task_id(TINY.id) == TINY.goal
    with pytest.raises(ValueError, match="does not name a goal"):
        goal_from_task_id("cartpole")


def test_env_from_metadata():
    class Data:
        metadata = {"env_kwargs": {"layout": "open", "size": 5, "goal": [4, 4], "obs_mode": "onehot",
                                   "render_mode": "ansi"}}

    env = env_from_metadata(Data())
    assert isinstance(env, GridGoalEnv) and env.goal == (4, 4) and env.obs_mode == "onehot"
    assert env.render_mode is None
    Data.metadata = {"env_kwargs": {"layout": None}}
    assert env_from_metadata(Data()) is None
    assert env_from_metadata(object()) is None
