"""Evaluation against the teacher: EPIC's invariances, MSE/Pearson, preference accuracy, heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import TINY, make_preferences

from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.feedback import Teacher
from rewardshare.rewardmodels import RewardModel, epic_distance, evaluate, plot_reward_heatmap, preference_accuracy
from rewardshare.rewardmodels.evaluation import (
    canonicalize,
    env_for,
    epic_from_tensors,
    grid_mdp,
    reward_grid,
    reward_tensor,
    transition_rewards,
)

FOUR_ROOMS = GoalTask("four_rooms", 9, (7, 7))


def _teacher_tensor(task: GoalTask):
    mdp = grid_mdp(task)
    return mdp, reward_tensor(Teacher(task).true_reward, mdp)


@pytest.mark.parametrize("task", [TINY, FOUR_ROOMS], ids=lambda t: t.id)
def test_epic_is_zero_under_potential_shaping_for_random_potentials(task):
    mdp, full = _teacher_tensor(task)
    rng = np.random.default_rng(0)
    for gamma in (0.9, 0.99, 1.0):
        for _ in range(3):
            phi = rng.normal(scale=3.0, size=mdp.n_states)
            shaped = full + gamma * phi[None, None, :] - phi[:, None, None]
            np.testing.assert_allclose(canonicalize(shaped, gamma), canonicalize(full, gamma), atol=1e-9)
            assert epic_from_tensors(full, shaped, mdp, gamma) == pytest.approx(0.0, abs=1e-6)


def test_epic_scale_sign_and_self():
    mdp, full = _teacher_tensor(FOUR_ROOMS)
    assert epic_from_tensors(full, full, mdp) == pytest.approx(0.0, abs=1e-7)
    assert epic_from_tensors(full, 7.5 * full + 3.0, mdp) == pytest.approx(0.0, abs=1e-6)
    assert epic_from_tensors(full, -full, mdp) == pytest.approx(1.0, abs=1e-7)
    noise = np.random.default_rng(1).normal(size=full.shape)
    d = epic_from_tensors(full, noise, mdp)
    assert 0.5 < d < 0.9  # unrelated rewards sit near sqrt(1/2)
    teacher = Teacher(FOUR_ROOMS)
    assert epic_distance(teacher.true_reward, teacher.true_reward, FOUR_ROOMS) == pytest.approx(0.0, abs=1e-7)


def test_epic_reference_points_match_the_prototype():
    """Without the goal bonus the teacher sits at EPIC ~0.2; the teacher judges actions (a state-action reward),
    so a perfect reward blind to s' is exact (EPIC 0) even though S' is drawn independently of s and a."""
    mdp, full = _teacher_tensor(FOUR_ROOMS)
    n = mdp.n_states
    into_goal = (mdp.next_state == mdp.goal_state) & (np.arange(n)[:, None] != mdp.goal_state)
    no_bonus = full - 5.0 * into_goal[:, :, None]
    assert 0.18 < epic_from_tensors(full, no_bonus, mdp) < 0.26
    blind = np.repeat(transition_rewards(full, mdp)[:, :, None], n, axis=2)
    assert np.array_equal(blind, full)
    assert epic_from_tensors(full, blind, mdp) == pytest.approx(0.0, abs=1e-7)


def test_evaluate_a_model_that_copies_the_teacher():
    """A model whose head reads a one-hot of (s, a, s') and holds the teacher's values is exact."""
    env = TINY.make_env(obs_mode="onehot")
    teacher = Teacher(TINY)

    class Table(torch.nn.Module):
        observation_space, action_space = env.observation_space, env.action_space

        def __init__(self, table):
            super().__init__()
            self.table = torch.as_tensor(table)

        def forward(self, obs, action, next_obs, done):
            return self.table[obs.argmax(1), action, next_obs.argmax(1)]

        def check_spaces(self, *_):
            pass

    mdp = grid_mdp(env)
    cells = mdp.cells
    table = np.zeros((25, 4, 25))
    s, a, s2 = np.meshgrid(np.arange(25), np.arange(4), np.arange(25), indexing="ij")
    table[s, a, s2] = teacher.true_reward(cells[s.ravel()], a.ravel(), cells[s2.ravel()]).reshape(s.shape)
    flat = np.zeros((25, 4, 25))  # env states are flat indices r * 5 + c
    idx = cells[:, 0] * 5 + cells[:, 1]
    flat[np.ix_(idx, np.arange(4), idx)] = table
    result = evaluate(Table(flat), env, teacher)
    assert result.mse == pytest.approx(0.0, abs=1e-12) and result.pearson == pytest.approx(1.0)
    assert result.epic == pytest.approx(0.0, abs=1e-6) and result.n_transitions == 100
    assert result.to_dict()["epic"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_builds_an_env_with_the_models_obs_mode_and_refuses_others():
    fam = TaskFamily("open", 5)
    task = fam.tasks[3]
    for mode, observe in (("coords", False), ("onehot", False), ("grid", True)):
        env = task.make_env(obs_mode=mode, observe_goal=observe)
        model = RewardModel(env.observation_space, env.action_space, seed=0)
        assert env_for(task, model.observation_space).obs_mode == mode
        result = evaluate(model, task, Teacher(task))
        assert 0.0 <= result.epic <= 1.0 and result.mse > 0
    big = RewardModel(FOUR_ROOMS.make_env(obs_mode="onehot").observation_space, env.action_space)
    with pytest.raises(ValueError, match="no observation mode of task"):
        evaluate(big, task, Teacher(task))
    with pytest.raises(ValueError, match="model reads observation_space"):
        evaluate(big, task.make_env(obs_mode="onehot"), Teacher(task))


def test_preference_accuracy_counts_only_decided_pairs():
    prefs = make_preferences(n=80, seed=3)
    teacher = Teacher(TINY)

    class TeacherModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, obs, action, next_obs, done):
            r = teacher.true_reward(obs.long().numpy(), action.numpy(), next_obs.long().numpy())
            return torch.as_tensor(r)

    assert preference_accuracy(TeacherModel(), prefs) == 1.0
    flipped = prefs.select(np.arange(len(prefs)))
    flipped.label[:] = 1.0 - flipped.label
    assert preference_accuracy(TeacherModel(), flipped) == 0.0
    ties = prefs.select(prefs.label == 0.5)
    assert np.isnan(preference_accuracy(TeacherModel(), ties))


def test_heatmap_is_written_and_matches_the_reward_grid(tmp_path):
    teacher = Teacher(FOUR_ROOMS)
    grid = reward_grid(teacher.true_reward, FOUR_ROOMS)
    assert grid.shape == (4, 9, 9)
    walls = FOUR_ROOMS.resolve_layout().walls
    assert np.isnan(grid[:, walls]).all() and not np.isnan(grid[:, ~walls]).any()
    assert grid[2, 6, 7] == 6.0  # down into the goal: +1 closer, +5 bonus
    env = FOUR_ROOMS.make_env()
    fig = plot_reward_heatmap(RewardModel(env.observation_space, env.action_space, seed=0), FOUR_ROOMS,
                              path=tmp_path / "heat.png", title="untrained")
    assert (tmp_path / "heat.png").stat().st_size > 5000 and len(fig.axes) == 5  # 4 actions + colorbar


def test_state_action_models_are_broadcast_with_the_same_values():
    """A model reading neither s' nor done is evaluated on S x A and broadcast; the values equal the full pass."""
    env = FOUR_ROOMS.make_env()
    model = RewardModel(env.observation_space, env.action_space, seed=0)

    class Opaque(torch.nn.Module):  # hides use_next_obs/use_done, so reward_tensor takes the full (s, a, s') path
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args, **kwargs):
            return self.inner(*args, **kwargs)

    mdp = grid_mdp(FOUR_ROOMS, model)
    fast, full = reward_tensor(model, mdp), reward_tensor(Opaque(), mdp)
    assert fast.shape == full.shape == (mdp.n_states, 4, mdp.n_states)
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-6)
