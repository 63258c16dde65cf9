"""``RewardOptions(shaping="potential")``: exact potentials on hand-made reward tables, cycles removed, errors."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardshare.envs import GridGoalEnv
from rewardshare.envs.mdp import GridMDP
from rewardshare.rewardmodels import RewardModel
from rewardshare.wrappers import (
    LearnedRewardVecEnvWrapper,
    LearnedRewardWrapper,
    PotentialReward,
    RewardOptions,
    RewardSource,
    as_reward_source,
    fit_potential,
)
from rewardshare.wrappers.table import RewardTable, enumerate_states

ENV = dict(size=4, start="random", goal=(3, 3), max_steps=30)


class CellReward(RewardSource):
    """A hand-made table: ``r(cell, action)`` read at the agent's cell."""

    uses_positions = True

    def __init__(self, table: np.ndarray, width: int) -> None:
        self.table = np.asarray(table, dtype=np.float64)  # (H * W, A)
        self.width = width
        self.name = "cells"

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        pos = np.asarray(agent_pos).reshape(-1, 2)
        return self.table[pos[:, 0] * self.width + pos[:, 1], np.asarray(action, dtype=np.int64).reshape(-1)]


def _mdp(**kw) -> GridMDP:
    return GridMDP.from_env(GridGoalEnv(**{**ENV, **kw}))


def _cell_table(mdp: GridMDP, r: np.ndarray) -> np.ndarray:
    """Scatter an ``(S, A)`` state table onto ``(H * W, A)`` flat cells."""
    out = np.zeros((mdp.layout.height * mdp.layout.width, mdp.n_actions))
    out[mdp.cells[:, 0] * mdp.layout.width + mdp.cells[:, 1]] = r
    return out


def _steps(env: gym.Env, n: int = 400) -> list[tuple[tuple[int, int], int, tuple[int, int], float, bool]]:
    """``(cell, action, next cell, reward, terminated)`` of ``n`` random steps."""
    out = []
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(n):
        a = int(rng.integers(4))
        _, r, term, trunc, nxt = env.step(a)
        out.append((tuple(info["agent_pos"]), a, tuple(nxt["agent_pos"]), float(r), term))
        info = nxt
        if term or trunc:
            _, info = env.reset()
    return out


def _shaped_env(mdp: GridMDP, r: np.ndarray) -> LearnedRewardWrapper:
    options = RewardOptions(shaping="potential")
    return LearnedRewardWrapper(GridGoalEnv(**ENV), CellReward(_cell_table(mdp, r), 4), options)


def _shaped_table(wrapper: LearnedRewardWrapper, mdp: GridMDP) -> np.ndarray:
    """The served reward of every move ``(S, A)``, read from the wrapper's source."""
    src = wrapper.source
    assert isinstance(src, PotentialReward)
    s = np.repeat(np.arange(mdp.n_states), mdp.n_actions)
    s2 = mdp.next_state.reshape(-1)
    return src(mdp.obs[s], s % mdp.n_actions, mdp.obs[s2], None, None).reshape(mdp.n_states, mdp.n_actions)


def test_a_reward_with_a_known_potential_is_returned_unchanged() -> None:
    mdp = _mdp()
    phi0 = np.random.default_rng(0).normal(size=mdp.n_states)
    r = phi0[mdp.next_state] - phi0[:, None]
    phi = fit_potential(r, mdp.next_state)
    np.testing.assert_allclose(phi - phi.mean(), phi0 - phi0.mean(), atol=1e-12)  # phi0 up to a constant
    env = _shaped_env(mdp, r)
    np.testing.assert_allclose(_shaped_table(env, mdp), r, atol=1e-12)
    for cell, a, nxt, reward, _ in _steps(env):
        s = mdp.state_of(np.array([cell]))[0]
        assert abs(reward - r[s, a]) < 1e-12
        assert mdp.cells[mdp.next_state[s, a]].tolist() == list(nxt)
    assert env.table is not None and env.table_misses == 0


