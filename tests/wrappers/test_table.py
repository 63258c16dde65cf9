"""The table fast path gives the forward path's numbers (to float32 rounding) and falls back on unknown inputs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rewardshare.envs import GridGoalEnv, GridGoalVectorEnv
from rewardshare.rewardmodels import RewardModel
from rewardshare.wrappers import LearnedRewardWrapper, ModelReward, RewardOptions, build_table, enumerate_states

# batched and batch-of-one forwards of one MLP may differ in the last float32 bits (BLAS summation order)
F32_TOL = dict(rtol=1e-6, atol=1e-6)


def _model(env: gym.Env, **kw) -> RewardModel:
    return RewardModel(env.observation_space, env.action_space, hidden_sizes=(32, 32), seed=1, **kw)


def _rewards(env: gym.Env, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out, true = [], []
    env.reset(seed=0)
    for a in acts:
        _, r, term, trunc, info = env.step(int(a))
        out.append(r)
        true.append(info["true_reward"])
        if term or trunc:
            env.reset()
    return np.array(out), np.array(true)


CASES = {
    "coords": dict(size=5, start="random", max_steps=15),
    "onehot": dict(size=5, start="random", obs_mode="onehot", max_steps=15),
    "grid": dict(size=5, start="random", obs_mode="grid", max_steps=15),
    "four_rooms-goal": dict(layout="four_rooms", size=7, goal="random", observe_goal=True, start="random",
                            max_steps=15),
    "absorbing": dict(size=4, start="random", absorbing_goal=True, max_steps=25),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("flags", [(False, False), (True, True)])
def test_table_equals_forward_on_grids(case: str, flags: tuple[bool, bool]) -> None:
    env = GridGoalEnv(**CASES[case])
    model = _model(env, use_next_obs=flags[0], use_done=flags[1])
    fast = LearnedRewardWrapper(GridGoalEnv(**CASES[case]), model, RewardOptions(use_table=True))
    slow = LearnedRewardWrapper(env, model, RewardOptions(use_table=False))
    assert fast.table is not None and slow.table is None
    acts = np.random.default_rng(0).integers(4, size=300)
    r_fast, t_fast = _rewards(fast, acts)
    r_slow, t_slow = _rewards(slow, acts)
    np.testing.assert_allclose(r_fast, r_slow, **F32_TOL)
    np.testing.assert_array_equal(t_fast, t_slow)
    assert fast.table_misses == 0  # every step was a lookup
    assert len(set(np.round(r_fast, 5))) > 3  # the rewards vary, so the comparison means something


def test_table_values_are_the_batched_forward_exactly() -> None:
    env = GridGoalEnv(size=4, start="random")
    model = _model(env, use_next_obs=True, use_done=True)
    table = build_table(ModelReward(model), env, True)
    states = table.states
    assert table.values.shape == (16, 4, 2, 2)
    s, a, k, d = np.unravel_index(np.arange(table.values.size), table.values.shape)
    s2 = states.candidates[s, a, k]
    obs = states.observations
    rows = model.predict(obs[s], a, obs[s2], d.astype(bool))  # the same rows in one batch
    np.testing.assert_array_equal(table.values.reshape(-1), rows.astype(np.float64))
    # slot 0 is the planner's successor, slot 1 staying in place
    assert tuple(states.positions[states.candidates[0, 1, 0]]) == (0, 1)
    assert states.candidates[0, 1, 1] == 0


def test_frozenlake_slippery_any_next_state() -> None:
    env = gym.make("FrozenLake-v1", is_slippery=True)
    model = _model(env, use_next_obs=True, use_done=True)
    fast = LearnedRewardWrapper(gym.make("FrozenLake-v1", is_slippery=True), model)
    slow = LearnedRewardWrapper(env, model, RewardOptions(use_table=False))
    assert fast.table is not None and fast.table.values.shape == (16, 4, 16, 2)
    acts = np.random.default_rng(1).integers(4, size=400)
    np.testing.assert_allclose(_rewards(fast, acts)[0], _rewards(slow, acts)[0], **F32_TOL)
    assert fast.table_misses == 0


class _Shift(gym.ObservationWrapper):
    """Changes the observations but keeps the space: the table must not be fooled."""

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation + 0.5, dtype=np.float32)


def test_unknown_observations_fall_back_to_forward_exactly() -> None:
    base = GridGoalEnv(size=5, start="random", max_steps=15)
    model = _model(base)
    w = LearnedRewardWrapper(_Shift(base), model, RewardOptions(use_table=True))
    assert w.table is not None  # same space, so a table is built, but no shifted observation is in it
    obs, _ = w.reset(seed=0)
    for a in [0, 1, 2, 3, 1]:
        nxt, r, *_ = w.step(a)
        assert r == float(model.predict(np.array(obs)[None], np.array([a]))[0])
        obs = nxt
    assert w.table_misses == 5


def test_enumerations() -> None:
    env = GridGoalEnv(layout="four_rooms", size=7, observe_goal=True, goal="random")
    states = enumerate_states(env)
    n_free = len(env.layout.free_cells)
    assert states.n_states == n_free * n_free and states.candidates.shape == (n_free * n_free, 4, 2)
    vec = GridGoalVectorEnv(3, size=5)
    assert enumerate_states(vec).n_states == 25
    assert enumerate_states(gym.make("CartPole-v1")) is None
    assert enumerate_states(GridGoalEnv(layout="maze", size=7, layout_seed=None)) is None
    fl = enumerate_states(gym.make("FrozenLake-v1"))
    np.testing.assert_array_equal(fl.index(np.array([0, 15, 16, -1])), [0, 15, -1, -1])
    idx = states.index(np.stack([env.observation_for((1, 1), (5, 5)), np.full(4, 99.0, np.float32)]))
    assert idx[1] == -1 and states.index_one(env.observation_for((1, 1), (5, 5))) == idx[0] >= 0


def test_table_size_cap() -> None:
    env = GridGoalEnv(size=5)
    model = _model(env, use_next_obs=True)
    assert build_table(ModelReward(model), env, "auto", max_rows=10) is None
    with pytest.raises(ValueError, match=r"more than max_table_rows=10"):
        build_table(ModelReward(model), env, True, max_rows=10)


@pytest.mark.parametrize("obs_mode", ["coords", "onehot", "grid"])
def test_batch_index_does_not_depend_on_batch_size(obs_mode: str) -> None:
    env = GridGoalEnv(layout="four_rooms", size=7, obs_mode=obs_mode, observe_goal=True, goal="random")
    states = enumerate_states(env)
    every = states.index(states.observations)
    np.testing.assert_array_equal(every, np.arange(states.n_states))
    for i in range(0, states.n_states, 97):
        assert states.index(states.observations[i : i + 1])[0] == i == states.index_one(states.observations[i])
    assert states.index(states.observations[::-3].astype(np.float64))[0] == states.n_states - 1


def test_a_table_can_be_shared_by_wrappers_of_the_same_source_and_states() -> None:
    env = GridGoalEnv(size=5, start="random")
    model = _model(env)
    first = LearnedRewardWrapper(env, model)
    shared = RewardOptions(use_table=first.table)
    second = LearnedRewardWrapper(GridGoalEnv(size=5, start="random"), first.source, shared)
    assert second.table is first.table
    with pytest.raises(ValueError, match=r"built for another reward source"):
        LearnedRewardWrapper(GridGoalEnv(size=5), model, shared)
    with pytest.raises(ValueError, match=r"env with other states"):
        LearnedRewardWrapper(GridGoalEnv(layout="four_rooms", size=5), first.source, shared)


def test_small_batch_lookups_equal_the_one_row_lookups():
    """The batched wrappers' per-step path (lookup_rows, index_rows) agrees with the single-env one row by row,
    misses included."""
    env = GridGoalEnv(layout="open", size=5, start="random")
    for uses_next in (False, True):
        table = build_table(ModelReward(_model(env, use_next_obs=uses_next, use_done=True)), env, True)
        states = table.states
        rng = np.random.default_rng(0)
        n = states.n_states
        s = rng.integers(-1, n, size=64).tolist()
        a = rng.integers(-1, 5, size=64).tolist()
        s2 = rng.integers(-1, n, size=64).tolist()
        d = (rng.random(64) < 0.5).tolist()
        want = [table.lookup_one(*row) for row in zip(s, a, s2, d, strict=True)]
        assert table.lookup_rows(s, a, s2, d) == want
        assert None in want and any(v is not None for v in want)
        obs = states.observations[rng.integers(0, n, size=9)].copy()
        obs[3] += 100.0  # not enumerated
        assert states.index_rows(obs) == [states.index_one(o) for o in obs]
        assert states.index_rows(obs[:0]) == []
