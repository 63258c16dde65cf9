"""GridGoalEnv: exact dynamics, rewards and flags, observations, determinism, rendering and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rewardshare  # noqa: F401  (registers the IDs)
from rewardshare.envs import ENV_IDS, GridGoalEnv

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

# 3x3 free room inside a border, one inner wall: shortest path S -> G is 4 moves
SMALL_MAP = """
#####
#S..#
#.#.#
#..G#
#####
"""

# the goal sits in a sealed pocket on the right
POCKET_MAP = """
S.#.
..#G
"""


def rollout(env: gym.Env, actions: list[int], seed: int) -> list[tuple]:
    """Step through ``actions``, resetting (unseeded) after every episode end; record everything returned."""
    obs, info = env.reset(seed=seed)
    out: list[tuple] = [("reset", obs.copy(), _freeze(info))]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append(("step", obs.copy(), reward, terminated, truncated, _freeze(info)))
        if terminated or truncated:
            obs, info = env.reset()
            out.append(("reset", obs.copy(), _freeze(info)))
    return out


def _freeze(info: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in info.items()}


def assert_rollouts_equal(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[0] == y[0]
        np.testing.assert_array_equal(x[1], y[1])
        assert x[2:] == y[2:]


# -- exact known values -------------------------------------------------------------------------------------------
def test_four_step_path_rewards_flags_and_infos() -> None:
    env = GridGoalEnv(layout=SMALL_MAP)
    obs, info = env.reset(seed=0)
    assert env.goal == (3, 3) and env.agent_pos == (1, 1)
    np.testing.assert_array_equal(obs, np.array([1, 1], dtype=np.float32))
    assert info["task_id"] == env.task_id == f"{env.layout.name}/g3_3"
    assert info["is_success"] is False
    expected_cells = [(1, 2), (1, 3), (2, 3), (3, 3)]
    for k, (a, cell) in enumerate(zip([RIGHT, RIGHT, DOWN, DOWN], expected_cells, strict=True)):
        obs, reward, terminated, truncated, info = env.step(a)
        last = k == 3
        assert env.agent_pos == cell
        np.testing.assert_array_equal(obs, np.array(cell, dtype=np.float32))
        np.testing.assert_array_equal(info["agent_pos"], np.array(cell))
        assert info["agent_pos"].dtype == np.int64 and info["goal"].dtype == np.int64
        np.testing.assert_array_equal(info["goal"], [3, 3])
        assert reward == (1.0 if last else 0.0)
        assert terminated is last and truncated is False
        assert info["is_success"] is last


def test_walls_and_border_block_moves() -> None:
    env = GridGoalEnv(layout=SMALL_MAP)
    env.reset(seed=0)
    for a in (UP, LEFT):  # border walls of the map
        env.step(a)
        assert env.agent_pos == (1, 1)
    env.step(RIGHT)
    env.step(DOWN)  # the inner wall at (2, 2)
    assert env.agent_pos == (1, 2)
    open_env = GridGoalEnv(size=3)
    open_env.reset(seed=0)
    open_env.step(UP)  # off the grid
    assert open_env.agent_pos == (0, 0)


def test_truncation_at_max_steps() -> None:
    env = GridGoalEnv(size=4, max_steps=3)
    env.reset(seed=0)
    flags = [env.step(UP)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    assert GridGoalEnv(size=4).max_steps == 4 * 4 * 4


def test_reaching_goal_on_last_step_terminates_not_truncates() -> None:
    env = GridGoalEnv(size=2, goal=(0, 1), start=(0, 0), max_steps=1)
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(RIGHT)
    assert (reward, terminated, truncated) == (1.0, True, False)


def test_step_cost_and_goal_reward() -> None:
    env = GridGoalEnv(layout=SMALL_MAP, step_cost=0.25, goal_reward=2.0)
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (UP, RIGHT, RIGHT, DOWN, DOWN)]
    assert rewards == pytest.approx([-0.25, -0.25, -0.25, -0.25, 1.75])


def test_absorbing_goal_never_terminates_and_earns_nothing_after_arrival() -> None:
    env = GridGoalEnv(layout=SMALL_MAP, absorbing_goal=True, step_cost=0.5, max_steps=10)
    env.reset(seed=0)
    results = [env.step(a) for a in (RIGHT, RIGHT, DOWN, DOWN)]
    assert [r[1] for r in results] == [-0.5, -0.5, -0.5, 0.5]
    assert not any(r[2] or r[3] for r in results)
    assert results[-1][4]["is_success"] is True
    for k, a in enumerate([UP, LEFT, DOWN, RIGHT, UP, LEFT]):
        obs, reward, terminated, truncated, info = env.step(a)
        assert env.agent_pos == (3, 3)  # every action keeps the agent on the goal
        assert reward == 0.0 and terminated is False and info["is_success"] is True
        assert truncated is (k == 5)  # step 10 of 10


def test_observation_modes_exact_values() -> None:
    coords = GridGoalEnv(size=4, goal=(3, 2), start=(1, 2), obs_mode="coords", observe_goal=True)
    obs, _ = coords.reset(seed=0)
    np.testing.assert_array_equal(obs, np.array([1, 2, 3, 2], dtype=np.float32))

    onehot = GridGoalEnv(size=4, goal=(3, 2), start=(1, 2), obs_mode="onehot", observe_goal=True)
    obs, _ = onehot.reset(seed=0)
    assert obs.shape == (32,) and obs.sum() == 2
    assert obs[1 * 4 + 2] == 1 and obs[16 + 3 * 4 + 2] == 1

    grid = GridGoalEnv(layout=SMALL_MAP, obs_mode="grid", observe_goal=True)
    obs, _ = grid.reset(seed=0)
    assert obs.shape == (3, 5, 5)
    np.testing.assert_array_equal(obs[0], grid.layout.walls.astype(np.float32))
    assert obs[1].sum() == 1 and obs[1][1, 1] == 1
    assert obs[2].sum() == 1 and obs[2][3, 3] == 1
    assert GridGoalEnv(obs_mode="grid").observation_space.shape == (2, 8, 8)

    for env in (coords, onehot, grid):
        obs, info = env.reset(seed=1)
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        kept = obs.copy()
        obs[...] = 0.5  # the caller owns what it was given: later observations are unaffected
        info["agent_pos"][:] = -1
        info["goal"][:] = -1
        np.testing.assert_array_equal(env.reset(seed=1)[0], kept)
        assert env.step(UP)[4]["agent_pos"].min() >= 0 and env.step(UP)[4]["goal"].min() >= 0


def test_observation_for_matches_emitted_observations() -> None:
    env = GridGoalEnv(size=5, goal="random", start="random", observe_goal=True, obs_mode="onehot")
    env.reset(seed=3)
    for a in np.random.default_rng(0).integers(4, size=30).tolist():
        obs, *_, info = env.step(a)
        np.testing.assert_array_equal(obs, env.observation_for(env.agent_pos))
        np.testing.assert_array_equal(obs, env.observation_for(tuple(info["agent_pos"]), tuple(info["goal"])))


def test_reset_options_override_goal_and_start() -> None:
    env = GridGoalEnv(size=5)
    _, info = env.reset(seed=0, options={"goal": (2, 2), "start": (0, 4)})
    assert env.goal == (2, 2) and env.agent_pos == (0, 4) and info["task_id"] == "open-5x5/g2_2"
    env.reset()
    assert env.goal == (4, 4) and env.agent_pos == (0, 0)


def test_random_start_stays_in_the_goal_region() -> None:
    layout = """
    ....#..
    ....#..
    ....#..
    """
    env = GridGoalEnv(layout=layout, goal=(1, 1), start="random")
    starts = set()
    for seed in range(100):
        env.reset(seed=seed)
        starts.add(env.agent_pos)
    assert all(c < 4 for _, c in starts) and (1, 1) not in starts
    assert len(starts) == 11  # every other cell of the 3x4 region, over 100 draws


def test_random_goal_with_fixed_start_never_draws_the_start() -> None:
    env = gym.make("rewardshare/GridGoal-v0", size=2, goal="random")
    goals = set()
    for seed in range(40):
        env.reset(seed=seed)
        goals.add(env.unwrapped.goal)
    assert goals == {(0, 1), (1, 0), (1, 1)}


# -- determinism ---------------------------------------------------------------------------------------------------
VARIANTS = [
    {"goal": "random", "start": "random", "obs_mode": "onehot", "observe_goal": True},
    {"layout": "maze", "size": 7, "layout_seed": None, "goal": "random", "start": "random", "obs_mode": "grid"},
    {"layout": "four_rooms", "size": 7, "start": "random", "absorbing_goal": True, "max_steps": 20, "step_cost": 0.1},
]


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_same_seed_same_actions_identical_rollouts_registered(env_id: str) -> None:
    actions = np.random.default_rng(1).integers(4, size=400).tolist()
    kwargs = {"max_steps": 30, "start": "random"}
    a = rollout(gym.make(env_id, **kwargs), actions, seed=7)
    b = rollout(gym.make(env_id, **kwargs), actions, seed=7)
    assert sum(x[0] == "reset" for x in a) >= 4  # crosses several episodes
    assert_rollouts_equal(a, b)
    c = rollout(gym.make(env_id, **kwargs), actions, seed=8)
    with pytest.raises(AssertionError):  # the comparison itself can fail: another seed gives another rollout
        assert_rollouts_equal(a, c)


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_same_seed_same_actions_identical_rollouts_variants(kwargs: dict) -> None:
    actions = np.random.default_rng(2).integers(4, size=300).tolist()
    assert_rollouts_equal(rollout(GridGoalEnv(**kwargs), actions, 11), rollout(GridGoalEnv(**kwargs), actions, 11))


def test_different_seeds_draw_different_goals_starts_and_mazes() -> None:
    env = gym.make("rewardshare/GridGoal-MultiGoal-v0")
    draws = []
    for seed in range(20):
        env.reset(seed=seed)
        draws.append((env.unwrapped.goal, env.unwrapped.agent_pos))
    assert len({g for g, _ in draws}) >= 12 and len({s for _, s in draws}) >= 12
    assert all(g != s for g, s in draws)

    maze = GridGoalEnv(layout="maze", size=9, layout_seed=None)
    walls = {}
    for seed in range(6):
        maze.reset(seed=seed)
        walls[seed] = maze.layout.walls.tobytes()
        assert maze.task_id.startswith("maze-9x9-h")
    assert len(set(walls.values())) == 6
    maze.reset(seed=3)
    assert maze.layout.walls.tobytes() == walls[3]
    # successive episodes without a seed draw new mazes too
    maze.reset()
    assert maze.layout.walls.tobytes() not in (walls[3],)


def test_seeded_layout_is_fixed() -> None:
    a = GridGoalEnv(layout="maze", size=9, layout_seed=4)
    b = GridGoalEnv(layout="maze", size=9, layout_seed=4)
    c = GridGoalEnv(layout="maze", size=9, layout_seed=5)
    assert a.layout == b.layout and a.layout != c.layout
    a.reset(seed=0)
    assert a.layout == b.layout


# -- rendering -------------------------------------------------------------------------------------------------------
def test_render_rgb_array_and_ansi() -> None:
    env = GridGoalEnv(layout=SMALL_MAP, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (5 * 16, 5 * 16, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[1 * 16 + 8, 1 * 16 + 8], [220, 50, 50])  # agent
    np.testing.assert_array_equal(img[3 * 16 + 8, 3 * 16 + 8], [40, 180, 60])  # goal
    np.testing.assert_array_equal(img[2 * 16 + 8, 2 * 16 + 8], [60, 60, 60])  # wall
    text_env = GridGoalEnv(layout=SMALL_MAP, render_mode="ansi")
    text_env.reset(seed=0)
    text_env.step(RIGHT)
    assert text_env.render() == "#####\n#.A.#\n#.#.#\n#..G#\n#####\n"
    assert GridGoalEnv().render() is None


# -- bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 1}, r"size=1"),
        ({"size": 0}, r"size=0"),
        ({"size": 2.5}, r"size=2.5"),
        ({"layout": "four_rooms", "size": 4}, r"size=4 .*four_rooms"),
        ({"layout": "maze", "size": 2}, r"size=2 .*maze"),
        ({"goal": (8, 0)}, r"goal=\(8, 0\) is outside the grid"),
        ({"goal": (-1, 3)}, r"goal=\(-1, 3\) is outside the grid"),
        ({"goal": (1.0, 2)}, r"goal=\(1.0, 2\)"),
        ({"goal": "center"}, r"goal='center'"),
        ({"start": (0, 9)}, r"start=\(0, 9\) is outside the grid"),
        ({"start": "anywhere"}, r"start='anywhere'"),
        ({"layout": "four_rooms", "size": 9, "goal": (4, 4)}, r"goal=\(4, 4\) is a wall"),
        ({"layout": "four_rooms", "size": 9, "start": (0, 4)}, r"start=\(0, 4\) is a wall"),
        ({"goal": (0, 0)}, r"start=\(0, 0\) equals goal"),
        ({"layout": POCKET_MAP}, r"goal=\(1, 3\) is unreachable from start=\(0, 0\)"),
        ({"layout": POCKET_MAP, "goal": (0, 3), "start": (1, 1)}, r"goal=\(0, 3\) is unreachable"),
        ({"layout": "S.#G\n..##", "start": "random", "goal": (0, 3)}, r"goal=\(0, 3\) cannot be reached from any"),
        ({"layout": "..#.\n..#.", "goal": (0, 3), "start": "random"}, None),  # a 2-cell pocket is fine
        ({"layout": "hexagon"}, r"layout='hexagon' is not allowed"),
        ({"layout": 3}, r"layout=3 is not allowed"),
        ({"layout": "S.#\n..x"}, r"layout: unknown character 'x'"),
        ({"layout": "S..\n.."}, r"layout: ASCII map rows have different lengths"),
        ({"layout": "SS.\n..."}, r"layout: .*more than one 'S'"),
        ({"layout": "\n\n"}, r"layout: the ASCII map is empty"),
        ({"layout": "###\n###"}, r"layout: the ASCII map has no free cell"),
        ({"layout": "#S#\n###"}, r"layout .* fewer than 2 free cells"),
        ({"obs_mode": "pixels"}, r"obs_mode='pixels' is not allowed"),
        ({"render_mode": "human"}, r"render_mode='human' is not allowed"),
        ({"max_steps": 0}, r"max_steps=0 is not allowed"),
        ({"layout_seed": None}, r"layout_seed=None .* needs layout='maze'"),
        ({"goals": [(1, 1)]}, r"goals=\.\.\. needs goal='random'"),
        ({"goal": "random", "goals": []}, r"goals=\[\] is not allowed"),
        ({"goal": "random", "goals": [(0, 0), (3, 3)]}, r"goals\[\] holds \(0, 0\), which equals .* start"),
        ({"goal": "random", "goals": [(9, 9)]}, r"goals\[\]=\(9, 9\) is outside the grid"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str | None) -> None:
    if match is None:
        GridGoalEnv(**kwargs).reset(seed=0)
        return
    with pytest.raises(ValueError, match=match):
        GridGoalEnv(**kwargs)


@pytest.mark.parametrize("action", [4, -1, 1.0, 2.5, True, np.float32(1.0), "up", None, np.array([1]), [0]])
def test_action_outside_the_space_raises(action: object) -> None:
    env = GridGoalEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action=.* is not allowed: use an int in 0\.\.3"):
        env.step(action)


@pytest.mark.parametrize("action", [1, np.int64(1), np.int32(1), np.uint8(1), np.array(1)])
def test_integer_actions_of_any_kind_are_accepted(action: object) -> None:
    env = GridGoalEnv()
    env.reset(seed=0)
    env.step(action)
    assert env.agent_pos == (0, 1)


def test_bad_reset_options() -> None:
    env = GridGoalEnv(layout=POCKET_MAP, goal=(0, 1))
    with pytest.raises(ValueError, match=r"options\['goal'\]=\(0, 2\) is a wall"):
        env.reset(seed=0, options={"goal": (0, 2)})
    with pytest.raises(ValueError, match=r"goal=\(1, 3\) is unreachable from start=\(0, 0\)"):
        env.reset(seed=0, options={"goal": (1, 3)})
    with pytest.raises(ValueError, match=r"start=\(0, 1\) equals goal"):
        env.reset(seed=0, options={"start": (0, 1)})
