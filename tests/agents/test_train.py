"""train_agent: bad input fails before training; tiny runs give well-formed, deterministic curves; DQN stores the
learned reward at collection time; (slow) PPO and DQN learn a small grid from the teacher's dense reward."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from rewardshare.agents import COLUMNS, LearningCurve, make_agent, make_config, train_agent
from rewardshare.envs import GoalTask, GridGoalEnv, TaskFamily
from rewardshare.feedback import Teacher
from rewardshare.rewardmodels import RewardModel
from rewardshare.wrappers import RewardOptions

# a train task (never a held-out one) of the small open grid
TASK = TaskFamily("open", 5).train[0]
TINY = dict(total_timesteps=512, eval_every=256, eval_episodes=4, n_envs=4)


def test_small_task_is_a_train_task() -> None:
    fam = TaskFamily("open", 5)
    assert TASK in fam.train and TASK not in fam.held_out


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(algo="a2c"), r"algo='a2c' is not allowed: use one of \('ppo', 'dqn'\)"),
        (dict(total_timesteps=0), r"total_timesteps=0 is not allowed: use an int >= 1"),
        (dict(total_timesteps=-5), r"total_timesteps=-5 is not allowed"),
        (dict(total_timesteps=1.5), r"total_timesteps=1.5 is not allowed"),
        (dict(n_envs=0), r"n_envs=0 is not allowed"),
        (dict(eval_every=0), r"eval_every=0 is not allowed"),
        (dict(eval_episodes=0), r"eval_episodes=0 is not allowed"),
        (dict(reward="oracle"), r"reward='oracle' is not allowed"),
        (dict(agent_kwargs={"learning_rat": 1.0}), r"unknown ppo hyperparameter\(s\) \['learning_rat'\]"),
        (dict(task_or_env="CartPole-v1", reward="teacher"), r"reward='teacher' needs task_or_env to be a GoalTask"),
        (dict(task_or_env="NoSuchEnv-v0"), r"not a registered gymnasium env id"),
    ],
)
def test_bad_input_fails_before_training(kwargs: dict, match: str) -> None:
    args = dict(algo="ppo", task_or_env=TASK, reward="true", **TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_agent(**args)


def test_reward_options_must_be_the_parameter_object() -> None:
    with pytest.raises(TypeError, match=r"reward_options=\{'clip': 1.0\} is not allowed: use RewardOptions"):
        train_agent("ppo", TASK, "true", reward_options={"clip": 1.0}, **TINY)


def test_model_for_other_spaces_is_refused_naming_both() -> None:
    model = RewardModel(GridGoalEnv(size=8).observation_space, GridGoalEnv(size=8).action_space)
    with pytest.raises(ValueError, match=r"(?s)does not fit.*observation_space=.*observation_space="):
        train_agent("ppo", TASK, model, **TINY)
    with pytest.raises(ValueError, match=r"(?s)does not fit"):
        train_agent("dqn", "CartPole-v1", model, **TINY)


def test_dqn_needs_discrete_actions_and_tensorboard_needs_package() -> None:
    with pytest.raises(ValueError, match=r"algo='dqn' needs a Discrete action space"):
        train_agent("dqn", "Pendulum-v1", "true", **TINY)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ValueError, match=r"needs the tensorboard package"):
            train_agent("ppo", TASK, "true", tensorboard_log="tb", **TINY)


def _check_shape(curve: LearningCurve) -> None:
    assert curve.timesteps == [0, 256, 512]
    for c in COLUMNS:
        assert len(getattr(curve, c)) == 3
    assert all(0.0 <= s <= 1.0 for s in curve.success_rate)
    assert curve.wall_time[0] >= 0 and np.all(np.diff(curve.wall_time) >= 0)
    assert all(1 <= n <= 100 for n in curve.episode_length)  # 5x5 horizon: 4 * 25 steps


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_tiny_run_curve_fields_and_determinism(algo: str, tmp_path) -> None:
    # DQN: start learning early so the tiny run trains (and the determinism check covers gradient steps)
    kw = dict(agent_kwargs={"learning_starts": 128} if algo == "dqn" else None, **TINY)
    a = train_agent(algo, TASK, "teacher", seed=3, **kw)
    b = train_agent(algo, TASK, "teacher", seed=3, **kw)
    _check_shape(a)
    assert a.same_values(b)  # same seed -> the same curve
    # the teacher's learned return differs from the env's sparse return
    assert a.learned_return != a.true_return
    meta = a.metadata
    assert meta["algo"] == algo and meta["seed"] == 3 and meta["reward"]["kind"] == "teacher"
    assert meta["task"]["id"] == TASK.id and meta["n_envs"] == 4
    assert meta["reward"]["teacher"]["reward"] == "dense"
    back = LearningCurve.load(a.save(tmp_path / "c.csv"))
    assert back.same_values(a) and back.metadata["algo"] == algo


def test_different_seed_changes_the_run() -> None:
    a = train_agent("ppo", TASK, "teacher", seed=1, **TINY)
    b = train_agent("ppo", TASK, "teacher", seed=2, **TINY)
    assert a.metadata["eval_seed"] != b.metadata["eval_seed"]
    assert not a.same_values(b)


@pytest.mark.parametrize("policy_obs", ["env", "onehot"])
def test_dqn_replay_buffer_holds_the_reward_computed_at_collection(policy_obs: str) -> None:
    teacher = Teacher(TASK)
    curve, agent = train_agent("dqn", TASK, teacher, seed=0, return_agent=True, policy_obs=policy_obs, **TINY)
    assert curve.metadata["policy_obs"] == policy_obs
    buf = agent.replay_buffer
    n = buf.pos if not buf.full else buf.buffer_size
    assert n * TINY["n_envs"] == TINY["total_timesteps"]  # every collected transition, (n, n_envs) rows
    obs, nxt = buf.observations[:n], buf.next_observations[:n]
    if policy_obs == "env":  # coords observations are the agent's cells
        cells, next_cells = obs.reshape(-1, 2).astype(np.int64), nxt.reshape(-1, 2).astype(np.int64)
    else:  # one-hot of the cell, terminal observations included
        assert obs.shape[-1] == 25 and np.all(obs.sum(-1) == 1) and np.all(nxt.sum(-1) == 1)
        flat, next_flat = obs.reshape(-1, 25).argmax(-1), nxt.reshape(-1, 25).argmax(-1)
        cells = np.stack([flat // 5, flat % 5], axis=1)
        next_cells = np.stack([next_flat // 5, next_flat % 5], axis=1)
    act = buf.actions[:n].reshape(-1)
    stored = buf.rewards[:n].reshape(-1)
    np.testing.assert_array_equal(stored, teacher.true_reward(cells, act, next_cells))
    assert {1.0, -1.0, 6.0} <= set(stored.tolist())  # closer, farther/bump, and reaching the goal
    dones = buf.dones[:n].reshape(-1).astype(bool)
    assert dones.any() and np.all(stored[dones & (stored > 1)] == 6.0)


def test_learned_model_picks_the_matching_obs_mode() -> None:
    env = TASK.make_env(obs_mode="onehot")
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=0)
    curve = train_agent("ppo", TASK, model, seed=0, **TINY)
    assert curve.metadata["env_kwargs"] == {"obs_mode": "onehot", "observe_goal": False}
    assert curve.metadata["reward"]["kind"] == "model"
    # the learned return of each eval is the model's sum over the eval episodes, not the true return
    assert curve.learned_return != curve.true_return


def test_gym_id_env_without_success_and_make_agent() -> None:
    curve = train_agent("ppo", "CartPole-v1", "true", seed=0, **TINY)
    assert all(math.isnan(s) for s in curve.success_rate)
    assert curve.learned_return == curve.true_return
    agent = make_agent("dqn", GridGoalEnv(size=5), learning_rate=5e-4)
    assert agent.learning_rate == 5e-4 and agent.target_update_interval == make_config("dqn").target_update_interval
    with pytest.raises(ValueError, match=r"not both"):
        make_agent("ppo", GridGoalEnv(size=5), config=make_config("ppo"), n_steps=64)


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "steps"), [("ppo", 20_000), ("dqn", 20_000)])
def test_teacher_dense_reward_solves_small_grid(algo: str, steps: int) -> None:
    task = GoalTask("open", 5, (4, 2))
    assert task.id in {t.id for t in TaskFamily("open", 5).train}
    curve = train_agent(algo, task, "teacher", total_timesteps=steps, seed=0, eval_every=2_000, eval_episodes=20)
    assert curve.success_rate[0] < 0.9  # an untrained policy does not already solve it
    assert curve.final_success_rate >= 0.9


def test_ensemble_with_spread_bonus_and_normalisation() -> None:
    env = TASK.make_env()
    models = [RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=s) for s in range(2)]
    curve = train_agent("ppo", TASK, models, seed=0, policy_obs="env",
                        reward_options=RewardOptions(spread_bonus=0.5, normalize=True, clip=5.0), **TINY)
    assert curve.metadata["reward"]["kind"] == "ensemble2" and curve.metadata["reward"]["spread_bonus"] == 0.5
    assert curve.metadata["reward_options"]["normalize"] is True and curve.metadata["policy_obs"] == "env"
