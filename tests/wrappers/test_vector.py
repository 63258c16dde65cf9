"""The batched wrappers (SB3 VecEnv, gymnasium VectorEnv) equal the single-env wrapper step for step."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardshare.envs import GoalTask, GridGoalEnv, GridGoalVectorEnv
from rewardshare.feedback import Teacher
from rewardshare.rewardmodels import RewardModel
from rewardshare.wrappers import (
    LearnedRewardVecEnvWrapper,
    LearnedRewardVectorWrapper,
    LearnedRewardWrapper,
    RewardOptions,
)

N, SEED, T = 4, 7, 120
F32_TOL = dict(rtol=1e-6, atol=1e-6)  # a batch-of-N forward vs N batch-of-one forwards
GRID_KW = dict(size=5, start="random", max_steps=9)  # short episodes: many autoresets


def _model(space_env: gym.Env, **kw) -> RewardModel:
    return RewardModel(space_env.observation_space, space_env.action_space, hidden_sizes=(16, 16), seed=2, **kw)


def _single_twins(make: Callable[[], gym.Env], reward, actions: list[list[int]], **wkw) -> list[list[tuple]]:
    """Run one single-env wrapper per sub-env over its own action list; (reward, true_reward, info) per step."""
    out = []
    for i, acts in enumerate(actions):
        w = LearnedRewardWrapper(make(), reward, RewardOptions(**wkw))
        w.reset(seed=SEED + i)
        steps = []
        for a in acts:
            _, r, term, trunc, info = w.step(a)
            steps.append((r, info["true_reward"], info))
            if term or trunc:
                w.reset()
        out.append(steps)
    return out


def _reward_cases():
    env = GridGoalEnv(**GRID_KW)
    teacher = Teacher(GoalTask("open", 5, (4, 4)))
    return {
        "model-forward": (_model(env, use_next_obs=True, use_done=True), dict(use_table=False), False),
        "model-table": (_model(env, use_next_obs=True, use_done=True), dict(use_table=True), True),
        "teacher": (teacher, dict(use_table=False), True),
        "ensemble-scaled": ([_model(env), RewardModel(env.observation_space, env.action_space, seed=9)],
                            dict(use_table=True, spread_bonus=0.3, scale=2.0, clip=1.5), True),
    }


@pytest.mark.parametrize("case", ["model-forward", "model-table", "teacher", "ensemble-scaled"])
def test_sb3_vecenv_wrapper_equals_single_env_wrapper(case: str) -> None:
    reward, wkw, exact = _reward_cases()[case]
    venv = DummyVecEnv([lambda: GridGoalEnv(**GRID_KW) for _ in range(N)])
    venv.seed(SEED)
    w = LearnedRewardVecEnvWrapper(venv, reward, RewardOptions(**wkw))
    assert (w.table is not None) == (wkw["use_table"] is True)
    w.reset()
    rng = np.random.default_rng(0)
    acts = rng.integers(4, size=(T, N))
    got_r, got_true, got_infos = [], [], []
    n_done = 0
    for t in range(T):
        _, r, dones, infos = w.step(acts[t])
        assert r.dtype == np.float32
        got_r.append(r)
        got_true.append([i["true_reward"] for i in infos])
        got_infos.append(infos)
        n_done += int(dones.sum())
    assert n_done >= 2 * N  # autoresets (terminal_observation) were exercised
    assert w.table_misses == 0
    twins = _single_twins(lambda: GridGoalEnv(**GRID_KW), reward, acts.T.tolist(), **wkw)
    for i in range(N):
        r_single = np.float32([s[0] for s in twins[i]])
        r_vec = np.array([got_r[t][i] for t in range(T)])
        if exact:
            np.testing.assert_array_equal(r_vec, r_single)
        else:
            np.testing.assert_allclose(r_vec, r_single, **F32_TOL)
        assert [got_true[t][i] for t in range(T)] == [s[1] for s in twins[i]]
        for t in range(T):
            single_info, vec_info = twins[i][t][2], got_infos[t][i]
            if "episode_true_return" in single_info:
                assert vec_info["episode_true_return"] == single_info["episode_true_return"]
                assert vec_info["episode_length"] == single_info["episode_length"]
                assert vec_info["episode_success"] == single_info["episode_success"]
                assert vec_info["episode_learned_return"] == pytest.approx(single_info["episode_learned_return"],
                                                                           abs=1e-4)
            else:
                assert "episode_true_return" not in vec_info


def _vector_run(venv: gym.vector.VectorEnv, reward, acts: np.ndarray, **wkw):
    """Step a wrapped vector env; per sub-env: the actions applied in real transitions and their results."""
    w = LearnedRewardVectorWrapper(venv, reward, RewardOptions(**wkw))
    w.reset(seed=SEED)
    applied = [[] for _ in range(N)]
    results = [[] for _ in range(N)]
    resetting = np.zeros(N, dtype=bool)
    for t in range(len(acts)):
        _, r, term, trunc, infos = w.step(acts[t])
        for i in range(N):
            if resetting[i] and w.autoreset_mode == AutoresetMode.NEXT_STEP:
                assert r[i] == 0.0 and infos["true_reward"][i] == 0.0  # a reset step is no transition
                continue
            applied[i].append(int(acts[t][i]))
            ep = None
            if infos.get("_episode_true_return", np.zeros(N, bool))[i]:
                ep = (infos["episode_true_return"][i], infos["episode_length"][i], infos["episode_success"][i])
            results[i].append((r[i], infos["true_reward"][i], ep))
        resetting = term | trunc
    return w, applied, results


def _check_against_twins(make, reward, applied, results, exact: bool, **wkw) -> None:
    twins = _single_twins(make, reward, applied, **wkw)
    for i in range(N):
        r_single = np.array([s[0] for s in twins[i]])
        r_vec = np.array([x[0] for x in results[i]])
        assert len(r_single) == len(r_vec) > 0
        if exact:
            np.testing.assert_array_equal(r_vec, r_single)
        else:
            np.testing.assert_allclose(r_vec, r_single, **F32_TOL)
        assert [x[1] for x in results[i]] == [s[1] for s in twins[i]]
        for x, s in zip(results[i], twins[i], strict=True):
            info = s[2]
            if "episode_true_return" in info:
                success = np.nan if info["episode_success"] is None else float(info["episode_success"])
                assert x[2] is not None
                assert x[2][:2] == (info["episode_true_return"], info["episode_length"])
                np.testing.assert_equal(x[2][2], success)
            else:
                assert x[2] is None


@pytest.mark.parametrize("case", ["model-forward", "model-table", "teacher", "ensemble-scaled"])
def test_gymnasium_vector_wrapper_on_native_grid_vector_env(case: str) -> None:
    reward, wkw, exact = _reward_cases()[case]
    acts = np.random.default_rng(1).integers(4, size=(T, N))
    w, applied, results = _vector_run(GridGoalVectorEnv(N, **GRID_KW), reward, acts, **wkw)
    assert (w.table is not None) == (wkw["use_table"] is True)
    assert sum(len(a) for a in applied) < T * N  # some steps were reset steps
    assert w.table_misses == 0
    _check_against_twins(lambda: GridGoalEnv(**GRID_KW), reward, applied, results, exact, **wkw)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "CartPole-v1"])
def test_gymnasium_vector_wrapper_on_sync_vector_env(mode: AutoresetMode, env_id: str) -> None:
    def make() -> gym.Env:
        return gym.make(env_id, max_episode_steps=15)

    model = _model(make(), use_next_obs=True, use_done=True)
    venv = SyncVectorEnv([make for _ in range(N)], autoreset_mode=mode)
    acts = np.random.default_rng(2).integers(2, size=(T, N))
    _, applied, results = _vector_run(venv, model, acts, use_table=False)
    _check_against_twins(make, model, applied, results, False, use_table=False)


def test_vector_wrapper_refuses_other_spaces_and_disabled_autoreset() -> None:
    model = _model(GridGoalEnv(size=6))
    with pytest.raises(ValueError, match=r"(?s)does not fit.*observation_space=.*observation_space="):
        LearnedRewardVectorWrapper(GridGoalVectorEnv(2, size=5), model)
    with pytest.raises(ValueError, match=r"(?s)does not fit.*observation_space=.*observation_space="):
        LearnedRewardVecEnvWrapper(DummyVecEnv([lambda: GridGoalEnv(size=5)]), model)
    fl = gym.make("FrozenLake-v1")
    disabled = SyncVectorEnv([lambda: gym.make("FrozenLake-v1")], autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match=r"autoreset_mode=.* is not supported"):
        LearnedRewardVectorWrapper(disabled, _model(fl))


def test_make_vec_entry_point_and_normalisation_counts_real_steps() -> None:
    venv = gym.make_vec("rewardshare/GridGoal-v0", num_envs=N, vectorization_mode="vector_entry_point",
                        size=4, start="random", max_steps=5)
    model = _model(GridGoalEnv(size=4))
    w = LearnedRewardVectorWrapper(venv, model, RewardOptions(normalize=True))
    w.reset(seed=0)
    real = 0
    resetting = np.zeros(N, dtype=bool)
    for t in range(40):
        _, _, term, trunc, _ = w.step(np.full(N, t % 4))
        real += int((~resetting).sum())
        resetting = term | trunc
    assert w.transform.count == real  # reset steps do not enter the running statistics
    assert abs(w.transform.mean) > 0 and w.transform.var > 0


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_teacher_positions_through_sync_vector_env(mode: AutoresetMode) -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)))
    venv = SyncVectorEnv([lambda: GridGoalEnv(**GRID_KW) for _ in range(N)], autoreset_mode=mode)
    acts = np.random.default_rng(3).integers(4, size=(T, N))
    _, applied, results = _vector_run(venv, teacher, acts, use_table=False)
    assert sum(x[2] is not None for r in results for x in r) >= N  # episodes ended (final_info positions used)
    _check_against_twins(lambda: GridGoalEnv(**GRID_KW), teacher, applied, results, True, use_table=False)
