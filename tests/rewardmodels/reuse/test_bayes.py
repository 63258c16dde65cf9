"""The exact Bayes posterior over goal cells: exact values where the answer is known, bounds where it is random."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.envs.layouts import make_layout
from rewardshare.feedback import Teacher, collect_demonstrations, collect_preferences, collect_transitions
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior, TeacherModel

OPEN5 = make_layout("open", 5)


def test_prior_is_uniform_over_free_cells() -> None:
    post = GoalPosterior(OPEN5)
    assert len(post.candidates) == 25
    assert post.entropy() == pytest.approx(math.log(25))
    np.testing.assert_allclose(post.weights, 1 / 25)


def test_goal_entering_label_identifies_the_goal() -> None:
    # moving right from (2, 2) earns +1 +5 only if the goal is (2, 3): one noiseless label rules out every other goal
    post = GoalPosterior(OPEN5)
    post.condition(post.label_loglik([[2, 2]], [1], [6.0]))
    assert post.map_goal() == (2, 3)
    assert post.entropy() == pytest.approx(0.0, abs=1e-9)
    teacher = Teacher(GoalTask("open", 5, (2, 3)))
    np.testing.assert_allclose(post.mean_table(), teacher.true_reward_table(), atol=1e-6)


def test_dataset_update_and_reset() -> None:
    task = GoalTask("open", 5, (1, 3))
    post = GoalPosterior(OPEN5)
    post.update(collect_transitions(task, 96, seed=0))  # the whole table (and more): the goal is known
    assert post.map_goal() == (1, 3)
    assert post.weights.max() == pytest.approx(1.0)
    cells = np.array([[0, 0], [4, 4], [1, 2]])
    np.testing.assert_allclose(post.reward(cells, [1, 2, 3], cells),
                               Teacher(task).true_reward(cells, [1, 2, 3], cells), atol=1e-6)
    assert post.reset().entropy() == pytest.approx(math.log(25))


def test_one_successful_demonstration_identifies_the_goal() -> None:
    task = GoalTask("four_rooms", 9, (7, 7))
    demos = collect_demonstrations(task, n_episodes=1, seed=3)
    assert bool(demos.episode_success[0])
    post = GoalPosterior(task.resolve_layout()).update(demos)
    assert post.map_goal() == (7, 7)
    assert post.weights.max() == pytest.approx(1.0)


def test_greedy_demonstration_likelihood_is_uniform_over_shortest_path_actions() -> None:
    post = GoalPosterior(OPEN5, candidates=[(4, 4)])
    # from (0, 0) both "down" and "right" are on a shortest path to (4, 4): each has probability 1/2
    ll = post.demonstration_loglik([[0, 0]], [1], done=None)
    assert ll[0] == pytest.approx(math.log(0.5))
    eps = post.demonstration_loglik([[0, 0]], [1], epsilon=0.2)
    assert eps[0] == pytest.approx(math.log(0.8 * 0.5 + 0.2 / 4))


def test_preferences_never_rule_out_the_true_goal_and_concentrate_on_it() -> None:
    task = GoalTask("open", 5, (0, 4))
    post = GoalPosterior(OPEN5)
    prefs = collect_preferences(task, 64, segment_length=4, seed=1)
    truth = post.candidates.tolist().index([0, 4])
    post.update(prefs.select(np.arange(8)))
    assert post.weights[truth] > 1 / 25  # more likely than under the prior
    post.update(prefs.select(np.arange(8, 64)))
    assert post.map_goal() == (0, 4)


def test_flipped_labels_keep_the_true_goal_possible() -> None:
    family = TaskFamily("open", 5, split_seed=0)
    task = family.held_out[0]
    data = collect_transitions(task, 40, seed=0, flip_prob=0.2)
    model = TeacherModel.from_metadata(data.metadata)
    assert model.flip_prob == pytest.approx(0.2)
    post = GoalPosterior(OPEN5, model).update(data)
    assert post.map_goal() == task.goal
    # the same labels read as noiseless rule the true goal out (a flip contradicts it)
    strict = GoalPosterior(OPEN5).update(data)
    truth = post.candidates.tolist().index(list(task.goal))
    assert strict.weights[truth] < 1e-6 < post.weights[truth]


def test_bad_input_is_refused() -> None:
    rooms = make_layout("four_rooms", 9)
    wall = tuple(int(v) for v in np.argwhere(rooms.walls)[0])
    with pytest.raises(ValueError, match="not free cells"):
        GoalPosterior(rooms, candidates=[wall])
    with pytest.raises(ValueError, match="candidates is empty"):
        GoalPosterior(OPEN5, candidates=[])
    with pytest.raises(ValueError, match="prior of shape"):
        GoalPosterior(OPEN5, prior=[1.0, 2.0])
    with pytest.raises(TypeError, match="Transitions, Preferences or Demonstrations"):
        GoalPosterior(OPEN5).update({"label": [1.0]})
    with pytest.raises(ValueError, match="records no teacher"):
        TeacherModel.from_metadata({})
