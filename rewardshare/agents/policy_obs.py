"""What the *policy* observes, decoupled from what the reward model observes.

A reward model fixes the env's observation mode (a model trained on ``coords`` needs ``coords`` observations), but
an MLP policy learns grids with walls far faster from one-hot cells than from raw coordinates (on four rooms 9x9,
PPO with the teacher's reward: no reliable success in 50k steps from ``coords``, >= 0.9 in about 10k from one-hot).
So on GridGoal envs the agent can see a one-hot view of the same state, built *after* the reward was computed: the
reward wrapper reads the env's observation, the policy reads :class:`GridOneHot` of it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardshare.envs import GridGoalEnv
from rewardshare.wrappers import FiniteStates, enumerate_states

POLICY_OBS: tuple[str, ...] = ("auto", "env", "onehot")


class GridOneHot:
    """Maps a GridGoal env's observations (any ``obs_mode``) to its ``"onehot"`` observations.

    The one-hot observation is the agent's cell (and the goal's, if the env observes its goal), exactly what the same
    env would emit with ``obs_mode="onehot"``.

    Args:
        env: A :class:`~rewardshare.envs.GridGoalEnv` (possibly wrapped, with its observation space unchanged).

    Raises:
        ValueError: If the env's observations cannot be enumerated (not a GridGoal env, or a new maze per episode).
    """

    def __init__(self, env: gym.Env) -> None:
        states = enumerate_states(env)
        base = env.unwrapped
        if states is None or states.goals is None or not isinstance(base, GridGoalEnv):
            raise ValueError("policy_obs='onehot' needs a GridGoal env with a fixed layout: use policy_obs='env'")
        self.states = states
        onehot = GridGoalEnv(
            layout=base.layout, observe_goal=base.observe_goal, obs_mode="onehot",
            goal=tuple(base.goal), start="random",
        )
        self.table = np.stack([
            onehot.observation_for(tuple(c), tuple(g)) for c, g in zip(states.positions, states.goals, strict=True)
        ])
        self.observation_space = onehot.observation_space
        self._inverse: FiniteStates | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """One-hot observations for a batch ``(B, *obs_shape)`` -> ``(B, D)`` float32."""
        idx = self.states.index(obs)
        if (idx < 0).any():
            raise ValueError("an observation is not one of the env's enumerated states; cannot map it to one-hot")
        return self.table[idx]

    def inverse(self, onehot: np.ndarray) -> np.ndarray:
        """A batch of one-hot observations ``(B, D)`` -> the env's observations ``(B, *obs_shape)`` (e.g. to relabel
        a replay buffer that stored what the policy saw).

        Raises:
            ValueError: If a row is not one of the one-hot observations.
        """
        if self._inverse is None:
            self._inverse = FiniteStates(observations=self.table, positions=None, candidates=None)
        idx = self._inverse.index(np.asarray(onehot, dtype=self.table.dtype))
        if (idx < 0).any():
            raise ValueError("an observation is not one of the env's one-hot observations; cannot map it back")
        return self.states.observations[idx]

    def one(self, obs: np.ndarray) -> np.ndarray:
        """One observation -> its one-hot observation ``(D,)``."""
        i = self.states.index_one(obs)
        if i < 0:
            raise ValueError("the observation is not one of the env's enumerated states; cannot map it to one-hot")
        return self.table[i]


class PolicyObsVecEnvWrapper(VecEnvWrapper):
    """Shows the policy a transformed observation (including ``infos[i]["terminal_observation"]``, which SB3 uses to
    bootstrap truncated episodes and DQN stores as the next observation).

    Put it *outside* the reward wrapper, so the reward still reads the env's own observation.

    Args:
        venv: The vec env.
        transform: Batch transform ``(B, *obs_shape) -> (B, *new_shape)``, with ``observation_space`` and ``one``.
    """

    def __init__(self, venv: VecEnv, transform: GridOneHot) -> None:
        super().__init__(venv, observation_space=transform.observation_space)
        self.transform = transform

    def reset(self) -> np.ndarray:  # noqa: D102
        return self.transform(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:  # noqa: D102
        obs, rew, dones, infos = self.venv.step_wait()
        for i in np.flatnonzero(dones):
            if "terminal_observation" in infos[i]:
                infos[i]["terminal_observation"] = self.transform.one(infos[i]["terminal_observation"])
        return self.transform(obs), rew, dones, infos


def resolve_policy_obs(policy_obs: str, env: gym.Env) -> GridOneHot | None:
    """The policy-side transform for ``policy_obs`` on ``env`` (``None``: the policy sees the env's observations).

    ``"auto"`` means one-hot on GridGoal envs that are not already one-hot (and whose states can be enumerated),
    the env's observations otherwise.

    Raises:
        ValueError: On an unknown value, or ``"onehot"`` for an env that is not a fixed-layout GridGoal env.
    """
    if policy_obs not in POLICY_OBS:
        raise ValueError(f"policy_obs={policy_obs!r} is not allowed: use one of {POLICY_OBS}")
    if policy_obs == "env":
        return None
    base = env.unwrapped
    is_grid = isinstance(base, GridGoalEnv) and isinstance(env.observation_space, spaces.Box)
    if policy_obs == "auto":
        if not is_grid or base.obs_mode == "onehot" or base.random_layout:
            return None
        if env.observation_space != base.observation_space:
            return None
    return GridOneHot(env)