def _false_goal_reward(mdp: GridMDP, cell: tuple[int, int] = (1, 1), pay: float = 6.0) -> np.ndarray:
    """The teacher's pattern at a wrong goal: ``pay`` for entering ``cell``, 0 for leaving it, 0 elsewhere."""
    g = mdp.state_of(np.array([cell]))[0]
    return np.where((mdp.next_state == g) & (np.arange(mdp.n_states) != g)[:, None], pay, 0.0)


def _cycles2(mdp: GridMDP, r: np.ndarray) -> np.ndarray:
    """``r(s, a) + r(s', a')`` of every two-step cycle ``s -> s' -> s`` with ``s' != s``."""
    out = []
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            s2 = mdp.next_state[s, a]
            out += [r[s, a] + r[s2, b] for b in range(mdp.n_actions) if s2 != s and mdp.next_state[s2, b] == s]
    return np.array(out)


def _closed_walks(mdp: GridMDP, n: int) -> list[list[tuple[int, int]]]:
    """Every walk of ``n`` moves ``[(s, a), ...]`` that ends where it started."""
    out = []
    for s0 in range(mdp.n_states):
        for acts in itertools.product(range(mdp.n_actions), repeat=n):
            s, w = s0, []
            for a in acts:
                w.append((s, a))
                s = int(mdp.next_state[s, a])
            if s == s0:
                out.append(w)
    return out


def test_a_positive_two_cycle_is_removed() -> None:
    mdp = _mdp()
    r = _false_goal_reward(mdp)
    assert _cycles2(mdp, r).max() == 6.0  # in and out of the false goal pays 6 per round trip
    env = _shaped_env(mdp, r)
    shaped = _shaped_table(env, mdp)
    np.testing.assert_allclose(_cycles2(mdp, shaped), 0.0, atol=1e-12)
    # every closed walk of 4 moves (2x2 squares, in-and-out twice, ...) sums to 0 too; before, some paid 12
    walks = _closed_walks(mdp, 4)
    assert max(sum(r[s, a] for s, a in w) for w in walks) == 12.0
    assert max(abs(sum(shaped[s, a] for s, a in w)) for w in walks) < 1e-12
    assert any(len({s for s, _ in w}) == 4 for w in walks)  # the squares are among them
    # the false goal still has the highest potential nearby: entering it pays, leaving it costs the same
    g = mdp.state_of(np.array([(1, 1)]))[0]
    assert shaped[mdp.next_state == g].min() > 0 and shaped[g][mdp.next_state[g] != g].max() < 0


def test_terminal_move_pays_the_goal_cells_own_potential_and_bumps_pay_zero() -> None:
    mdp = _mdp()
    r = _false_goal_reward(mdp, cell=(3, 3))  # the true goal: terminal moves
    src_env = GridGoalEnv(**ENV)
    env = LearnedRewardWrapper(src_env, CellReward(_cell_table(mdp, r), 4), RewardOptions(shaping="potential"))
    phi = env.source.phi
    for cell, _a, nxt, reward, term in _steps(env):
        s, s2 = mdp.state_of(np.array([cell, nxt]))
        assert abs(reward - (phi[s2] - phi[s])) < 1e-12
        if term:
            assert s2 == mdp.goal_state
        if s2 == s:
            assert reward == 0.0


def test_absorbing_goal_staying_pays_zero() -> None:
    mdp = _mdp(absorbing_goal=True)
    r = _false_goal_reward(mdp, cell=(3, 3))
    env = LearnedRewardWrapper(GridGoalEnv(**ENV, absorbing_goal=True), CellReward(_cell_table(mdp, r), 4),
                               RewardOptions(shaping="potential"))
    steps = _steps(env, 600)
    at_goal = [x for x in steps if x[0] == (3, 3)]
    assert at_goal and all(x[3] == 0.0 and x[2] == (3, 3) for x in at_goal)


def _model(env: gym.Env, seed: int) -> RewardModel:
    return RewardModel(env.observation_space, env.action_space, hidden_sizes=(16,), seed=seed, use_done=True)


