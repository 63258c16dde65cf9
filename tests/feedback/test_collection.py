"""Collection: coverage strategies, split collection, observations, segments, demonstrations, budgets."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from rewardshare.envs import GoalTask, GridGoalEnv, TaskFamily, distances_to, move
from rewardshare.feedback import (
    BudgetExhausted,
    CollectionOptions,
    EnvOptions,
    Teacher,
    Transitions,
    collect_demonstrations,
    collect_preferences,
    collect_transitions,
)

TASK = GoalTask("four_rooms", 7, (6, 6))
FAMILY = TaskFamily("four_rooms", 7)


def check_transitions_are_real(data, absorbing: bool = False) -> None:
    """Every item follows the layout's dynamics, and done marks exactly the steps that reach the goal."""
    for tid, part in data.by_task().items():
        task = FAMILY.task(tid) if tid != TASK.id else TASK
        layout = task.resolve_layout()
        for pos, a, nxt, done in zip(part.agent_pos, part.action, part.next_agent_pos, part.done, strict=True):
            pos, nxt = tuple(pos), tuple(nxt)
            assert nxt == (task.goal if pos == task.goal and absorbing else move(layout, pos, int(a)))
            assert bool(done) == (nxt == task.goal and pos != task.goal and not absorbing)


def test_uniform_coverage_covers_every_free_cell_action_pair() -> None:
    free = [c for c in TASK.resolve_layout().free_cells if c != TASK.goal]
    pairs = {(c, a) for c in free for a in range(4)}
    data = collect_transitions(TASK, 3 * len(pairs))
    counts = Counter((tuple(p), int(a)) for p, a in zip(data.agent_pos, data.action, strict=True))
    assert set(counts) == pairs and set(counts.values()) == {3}
    more = collect_transitions(TASK, len(pairs) + 7, seed=1)
    counts = Counter((tuple(p), int(a)) for p, a in zip(more.agent_pos, more.action, strict=True))
    assert set(counts) == pairs and sorted(Counter(counts.values()).items()) == [(1, len(pairs) - 7), (2, 7)]
    absorbing = collect_transitions(TASK, len(pairs) + 4, env=EnvOptions(absorbing_goal=True))
    cells = {tuple(p) for p in absorbing.agent_pos}
    assert TASK.goal in cells  # with an absorbing goal the moves out of it are part of the episode
    check_transitions_are_real(data)
    check_transitions_are_real(absorbing, absorbing=True)
    assert np.all(absorbing.label[(absorbing.agent_pos == TASK.goal).all(axis=1)] == 0.0)


def test_noiseless_labels_are_the_teachers_true_reward() -> None:
    for coverage in ("uniform", "random", "expert"):
        data = collect_transitions(TASK, 500, coverage=coverage, reward="sparse", seed=2)
        teacher = Teacher(TASK, reward="sparse")
        assert np.array_equal(data.label, teacher.true_reward(data.agent_pos, data.action, data.next_agent_pos))


@pytest.mark.parametrize(("obs_mode", "observe_goal"), [("coords", False), ("onehot", True), ("grid", True),
                                                        ("grid", False)])
def test_observations_are_the_envs(obs_mode: str, observe_goal: bool) -> None:
    tasks = FAMILY.train[:2]
    data = collect_transitions(tasks, 200, coverage={"random": 0.5, "uniform": 0.5},
                               env=EnvOptions(obs_mode=obs_mode, observe_goal=observe_goal))
    for task in tasks:
        env = task.make_env(obs_mode=obs_mode, observe_goal=observe_goal)
        part = data.by_task()[task.id]
        assert part.obs.shape[1:] == env.observation_space.shape
        for i in range(len(part)):
            assert np.array_equal(part.obs[i], env.observation_for(tuple(part.agent_pos[i])))
            assert np.array_equal(part.next_obs[i], env.observation_for(tuple(part.next_agent_pos[i])))


def test_random_and_expert_rollouts_follow_the_dynamics() -> None:
    random = collect_transitions(FAMILY.train[:4], 2000, coverage="random", seed=3)
    check_transitions_are_real(random)
    own_goal = np.array([FAMILY.task(tid).goal for tid in random.task_id])
    assert not (random.agent_pos == own_goal).all(-1).any()  # a terminating goal is never left
    expert = collect_transitions(FAMILY.train[:4], 2000, coverage="expert", seed=3)
    check_transitions_are_real(expert)
    assert np.all(expert.label > 0)  # an epsilon-0 expert only makes progress
    assert expert.done.sum() > 50  # and reaches its goals


