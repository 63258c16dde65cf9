"""GoalTask and TaskFamily: subsets, the seeded train / held-out split, and the envs they make."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardshare.envs import SUBSETS, GoalTask, TaskFamily, make_layout


def _goals(tasks: tuple[GoalTask, ...]) -> set[tuple[int, int]]:
    return {t.goal for t in tasks}


def test_split_is_deterministic_disjoint_and_covers_all_tasks() -> None:
    a = TaskFamily("four_rooms", 9, split_seed=3)
    b = TaskFamily("four_rooms", 9, split_seed=3)
    assert [t.id for t in a.train] == [t.id for t in b.train]
    assert [t.id for t in a.held_out] == [t.id for t in b.held_out]
    assert not set(a.train) & set(a.held_out)
    assert set(a.train) | set(a.held_out) == set(a.tasks)
    assert len(a.tasks) == 81 - 13  # free cells of the 9x9 four rooms (13 wall cells)
    assert len(a.held_out) == round(0.25 * len(a.tasks)) == 17
    c = TaskFamily("four_rooms", 9, split_seed=4)
    assert _goals(c.held_out) != _goals(a.held_out)
    assert a.split("train") == a.train and a.split("held_out") == a.held_out and a.split("all") == a.tasks


def test_split_keeps_one_task_each_side() -> None:
    tiny = TaskFamily("open", 2, subset="corners", held_out_fraction=0.01)
    assert len(tiny.held_out) == 1 and len(tiny.train) == 3
    most = TaskFamily("open", 2, subset="corners", held_out_fraction=0.99)
    assert len(most.held_out) == 3 and len(most.train) == 1


def test_subsets_exact_on_small_layouts() -> None:
    assert _goals(TaskFamily("open", 4, subset="corners").tasks) == {(0, 0), (0, 3), (3, 0), (3, 3)}
    ring = {(r, c) for r in range(4) for c in range(4) if r in (0, 3) or c in (0, 3)}
    assert _goals(TaskFamily("open", 4, subset="edges").tasks) == ring
    assert len(TaskFamily("open", 4, subset="all").tasks) == 16
    assert len(TaskFamily("open", 4, subset="rooms").tasks) == 16  # no doorways in an open room

    # four rooms 5x5: walls (0,2) (2,0) (2,2) (2,3) (3,2); doorways (1,2) (2,1) (2,4) (4,2)
    free = set(make_layout("four_rooms", 5).free_cells)
    doorways = {(1, 2), (2, 1), (2, 4), (4, 2)}
    assert len(free) == 20 and doorways <= free
    assert _goals(TaskFamily("four_rooms", 5, subset="rooms").tasks) == free - doorways
    assert _goals(TaskFamily("four_rooms", 5, subset="edges").tasks) == {
        (0, 0), (0, 1), (0, 3), (0, 4), (4, 0), (4, 1), (4, 2), (4, 3), (4, 4), (1, 0), (3, 0), (1, 4), (2, 4), (3, 4)
    }
    # an even maze keeps its last row and column as walls: corners are the nearest free cells
    assert _goals(TaskFamily("maze", 6, subset="corners").tasks) == {(0, 0), (0, 4), (4, 0), (4, 4)}
    ascii_map = "##..\n#...\n...."
    assert _goals(TaskFamily(ascii_map, subset="corners").tasks) == {(0, 2), (0, 3), (2, 0), (2, 3)}


def test_goals_in_sealed_single_cells_are_no_tasks() -> None:
    family = TaskFamily("...#.\n...##", subset="all")
    assert (0, 4) not in _goals(family.tasks) and len(family.tasks) == 6


def test_make_env_produces_the_task() -> None:
    family = TaskFamily("four_rooms", 9)
    task = family.train[0]
    env = family.make_env(task, obs_mode="onehot")
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert env.goal == task.goal and info["task_id"] == task.id == env.task_id
        np.testing.assert_array_equal(info["goal"], task.goal)
        assert env.agent_pos != task.goal  # the start defaults to random and never sits on the goal
    assert env.obs_mode == "onehot"
    start = next(c for c in task.resolve_layout().free_cells if c != task.goal)
    env2 = family.make_env(task.id, start=start)
    env2.reset(seed=0)
    assert env2.agent_pos == start and env2.goal == task.goal


def test_multigoal_env_draws_only_from_its_split() -> None:
    family = TaskFamily("open", 5)
    env = family.make_multigoal_env("held_out")
    seen = set()
    for seed in range(80):
        _, info = env.reset(seed=seed)
        seen.add(env.goal)
        assert info["task_id"] == family.task(info["task_id"]).id
    assert seen == _goals(family.held_out)
    assert env.observe_goal and env.observation_space.shape == (4,)


def test_task_round_trip_and_lookup() -> None:
    family = TaskFamily("maze", 7, layout_seed=2)
    task = family.held_out[0]
    data = json.loads(json.dumps(task.to_dict()))
    assert GoalTask.from_dict(data) == task
    assert family.task(task.id) is task
    assert task.id == f"maze-7x7-s2/g{task.goal[0]}_{task.goal[1]}"
    assert task.resolve_layout() == make_layout("maze", 7, 2)
    assert family.name == "maze-7x7-s2/all"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subset": "diagonal"}, r"subset='diagonal' is not allowed"),
        ({"held_out_fraction": 0.0}, r"held_out_fraction=0.0 is not allowed"),
        ({"held_out_fraction": 1.5}, r"held_out_fraction=1.5 is not allowed"),
        ({"layout": "S#.\n###"}, r"subset='all' of layout .* has 0 task"),
        ({"layout": "nowhere"}, r"layout='nowhere' is not allowed"),
    ],
)
def test_bad_family_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TaskFamily(**kwargs)


def test_bad_lookups() -> None:
    family = TaskFamily("open", 3)
    with pytest.raises(ValueError, match=r"task_id='open-3x3/g9_9' is not in family"):
        family.task("open-3x3/g9_9")
    with pytest.raises(ValueError, match=r"split='test' is not allowed"):
        family.split("test")
    with pytest.raises(ValueError, match=r"goal=\(5, 5\) is outside the grid"):
        GoalTask("open", 3, (5, 5)).make_env()


def test_every_subset_name_works() -> None:
    for subset in SUBSETS:
        assert len(TaskFamily("four_rooms", 9, subset=subset).tasks) >= 4


def test_env_kwargs_for_an_observation_space() -> None:
    task = GoalTask("four_rooms", 9, (1, 1))
    options = task.observation_spaces()
    assert [tuple(kw.values()) for kw, _ in options] == [
        ("coords", False), ("coords", True), ("onehot", False), ("onehot", True), ("grid", False), ("grid", True)
    ]
    for kwargs, space in options:
        assert task.env_kwargs_for_space(space) == kwargs
        assert task.make_env(**kwargs).observation_space == space
    assert task.env_kwargs_for_space(GoalTask("open", 5, (4, 4)).make_env(obs_mode="onehot").observation_space) is None
