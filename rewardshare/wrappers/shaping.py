"""Potential shaping: serve only the potential-based part ``phi(s') - phi(s)`` of a tabulated reward.

A learned reward on a grid can contain *positive cycles*: the teacher pays for entering a goal cell and nothing for
leaving it, so a reward that puts weight on a wrong goal cell (a posterior mode, or model error) pays an agent to step
in and out of that cell forever. Every reward of the form ``phi(s') - phi(s)`` sums to exactly 0 around any cycle, so
projecting the reward onto that form removes every such incentive while keeping its gradient towards high-``phi``
cells.

``RewardOptions(shaping="potential")`` does this on envs whose moves can be enumerated (GridGoal envs with a fixed
layout; deterministic dynamics, so each ``(s, a)`` has one successor ``T(s, a)``):

1. the reward source (after any ``uncertainty`` option: plain, posterior mean or pessimistic) is tabulated over every
   ``(s, a)`` at its real successor (:mod:`rewardshare.wrappers.table`), with ``done`` as the env reports it
   (entering the goal from another cell, unless the goal is absorbing);
2. ``phi`` minimises ``sum_{s, a} (phi(T(s, a)) - phi(s) - r(s, a))^2`` over all moves of the grid (also the
   goal cell's own moves; walls give ``T(s, a) = s``, a 0 = 0 row). It is unique up to one constant per connected
   set of states (one per goal when the goal is observed); the minimum-norm solution is taken in each;
3. the agent is paid ``phi(s') - phi(s)`` for every transition.

**Terminal transitions.** Entering the goal pays ``phi(goal) - phi(s)`` with the goal cell's own fitted ``phi`` (it
is *not* set to 0, as the textbook shaping theorem does for a terminal state: that theorem keeps the original reward
next to the shaping term, here the shaping term is all there is). So the return of a whole episode is
``phi(last state) - phi(start)``: an episode that ends at the goal earns ``phi(goal) - phi(start)``, one cut off by the
time limit earns ``phi(where it stopped) - phi(start)``, and walking in circles earns nothing. The agent is paid to
reach the cell of highest ``phi``, which is the true goal exactly when the learned reward's potential says so.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rewardshare.envs import grid_env_of
from rewardshare.wrappers.sources import RewardSource
from rewardshare.wrappers.table import FiniteStates, RewardTable, enumerate_states

#: Allowed values of ``RewardOptions.shaping``.
SHAPING_CHOICES: tuple[str, ...] = ("none", "potential")


def check_shaping(shaping: Any) -> str:
    """``shaping`` itself, checked against :data:`SHAPING_CHOICES`.

    Raises:
        ValueError: Naming the option, its value and the allowed values.
    """
    if not (isinstance(shaping, str) and shaping in SHAPING_CHOICES):
        raise ValueError(
            f"shaping={shaping!r} is not allowed: use 'none' (the reward as given) or 'potential' (its potential-based "
            "part phi(s') - phi(s), fitted on a grid env's moves)"
        )
    return shaping


def fit_potential(rewards: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """The least-squares potential of a reward over deterministic moves.

    Args:
        rewards: float ``(S, A)``, the reward of moving from state ``s`` with action ``a``.
        next_state: int ``(S, A)``, the successor ``T(s, a)`` of each move.

    Returns:
        float64 ``(S,)``: ``phi`` minimising ``sum (phi[T(s, a)] - phi[s] - rewards[s, a])^2``; in each connected
        set of states (moves read as undirected edges) the minimum-norm solution.
    """
    r = np.asarray(rewards, dtype=np.float64)
    nxt = np.asarray(next_state, dtype=np.int64)
    n = len(r)
    s = np.repeat(np.arange(n), nxt.shape[1])
    s2 = nxt.reshape(-1)
    # connected components by label propagation (each round moves the smallest label one edge further)
    label = np.arange(n)
    while True:
        new = label.copy()
        np.minimum.at(new, s, label[s2])
        np.minimum.at(new, s2, label[s])
        if np.array_equal(new, label):
            break
        label = new
    phi = np.zeros(n)
    flat = r.reshape(-1)
    for comp in np.unique(label):
        members = np.flatnonzero(label == comp)
        local = np.full(n, -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        rows = np.flatnonzero(label[s] == comp)
        a_mat = np.zeros((len(rows), len(members)))
        np.add.at(a_mat, (np.arange(len(rows)), local[s2[rows]]), 1.0)
        np.add.at(a_mat, (np.arange(len(rows)), local[s[rows]]), -1.0)
        phi[members] = np.linalg.lstsq(a_mat, flat[rows], rcond=None)[0]
    return phi


class PotentialReward(RewardSource):
    """``phi(s') - phi(s)`` over the enumerated states of a grid env (built by :func:`potential_source`).

    Args:
        base: The reward source ``phi`` was fitted to (kept for provenance and table sharing).
        states: The env's state enumeration; observations are looked up in it.
        phi: float64 ``(S,)``, one potential per state.

    Raises:
        ValueError: When called on an observation that is not one of ``states`` (another env or goal).
    """

    uses_next_obs = True

    def __init__(self, base: RewardSource, states: FiniteStates, phi: np.ndarray) -> None:
        self.base = base
        self.states = states
        self.phi = np.asarray(phi, dtype=np.float64)
        self.phi.flags.writeable = False
        self.name = f"{base.name}-potential"
        self.observation_space = base.observation_space
        self.action_space = base.action_space

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        s = self.states.index(np.asarray(obs))
        s2 = self.states.index(np.asarray(next_obs))
        if (s < 0).any() or (s2 < 0).any():
            raise ValueError(
                "shaping='potential': an observation is not one of the states phi was fitted on (another env, "
                "layout or goal?): build the wrapper on the env it is used with"
            )
        return self.phi[s2] - self.phi[s]

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"kind": "potential", "base": self.base.config()}


def potential_source(source: RewardSource, env: Any, max_rows: int) -> PotentialReward:
    """The potential-shaped version of ``source`` on ``env`` (see the module docstring).

    Args:
        source: The reward source (already combined by any uncertainty option).
        env: A GridGoal env or vector env (possibly wrapped), or ``None`` when the env cannot be inspected.
        max_rows: The largest table of ``source`` to build for the fit.

    Raises:
        ValueError: ``shaping='potential'`` where no table of the moves can be built; the message says why.
    """
    why = None
    states = None
    if env is None:
        why = "the wrapped vec env's sub-envs cannot be inspected"
    elif source.uses_env_reward:
        why = f"reward source {source.name!r} passes the env's reward through (nothing to fit)"
    else:
        act_space = env.single_action_space if isinstance(env, gym.vector.VectorEnv) else env.action_space
        states = enumerate_states(env) if isinstance(act_space, gym.spaces.Discrete) else None
        if states is None or states.candidates is None or states.positions is None or states.goals is None:
            why = ("it needs a GridGoal env with a fixed layout and Discrete actions (deterministic moves, every "
                   "(cell, action) enumerable); this env's moves are not known")
        elif RewardTable.n_rows(states, int(act_space.n), source) > max_rows:
            why = (f"the reward table would hold {RewardTable.n_rows(states, int(act_space.n), source)} rows, more "
                   f"than max_table_rows={max_rows}")
    if why is not None:
        raise ValueError(f"shaping='potential' is not possible here: {why}; use shaping='none'")
    assert states is not None and states.candidates is not None  # noqa: S101 - set above when why is None
    table = RewardTable(source, states, int(act_space.n), int(act_space.start))
    nxt = states.candidates[:, :, 0]  # the planner's successor (slot 1 is "stay", used only on an absorbing goal)
    at_goal = (states.positions == states.goals).all(axis=1)
    done = (at_goal[nxt] & ~at_goal[:, None]) & (not grid_env_of(env).absorbing_goal)
    d = done.astype(np.int64) if table.uses_done else np.zeros_like(nxt)
    s_idx, a_idx = np.meshgrid(np.arange(states.n_states), np.arange(table.n_actions), indexing="ij")
    rewards = table.values[s_idx, a_idx, 0, d]
    return PotentialReward(source, states, fit_potential(rewards, nxt))