def test_absorbing_rollouts_keep_the_agent_on_the_goal() -> None:
    data = collect_transitions(TASK, 3000, coverage="expert", env=EnvOptions(absorbing_goal=True, max_steps=30))
    check_transitions_are_real(data, absorbing=True)
    on_goal = (data.agent_pos == TASK.goal).all(axis=1)
    assert on_goal.sum() > 100 and not data.done.any()
    assert np.all(data.label[on_goal] == 0.0)


def test_mixture_splits_items_by_weight() -> None:
    data = collect_transitions(TASK, 400, coverage={"uniform": 1, "expert": 3}, seed=4)
    assert data.metadata["coverage"] == {"uniform": 0.25, "expert": 0.75}
    assert np.all(data.label[100:] > 0)  # the expert's 300 items come after the uniform 100
    assert np.any(data.label[:100] < 0)


def test_collection_over_a_split_has_the_right_task_ids() -> None:
    data = collect_transitions(FAMILY.train, 1003, coverage="random")
    counts = Counter(data.task_id.tolist())
    assert set(counts) == {t.id for t in FAMILY.train}
    assert not set(counts) & {t.id for t in FAMILY.held_out}
    assert max(counts.values()) - min(counts.values()) <= 1 and sum(counts.values()) == 1003
    assert [t["id"] for t in data.metadata["tasks"]] == [t.id for t in FAMILY.train]
    env = GridGoalEnv(**data.metadata["env_kwargs"])  # the metadata rebuilds the env
    assert env.layout == FAMILY.train[0].resolve_layout()
    held = collect_preferences(FAMILY.held_out, 40, segment_length=3)
    assert set(held.task_id.tolist()) == {t.id for t in FAMILY.held_out}


def test_a_family_must_be_given_as_a_split() -> None:
    with pytest.raises(TypeError, match=r"is a TaskFamily: pass one of its splits, e.g. family.train"):
        collect_transitions(FAMILY, 10)  # type: ignore[arg-type]


def test_tasks_on_different_layouts_in_one_call() -> None:
    tasks = [GoalTask("open", 5, (4, 4)), GoalTask("maze", 7, (6, 6))]
    data = collect_transitions(tasks, 200, coverage="random")
    assert data.task_ids == [t.id for t in tasks]
    assert data.metadata["env_kwargs"]["layout"] is None  # no one env describes both tasks
    for task in tasks:
        part = data.by_task()[task.id]
        layout = task.resolve_layout()
        assert all(layout.is_free(tuple(p)) for p in part.agent_pos)


def test_collection_is_reproducible() -> None:
    kwargs = {"coverage": {"random": 0.5, "expert": 0.5}, "noise": 0.3, "expert_epsilon": 0.2}
    a = collect_transitions(FAMILY.train[:3], 600, seed=5, **kwargs)
    assert a.equals(collect_transitions(FAMILY.train[:3], 600, seed=5, **kwargs))
    assert not np.array_equal(a.label, collect_transitions(FAMILY.train[:3], 600, seed=6, **kwargs).label)


