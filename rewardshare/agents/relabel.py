"""Relabelling an off-policy agent's replay buffer after its reward model changed.

DQN stores the reward of each transition when it is collected (see
:class:`~rewardshare.wrappers.LearnedRewardVecEnvWrapper`), so after the reward wrapper gets a new model the stored
rewards are stale. :func:`relabel_replay_buffer` recomputes the filled part of the buffer with the wrapper's current
reward source and transform: observations mapped back to the env's (when the policy sees a one-hot view), ``done``
passed to the model as *terminated* (a stored ``timeout`` is a truncation), and the buffer's ``dones`` / ``timeouts``
left exactly as they were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardshare.agents.policy_obs import PolicyObsVecEnvWrapper
from rewardshare.wrappers import LearnedRewardVecEnvWrapper

ObsMap = Callable[[np.ndarray], np.ndarray]


def reward_wrapper_of(venv: VecEnv) -> tuple[LearnedRewardVecEnvWrapper, ObsMap | None]:
    """The reward wrapper in ``venv``'s wrapper chain and the map from what the policy observes back to what it reads.

    Raises:
        ValueError: If there is no :class:`LearnedRewardVecEnvWrapper`, or a wrapper above it changes the
            observations in a way that cannot be undone (only the one-hot policy view can).
    """
    inverse: ObsMap | None = None
    env: VecEnv = venv
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, LearnedRewardVecEnvWrapper):
            return env, inverse
        if isinstance(env, PolicyObsVecEnvWrapper):
            if inverse is not None:
                raise ValueError("two policy-observation wrappers above the reward wrapper: cannot relabel")
            inverse = env.transform.inverse
        elif env.observation_space != env.venv.observation_space:
            raise ValueError(
                f"{type(env).__name__} above the reward wrapper changes the observations: the replay buffer cannot be "
                "mapped back to what the reward model reads (put it under LearnedRewardVecEnvWrapper)"
            )
        env = env.venv
    raise ValueError("the training env has no LearnedRewardVecEnvWrapper: wrap it (train_agent does)")


def relabel_replay_buffer(buffer: ReplayBuffer, wrapper: LearnedRewardVecEnvWrapper, to_env_obs: ObsMap | None) -> int:
    """Recompute the stored rewards of the filled part of ``buffer`` with ``wrapper``'s current reward.

    The reward is the wrapper's source on ``(obs, action, next_obs, terminated)`` in one batched call (so equal,
    bit for bit, to one batched forward of the model on the same rows), then the wrapper's transform with its
    running statistics frozen at their current values.

    Args:
        buffer: An SB3 :class:`ReplayBuffer` (not a dict buffer) of a Discrete-action agent.
        wrapper: The reward wrapper of the training env.
        to_env_obs: Maps stored (policy) observations to the env's; ``None``: they are the env's.

    Returns:
        The number of transitions relabelled.

    Raises:
        ValueError: On a dict replay buffer, or a wrapper that adds the env's reward (the buffer does not keep it).
    """
    if isinstance(buffer, DictReplayBuffer):
        raise ValueError("cannot relabel a DictReplayBuffer: use an agent with a plain ReplayBuffer")
    if wrapper.transform.add_env_reward:
        raise ValueError(
            "cannot relabel a replay buffer when the reward adds the env's reward (add_env_reward=True): the buffer "
            "does not keep the env's reward; use add_env_reward=False or an on-policy agent (PPO)"
        )
    size = buffer.buffer_size if buffer.full else buffer.pos
    if size == 0:
        return 0
    n_envs = buffer.n_envs
    rows = size * n_envs

    def flat(x: np.ndarray) -> np.ndarray:
        return x[:size].reshape(rows, *x.shape[2:])

    obs = flat(buffer.observations)
    if buffer.optimize_memory_usage:  # the next observation of row i is stored as the observation of row i + 1
        next_obs = buffer.observations[(np.arange(size) + 1) % buffer.buffer_size].reshape(obs.shape)
    else:
        next_obs = flat(buffer.next_observations)
    if to_env_obs is not None:
        obs, next_obs = to_env_obs(obs), to_env_obs(next_obs)
    action = flat(buffer.actions).reshape(rows)
    terminated = flat(buffer.dones).astype(bool)
    if buffer.handle_timeout_termination:
        terminated &= ~flat(buffer.timeouts).astype(bool)
    zeros = np.zeros(rows)
    raw = wrapper.source(obs, action, next_obs, terminated, zeros, None, None)
    frozen = copy.copy(wrapper.transform)
    frozen.update_stats = False
    buffer.rewards[:size] = frozen.apply(raw, zeros).astype(np.float32).reshape(size, n_envs)
    return rows
