"""The exact Bayes posterior over goal cells: exact values where the answer is known, bounds where it is random."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.envs.layouts import make_layout
from rewardshare.feedback import Teacher, collect_demonstrations, collect_preferences, collect_transitions
from rewardshare.feedback.preference_model import preference_outcome_probs
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


# -- the teacher's B-Pref settings in the preference likelihood -------------------------------------------------------
def random_segments(layout, n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` segments that follow the layout's dynamics from random free cells with random actions."""
    rng = np.random.default_rng(seed)
    teacher = Teacher(GoalTask(layout, 0, layout.free_cells[0]))
    w = layout.width
    free = np.array(layout.free_cells)
    cell = free[rng.integers(len(free), size=n)]
    flat = cell[:, 0] * w + cell[:, 1]
    pos, act = [], rng.integers(4, size=(n, length))
    for t in range(length):
        pos.append(np.stack([flat // w, flat % w], axis=1))
        flat = teacher.next_table[flat, act[:, t]]
    return np.stack(pos, axis=1), act


@pytest.mark.parametrize("settings", [{}, {"beta": 0.8, "flip_prob": 0.1}, {"myopia": 0.7, "equal": 0.6},
                                      {"myopia": 0.5, "equal": 1.0, "skip": -0.5, "beta": 2.0, "flip_prob": 0.2}])
def test_preference_outcomes_are_the_teachers_model_under_every_goal(settings: dict) -> None:
    layout = make_layout("four_rooms", 9)
    post = GoalPosterior(layout, TeacherModel(**settings))
    (pa, aa), (pb, ab) = random_segments(layout, 60, 4, 0), random_segments(layout, 60, 4, 1)
    probs = post.preference_outcomes(pa, aa, pb, ab)
    assert probs.shape == (len(post.candidates), 60, 4)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    kwargs = post.teacher.preference_kwargs()
    for g, cell in enumerate(post.candidates[::7]):
        teacher = Teacher(GoalTask(layout, 0, tuple(cell)), **settings)
        # the teacher judges the action, so next_pos only has to be a free cell
        ra, rb = teacher.perceived_return(pa, aa, pa), teacher.perceived_return(pb, ab, pb)
        np.testing.assert_array_equal(probs[7 * g], preference_outcome_probs(ra, rb, **kwargs))


def test_myopic_labels_are_explained_only_by_a_myopic_model() -> None:
    # on open 5x5 with goal (4, 4): A = closer, closer, farther (+1 +1 -1); B = farther, farther, closer (-1 -1 +1);
    # the plain return prefers A, the myopic one (gamma 0.5: -0.25 vs 0.25) prefers B
    pa, aa = np.array([[[2, 2], [2, 3], [3, 3]]]), np.array([[1, 2, 0]])
    pb, ab = np.array([[[2, 2], [2, 1], [1, 1]]]), np.array([[3, 0, 2]])
    truth = GoalPosterior(OPEN5).candidates.tolist().index([4, 4])
    plain = GoalPosterior(OPEN5).preference_loglik(pa, aa, pb, ab, [0.0])
    myopic = GoalPosterior(OPEN5, TeacherModel(myopia=0.5)).preference_loglik(pa, aa, pb, ab, [0.0])
    assert plain[truth] < -20 and myopic[truth] == 0.0


def test_equal_ties_and_skips_are_evidence() -> None:
    closer, farther = (np.array([[[2, 2]]]), np.array([[1]])), (np.array([[[2, 2]]]), np.array([[3]]))
    model = TeacherModel(equal=2.5, skip=0.0)
    post = GoalPosterior(OPEN5, model)
    truth = post.candidates.tolist().index([4, 4])
    tie = post.preference_loglik(*closer, *farther, [0.5])
    assert tie[truth] == 0.0 and GoalPosterior(OPEN5).preference_loglik(*closer, *farther, [0.5])[truth] < -20
    # skip = 0: the pair (right vs left from (2, 2)) is skipped exactly under the goals where both moves score below 0
    probs = post.preference_outcomes(*closer, *farther)[:, 0]
    rewards = post.rewards[:, 2 * 5 + 2]
    np.testing.assert_array_equal(probs[:, 3] == 1.0, np.maximum(rewards[:, 1], rewards[:, 3]) < 0.0)
    skipped = post.preference_loglik(*closer, *farther, [np.nan])
    kept = post.preference_loglik(*closer, *farther, [0.5])
    np.testing.assert_array_equal(skipped == 0.0, probs[:, 3] == 1.0)
    assert not np.any((skipped == 0.0) & (kept == 0.0))  # no goal explains both a skip and a kept pair


def test_teacher_model_reads_the_bpref_settings_from_metadata() -> None:
    task = GoalTask("open", 5, (0, 4))
    prefs = collect_preferences(task, 16, segment_length=3, seed=1,
                                teacher_kwargs={"myopia": 0.8, "equal": 0.5, "skip": -2.5})
    model = TeacherModel.from_metadata(prefs.metadata)
    assert (model.myopia, model.equal, model.skip) == (0.8, 0.5, -2.5)
    assert TeacherModel.from_metadata({"teachers": [{"reward": "dense"}]}).skip is None  # older datasets
    kept = prefs.select(~np.isnan(prefs.label))
    post = GoalPosterior(OPEN5, model).update(kept)
    assert post.weights[post.candidates.tolist().index([0, 4])] > 1 / 25