@pytest.mark.parametrize("uncertainty", [None, "mean", "pessimistic"])
def test_applies_after_the_uncertainty_combination(uncertainty: str | None) -> None:
    env = GridGoalEnv(**ENV)
    models = [_model(env, 1), _model(env, 2)]
    reward = models if uncertainty else models[0]
    options = RewardOptions(uncertainty=uncertainty, shaping="potential")
    w = LearnedRewardWrapper(GridGoalEnv(**ENV), reward, options)
    # expected: the plain / mean / pessimistic table at each real move (done as the env reports it), then the fit
    source = as_reward_source(reward, uncertainty=uncertainty)
    states = enumerate_states(env)
    table = RewardTable(source, states, 4)
    mdp = GridMDP.from_env(env)
    r = table.values[np.arange(mdp.n_states)[:, None], np.arange(4)[None], 0, mdp.done.astype(int)]
    phi = fit_potential(r, mdp.next_state)
    assert np.abs(w.source.phi - phi).max() < 1e-12
    plain = LearnedRewardWrapper(GridGoalEnv(**ENV), reward, RewardOptions(uncertainty=uncertainty))
    assert not np.allclose(plain.table.values[..., 0, 0], _shaped_table(w, mdp))  # shaping changed something


def test_sb3_vec_wrapper_serves_the_same_shaped_rewards() -> None:
    mdp = _mdp()
    r = _false_goal_reward(mdp)
    options = RewardOptions(shaping="potential")
    single = LearnedRewardWrapper(GridGoalEnv(**ENV), CellReward(_cell_table(mdp, r), 4), options)
    phi = single.source.phi
    venv = LearnedRewardVecEnvWrapper(DummyVecEnv([lambda: GridGoalEnv(**ENV)] * 3), CellReward(_cell_table(mdp, r), 4),
                                      options)
    np.testing.assert_array_equal(venv.source.phi, phi)
    venv.seed(0)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        acts = rng.integers(4, size=3)
        nxt, rew, dones, infos = venv.step(acts)
        after = np.array([i["terminal_observation"] if d else o for i, d, o in zip(infos, dones, nxt, strict=True)])
        s, s2 = single.source.states.index(obs), single.source.states.index(after)
        assert (s >= 0).all() and (s2 >= 0).all()
        np.testing.assert_allclose(rew, (phi[s2] - phi[s]).astype(np.float32), atol=1e-6)
        obs = nxt


def test_shaping_none_is_todays_reward_bit_for_bit() -> None:
    env = GridGoalEnv(**ENV)
    model = _model(env, 3)
    for use_table in (True, False):
        a = LearnedRewardWrapper(GridGoalEnv(**ENV), model, RewardOptions(use_table=use_table))
        b = LearnedRewardWrapper(GridGoalEnv(**ENV), model, RewardOptions(use_table=use_table, shaping="none"))
        assert [x[3] for x in _steps(a)] == [x[3] for x in _steps(b)]
        assert type(b.source).__name__ == "ModelReward"
    assert RewardOptions().shaping == "none" and RewardOptions().to_dict()["shaping"] == "none"


@pytest.mark.parametrize("bad", ["potentail", "", None, 1, True])
def test_unknown_shaping_is_refused_naming_the_choices(bad) -> None:
    with pytest.raises(ValueError, match=r"shaping=.* is not allowed: use 'none' .* or 'potential'"):
        RewardOptions(shaping=bad)


def test_potential_is_refused_where_no_table_of_moves_exists() -> None:
    lake = gym.make("FrozenLake-v1", is_slippery=False)
    model = RewardModel(lake.observation_space, lake.action_space, hidden_sizes=(4,), seed=0)
    with pytest.raises(ValueError, match=r"shaping='potential' is not possible here: it needs a GridGoal env"):
        LearnedRewardWrapper(lake, model, RewardOptions(shaping="potential"))
    with pytest.raises(ValueError, match=r"shaping='potential' is not possible here: reward source 'true'"):
        LearnedRewardWrapper(GridGoalEnv(**ENV), "true", RewardOptions(shaping="potential"))
    env = GridGoalEnv(**ENV)
    with pytest.raises(ValueError, match=r"shaping='potential' is not possible here: the reward table would hold"):
        LearnedRewardWrapper(env, _model(env, 0), RewardOptions(shaping="potential", max_table_rows=10))
