"""LearnedRewardWrapper: the reward is the model's output, the true reward is kept, bad models are refused."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from rewardshare.envs import GoalTask, GridGoalEnv
from rewardshare.feedback import Teacher
from rewardshare.rewardmodels import RewardModel
from rewardshare.wrappers import EPISODE_INFO_KEYS, LearnedRewardWrapper, RewardOptions


def _model(env: gym.Env, **kw) -> RewardModel:
    return RewardModel(env.observation_space, env.action_space, hidden_sizes=(16, 16), seed=0, **kw)


def _rollout(env: gym.Env, actions: np.ndarray, seed: int = 0) -> list[tuple]:
    """(obs, action, next_obs, reward, terminated, truncated, info) per step, resetting at episode ends."""
    out = []
    obs, _ = env.reset(seed=seed)
    for a in actions:
        a = a.item() if isinstance(env.action_space, gym.spaces.Discrete) else a
        nxt, r, term, trunc, info = env.step(a)
        out.append((obs, a, nxt, r, term, trunc, info))
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    return out


ENVS = {
    "grid-coords": lambda: GridGoalEnv(size=5, start="random", max_steps=12),
    "grid-onehot-goal": lambda: GridGoalEnv(size=5, start="random", goal="random", observe_goal=True,
                                            obs_mode="onehot", max_steps=12),
    "frozenlake": lambda: gym.make("FrozenLake-v1", is_slippery=True),
    "cartpole": lambda: gym.make("CartPole-v1"),
}


@pytest.mark.parametrize("name", list(ENVS))
@pytest.mark.parametrize("use_next_obs", [False, True])
def test_reward_is_model_output_and_true_reward_is_env_reward(name: str, use_next_obs: bool) -> None:
    env = ENVS[name]()
    model = _model(env, use_next_obs=use_next_obs, use_done=use_next_obs)
    wrapped = LearnedRewardWrapper(ENVS[name](), model, RewardOptions(use_table=False))
    acts = np.random.default_rng(1).integers(env.action_space.n, size=150)
    steps = _rollout(wrapped, acts)
    plain = _rollout(env, acts)
    assert len(steps) == len(plain)
    rets: list[float] = []
    ret_true = ret_learned = 0.0
    for (obs, a, nxt, r, term, trunc, info), (_, _, nxt_p, r_p, term_p, trunc_p, _) in zip(steps, plain, strict=True):
        expected = model.predict(
            np.array(obs)[None], np.array([a]), np.array(nxt)[None] if use_next_obs else None,
            np.array([term]) if use_next_obs else None,
        )[0]
        assert r == float(expected)  # exactly the model's output
        assert info["learned_reward"] == r
        assert info["true_reward"] == float(r_p)  # the unwrapped env's own reward
        np.testing.assert_array_equal(nxt, nxt_p)
        assert (term, trunc) == (term_p, trunc_p)
        ret_true += float(r_p)
        ret_learned += r
        if term or trunc:
            assert set(EPISODE_INFO_KEYS) <= set(info)
            assert info["episode_true_return"] == pytest.approx(ret_true, abs=1e-12)
            assert info["episode_learned_return"] == pytest.approx(ret_learned, abs=1e-9)
            if name.startswith("grid"):
                assert info["episode_success"] == info["is_success"]
            else:
                assert info["episode_success"] is None  # these envs report no success
            rets.append(ret_true)
            ret_true = ret_learned = 0.0
        else:
            assert "episode_true_return" not in info
    assert rets, "the rollout should contain finished episodes"


def test_grid_episode_success_and_returns() -> None:
    # goal (4, 4) from start (4, 2): right, right reaches it in two steps
    env = GridGoalEnv(size=5, start=(4, 2))
    w = LearnedRewardWrapper(env, _model(env), RewardOptions(use_table=False))
    w.reset(seed=0)
    _, r1, term, _, info = w.step(1)
    assert not term and "episode_success" not in info
    assert w.episode_so_far == (0.0, r1, 1)  # what a cut-off episode reports
    _, r2, term, _, info = w.step(1)
    assert term
    assert info["episode_success"] is True
    assert info["episode_true_return"] == 1.0
    assert info["episode_length"] == 2
    assert info["episode_learned_return"] == pytest.approx(r1 + r2, abs=1e-12)


def test_refuses_model_for_other_spaces_naming_both() -> None:
    model = _model(GridGoalEnv(size=6))
    with pytest.raises(ValueError, match=r"(?s)does not fit.*observation_space=.*shape=\(2,\).*high=5.*high=7"):
        LearnedRewardWrapper(GridGoalEnv(size=8), model)
    cart = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"(?s)observation_space=.*action_space=.*observation_space=.*action_space="):
        LearnedRewardWrapper(cart, model)


def test_bad_reward_arguments() -> None:
    env = GridGoalEnv(size=5)
    with pytest.raises(ValueError, match=r"reward='oracle' is not allowed"):
        LearnedRewardWrapper(env, "oracle")
    with pytest.raises(TypeError, match=r"reward=int is not allowed"):
        LearnedRewardWrapper(env, 3)
    with pytest.raises(ValueError, match=r"reward='teacher' needs a teacher"):
        LearnedRewardWrapper(env, "teacher")
    with pytest.raises(ValueError, match=r"spread_bonus=1.0 needs an ensemble"):
        LearnedRewardWrapper(env, _model(env), RewardOptions(spread_bonus=1.0))
    with pytest.raises(ValueError, match=r"use_table='yes' is not allowed"):
        LearnedRewardWrapper(env, _model(env), RewardOptions(use_table="yes"))
    with pytest.raises(ValueError, match=r"use_table=True is not possible"):
        cartpole = gym.make("CartPole-v1")
        LearnedRewardWrapper(cartpole, _model(cartpole), RewardOptions(use_table=True))
    with pytest.raises(ValueError, match=r"clip=0 is not allowed"):
        LearnedRewardWrapper(env, _model(env), RewardOptions(clip=0))
    with pytest.raises(ValueError, match=r"scale=nan is not allowed"):
        LearnedRewardWrapper(env, _model(env), RewardOptions(scale=float("nan")))
    with pytest.raises(RuntimeError, match=r"before reset"):
        LearnedRewardWrapper(env, _model(env)).step(0)


def test_true_reward_source_passes_env_reward_through() -> None:
    env = GridGoalEnv(size=5, start=(4, 3))
    w = LearnedRewardWrapper(env, "true")
    w.reset(seed=0)
    _, r, term, _, info = w.step(1)
    assert (r, term, info["true_reward"], info["learned_reward"]) == (1.0, True, 1.0, 1.0)


@pytest.mark.parametrize("use_table", [False, True])
def test_teacher_source_uses_agent_cells(use_table: bool) -> None:
    task = GoalTask("open", 5, (4, 4))
    teacher = Teacher(task, reward="dense")
    w = LearnedRewardWrapper(task.make_env(max_steps=30), teacher, RewardOptions(use_table=use_table))
    assert (w.table is not None) == use_table
    obs, info = w.reset(seed=3)
    acts = np.random.default_rng(0).integers(4, size=120)
    seen = set()
    for a in acts:
        pos = info["agent_pos"]
        _, r, term, trunc, info = w.step(int(a))
        expected = teacher.true_reward(pos[None], np.array([a]), info["agent_pos"][None])[0]
        assert r == float(expected)
        seen.add(r)
        if term or trunc:
            obs, info = w.reset()
    assert {1.0, -1.0} <= seen  # closer and farther/bump moves both occurred
    assert teacher.spent == 0  # the oracle reward is free


def test_options_order_scale_clip_add() -> None:
    env = GridGoalEnv(size=5, start=(4, 3))
    teacher = Teacher(GoalTask("open", 5, (4, 4)))
    # reaching the goal: teacher +6 -> *0.5 = 3 -> clip 2 -> + env reward 1 = 3
    w = LearnedRewardWrapper(env, teacher, RewardOptions(scale=0.5, clip=2.0, add_env_reward=True))
    w.reset(seed=0)
    _, r, term, _, info = w.step(1)
    assert term and info["learned_reward"] == 6.0 and info["true_reward"] == 1.0
    assert r == 3.0
    # a bump: -1 * 0.5 = -0.5 (not clipped) + 0
    w.reset(seed=0)
    _, r, _, _, _ = w.step(2)
    assert r == -0.5


def test_running_normalisation_matches_numpy() -> None:
    env = GridGoalEnv(size=5, start="random", max_steps=10)
    model = _model(env)
    w = LearnedRewardWrapper(env, model, RewardOptions(normalize=True, use_table=False))
    raw_plain = LearnedRewardWrapper(
        GridGoalEnv(size=5, start="random", max_steps=10), model, RewardOptions(use_table=False)
    )
    acts = np.random.default_rng(2).integers(4, size=60)
    got = [s[3] for s in _rollout(w, acts)]
    raw = np.array([s[3] for s in _rollout(raw_plain, acts)])
    assert got[0] == 0.0  # the first reward is its own mean
    for t in range(1, len(raw)):
        seen = raw[: t + 1]
        expected = (raw[t] - seen.mean()) / np.sqrt(seen.var() + 1e-8)
        assert got[t] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert w.transform.count == len(raw)


def test_ensemble_mean_and_spread_bonus() -> None:
    env = GridGoalEnv(size=5, start="random", max_steps=10)
    models = [RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=s) for s in range(3)]
    w_mean = LearnedRewardWrapper(
        GridGoalEnv(size=5, start="random", max_steps=10), models, RewardOptions(use_table=False)
    )
    w_bonus = LearnedRewardWrapper(env, models, RewardOptions(spread_bonus=0.5, use_table=False))
    acts = np.random.default_rng(3).integers(4, size=30)
    for (obs, a, _, r_mean, *_), (_, _, _, r_bonus, *_) in zip(_rollout(w_mean, acts), _rollout(w_bonus, acts),
                                                               strict=True):
        preds = np.array([m.predict(np.array(obs)[None], np.array([a]))[0] for m in models], dtype=np.float64)
        assert r_mean == pytest.approx(preds.mean(), abs=1e-12)
        assert r_bonus == pytest.approx(preds.mean() + 0.5 * preds.std(), abs=1e-12)
        assert preds.std() > 0  # members disagree, so the bonus is exercised
    other = RewardModel(GridGoalEnv(size=6).observation_space, env.action_space)
    with pytest.raises(ValueError, match=r"ensemble member models\[1\] has spaces"):
        LearnedRewardWrapper(env, [models[0], other])


def test_reward_options_are_validated_frozen_and_shared_by_every_wrapper() -> None:
    with pytest.raises(ValueError, match=r"normalize='yes' is not allowed: use True or False"):
        RewardOptions(normalize="yes")
    with pytest.raises(ValueError, match=r"spread_bonus=inf is not allowed"):
        RewardOptions(spread_bonus=float("inf"))
    with pytest.raises(ValueError, match=r"use_table=1 is not allowed: use True, False or 'auto'"):
        RewardOptions(use_table=1)
    with pytest.raises(ValueError, match=r"max_table_rows=-1 is not allowed"):
        RewardOptions(max_table_rows=-1)
    options = RewardOptions(normalize=True, scale=2, clip=3)
    assert options.scale == 2.0 and isinstance(options.scale, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.scale = 1.0  # type: ignore[misc]
    transform = options.transform()
    assert (transform.normalize, transform.scale, transform.clip, transform.count) == (True, 2.0, 3.0, 0.0)
    assert transform is not options.transform()  # each wrapper keeps its own running statistics
    assert options.to_dict() == {"normalize": True, "scale": 2.0, "clip": 3.0, "add_env_reward": False,
                                 "spread_bonus": 0.0, "uncertainty": None, "beta": None, "shaping": "none",
                                 "use_table": "auto",
                                 "max_table_rows": options.max_table_rows}
    env = GridGoalEnv(size=5)
    with pytest.raises(TypeError, match=r"options=\{'scale': 2.0\} is not allowed: use RewardOptions"):
        LearnedRewardWrapper(env, _model(env), {"scale": 2.0})
    w = LearnedRewardWrapper(env, _model(env), options)
    assert w.transform.scale == 2.0 and w.transform.normalize