def test_budgets_are_charged_exactly_and_checked_before_collecting() -> None:
    teachers = [Teacher(t, budget=100, seed=k) for k, t in enumerate(FAMILY.train[:2])]
    data = collect_transitions(teachers, 150, coverage="random")
    assert [t.spent for t in teachers] == [75, 75] and data.metadata["budget_spent"] == 150
    with pytest.raises(BudgetExhausted, match="asked for 30 queries but only 25"):
        collect_transitions(teachers, 60)
    assert [t.spent for t in teachers] == [75, 75]
    collect_preferences(teachers, 40, segment_length=2)
    assert [t.spent for t in teachers] == [95, 95]
    demos = collect_demonstrations(teachers, budget=10)
    steps = Counter(demos.task_id.tolist())  # a task whose shortest episode exceeds its 5 steps gets none
    assert [t.spent for t in teachers] == [95 + steps.get(t.task.id, 0) for t in teachers]
    assert demos.n_steps == sum(steps.values()) <= 10
    with pytest.raises(ValueError, match=r"teacher options \['noise'\] were given together with Teacher objects"):
        collect_transitions(teachers, 2, noise=0.1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: collect_transitions(TASK, 0), r"n=0 is not allowed: use an int >= 1"),
        (lambda: collect_transitions(TASK, 10, coverage="everywhere"), r"coverage='everywhere' is not allowed"),
        (lambda: collect_transitions(TASK, 10, coverage={"uniform": -1}), r"coverage\['uniform'\]=-1 is not allowed"),
        (lambda: collect_transitions(TASK, 10, coverage={"expert": 0}), r"has no positive weight"),
        (lambda: collect_transitions([TASK, TASK], 10), r"the same task more than once"),
        (lambda: collect_transitions([], 10), r"tasks=\[\] is not allowed"),
        (lambda: collect_transitions(TASK, 10, coverage="expert", expert_epsilon=2),
         r"expert_epsilon=2 is not allowed"),
        (lambda: collect_transitions(TASK, 10, env=EnvOptions(obs_mode="pixels")), r"obs_mode='pixels' is not allowed"),
        (lambda: collect_preferences(TASK, 10, segment_length=50, env=EnvOptions(max_steps=20)),
         r"segment_length=50 is not allowed: it must be <= max_steps=20"),
        (lambda: collect_demonstrations(TASK), r"give exactly one of them"),
        (lambda: collect_demonstrations(TASK, 3, noise_kind="gumbel"), r"noise_kind='gumbel' is not allowed"),
        (lambda: collect_demonstrations(TASK, 3, noise_levels=(1.5,)), r"noise_levels holds 1.5"),
    ],
)
def test_bad_arguments_are_refused(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("absorbing", [False, True])
def test_preference_segments_are_contiguous_and_labelled_by_return(absorbing: bool) -> None:
    tasks = FAMILY.train[:3]
    data = collect_preferences(tasks, 300, segment_length=6, coverage={"random": 0.5, "expert": 0.3, "uniform": 0.2},
                               env=EnvOptions(absorbing_goal=absorbing, obs_mode="onehot"), seed=1)
    assert data.obs_a.shape == (300, 6, 49) and data.segment_length == 6
    for tid, part in data.by_task().items():
        task = FAMILY.task(tid)
        teacher = Teacher(task)
        goal = np.array(task.goal)
        for side in ("a", "b"):
            pos, nxt = getattr(part, f"agent_pos_{side}"), getattr(part, f"next_agent_pos_{side}")
            act, done = getattr(part, f"action_{side}"), getattr(part, f"done_{side}")
            assert np.array_equal(nxt[:, :-1], pos[:, 1:])  # one episode, no gaps
            assert not (pos[:, 0] == goal).all(-1).any()  # segments start off the goal
            at_goal = (pos == goal).all(-1)
            assert np.all((nxt == goal).all(-1)[at_goal])  # after the goal: absorbing padding
            reached = (nxt == goal).all(-1)
            assert np.array_equal(done, (reached | at_goal) & (not absorbing))
            for i in range(0, len(part), 7):
                for t in range(6):
                    if not at_goal[i, t]:
                        assert tuple(nxt[i, t]) == move(task.resolve_layout(), tuple(pos[i, t]), int(act[i, t]))
        ra = teacher.segment_return(part.agent_pos_a, part.action_a, part.next_agent_pos_a)
        rb = teacher.segment_return(part.agent_pos_b, part.action_b, part.next_agent_pos_b)
        assert np.array_equal(part.label, np.where(ra > rb, 1.0, np.where(ra < rb, 0.0, 0.5)).astype(np.float32))
    assert set(np.unique(data.label).tolist()) == {0.0, 0.5, 1.0}


def test_uniform_preference_segments_start_everywhere() -> None:
    data = collect_preferences(TASK, 400, segment_length=2, coverage="uniform")
    starts = {tuple(p) for p in np.concatenate([data.agent_pos_a[:, 0], data.agent_pos_b[:, 0]])}
    free = {c for c in TASK.resolve_layout().free_cells if c != TASK.goal}
    assert starts == free


def test_epsilon_zero_demonstrations_are_shortest_paths() -> None:
    data = collect_demonstrations(FAMILY.train[:5], 40)
    assert len(data) == 40 and data.episode_success.all()
    for ep in data.episodes():
        task = FAMILY.task(ep.task_id)
        start = tuple(ep.agent_pos[0])
        assert len(ep.action) == distances_to(task.resolve_layout(), task.goal)[start]
        assert ep.done[-1] and not ep.done[:-1].any()
        assert ep.episode_return == pytest.approx(
            Teacher(task).true_reward(ep.agent_pos, ep.action, ep.next_agent_pos).sum())


def test_noisy_demonstrations_reach_the_goal_or_are_truncated() -> None:
    data = collect_demonstrations(TASK, 60, noise_levels=(0.0, 0.5, 1.0), env=EnvOptions(max_steps=25), seed=2)
    assert sorted(Counter(data.demonstrator_noise.tolist()).items()) == [(0.0, 20), (0.5, 20), (1.0, 20)]
    lengths = data.episode_lengths
    for ep, n in zip(data.episodes(), lengths, strict=True):
        reached = tuple(ep.next_agent_pos[-1]) == TASK.goal
        assert reached == ep.success and (reached or n == 25)
        assert np.array_equal(ep.next_agent_pos[:-1], ep.agent_pos[1:])
    noisy = data.demonstrator_noise == 1.0
    assert lengths[noisy].mean() > lengths[~noisy].mean()
    assert data.metadata["noise_levels"] == [0.0, 0.5, 1.0] and data.metadata["budget_spent"] == data.n_steps


def test_temperature_and_absorbing_demonstrations() -> None:
    data = collect_demonstrations(TASK, 10, noise_kind="temperature", noise_levels=(0.0, 3.0),
                                  env=EnvOptions(absorbing_goal=True, max_steps=20))
    assert np.all(data.episode_lengths == 20) and not data.done.any()
    assert data.metadata["noise_kind"] == "temperature"


def test_demonstration_budget_counts_steps() -> None:
    teacher = Teacher(TASK, budget=200)
    data = collect_demonstrations(teacher, budget=120, noise_levels=(0.0, 0.3))
    assert data.n_steps <= 120 and teacher.spent == data.n_steps == data.metadata["budget_spent"]
    # each level gets 60 steps and stops only when its next episode does not fit; greedy episodes are short
    longest = distances_to(TASK.resolve_layout(), TASK.goal).max()
    greedy_steps = data.episode_lengths[data.demonstrator_noise == 0.0].sum()
    assert 60 - longest < greedy_steps <= 60
    with pytest.raises(BudgetExhausted):
        collect_demonstrations(teacher, budget=100)


def test_obs_for_every_registered_obs_mode_matches_a_vector_rollout() -> None:
    """The collector's observation tables are the env's: compare with a direct GridGoalEnv."""
    data = collect_transitions(TASK, 50, coverage="random", env=EnvOptions(obs_mode="grid", observe_goal=True))
    env = GridGoalEnv(layout="four_rooms", size=7, goal=TASK.goal, obs_mode="grid", observe_goal=True)
    assert isinstance(data, Transitions)
    for i in range(50):
        assert np.array_equal(data.obs[i], env.observation_for(tuple(data.agent_pos[i])))


def test_parameter_objects_are_validated_frozen_and_recorded() -> None:
    with pytest.raises(ValueError, match=r"max_steps=0 is not allowed: use an int >= 1"):
        EnvOptions(max_steps=0)
    with pytest.raises(ValueError, match=r"observe_goal='yes' is not allowed: use True or False"):
        EnvOptions(observe_goal="yes")
    with pytest.raises(ValueError, match=r"num_envs=0 is not allowed: use an int >= 1"):
        CollectionOptions(num_envs=0)
    with pytest.raises(ValueError, match=r"metadata=\[1\] is not allowed: use a mapping"):
        CollectionOptions(metadata=[1])
    with pytest.raises(TypeError, match=r"env=\{'obs_mode': 'onehot'\} is not allowed: use EnvOptions"):
        collect_transitions(TASK, 4, env={"obs_mode": "onehot"})
    env = EnvOptions(obs_mode="onehot", max_steps=40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.obs_mode = "grid"  # type: ignore[misc]
    options = CollectionOptions(num_envs=4, env_id="rewardshare/GridGoal-FourRooms-v0", metadata={"note": "x"})
    data = collect_transitions(TASK, 20, coverage="random", env=env, options=options)
    assert data.metadata["env_kwargs"] == {"layout": "four_rooms", "size": 7, "layout_seed": 0, **env.env_kwargs()}
    assert data.metadata["env_id"] == "rewardshare/GridGoal-FourRooms-v0" and data.metadata["note"] == "x"
    assert data.obs.shape == (20, 49)
    # the batch size changes the rollouts, not what a default collection draws
    assert collect_transitions(TASK, 20, seed=3).equals(collect_transitions(TASK, 20, seed=3,
                                                                            options=CollectionOptions(progress=False)))


def test_skipped_preference_queries_are_charged_but_dropped() -> None:
    # a teacher that skips every comparison of two poor segments: those pairs leave no item, but cost the budget
    teacher = Teacher(GoalTask("open", 5, (4, 4)), skip=1.0, budget=40)
    prefs = collect_preferences(teacher, 40, segment_length=3, seed=0)
    assert teacher.spent == 40
    assert 0 < len(prefs) < 40
    assert not np.isnan(prefs.label).any()
    assert len(prefs.action_a) == len(prefs.label) == len(prefs.task_id)
