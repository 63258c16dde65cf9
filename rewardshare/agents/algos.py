"""Stable-Baselines3 PPO and DQN with defaults that solve the GridGoal tasks.

The defaults were tuned by hand on ``train`` tasks only (never on ``held_out`` tasks): two train tasks each of
``TaskFamily("four_rooms", 9)``, ``TaskFamily("maze", 9)`` and ``TaskFamily("open", 8)`` (the train goal farthest
from (0, 0) and the middle one of the split), seed 0, random starts, one-hot policy observations
(``train_agent(policy_obs="auto")``), 20 greedy eval episodes. Steps to >= 0.9 true success with those defaults:

- teacher (dense) reward: PPO 12k (four rooms, maze); DQN 3-6k (four rooms, maze).
- true (sparse, +1 at the goal) reward: PPO 12k (four rooms), 20-28k (maze); DQN 12-16k (four rooms, open 8x8).

Every field can be overridden by keyword (``agent_kwargs`` of :func:`~rewardshare.agents.train_agent`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import gymnasium as gym
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

ALGOS: tuple[str, ...] = ("ppo", "dqn")


class _SB3Config:
    """What both configs share: turning their fields into SB3 constructor arguments."""

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the SB3 class (``stable_baselines3.PPO`` / ``DQN``): the fields, with ``net_arch``
        moved into ``policy_kwargs``."""
        kw = asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass
        kw["policy_kwargs"] = {"net_arch": list(kw.pop("net_arch"))}
        return kw


@dataclass
class PPOConfig(_SB3Config):
    """PPO hyperparameters (SB3 names). Defaults solve 9x9 four rooms and maze in ~12k steps with 8 envs.

    Attributes:
        learning_rate: Adam step size; higher than SB3's 3e-4 because the grids are small and rewards dense.
        n_steps: Rollout length per env (8 envs x 128 = 1024 transitions per update).
        batch_size: Minibatch size.
        n_epochs: Passes over each rollout.
        gamma: Discount; 0.99 spans the longest shortest path of the grids (< 100 steps).
        gae_lambda: GAE parameter.
        clip_range: PPO clipping.
        ent_coef: Entropy bonus; a little keeps exploring until the goal has been found from every start.
        vf_coef: Value loss weight.
        max_grad_norm: Gradient clipping.
        net_arch: Hidden layers of the policy and value MLPs.
    """

    learning_rate: float = 1e-3
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [64, 64])


@dataclass
class DQNConfig(_SB3Config):
    """DQN hyperparameters (SB3 names). Defaults solve 9x9 four rooms and maze in ~3-16k steps with 4 envs.

    Attributes:
        learning_rate: Adam step size.
        buffer_size: Replay buffer capacity (transitions). The rewards stored are the ones the env wrapper
            computed at collection time (the learned reward), never recomputed later.
        learning_starts: Transitions collected with a random policy before learning starts.
        batch_size: Minibatch size.
        gamma: Discount. 0.95, not 0.99: with 0.99 DQN on four rooms 9x9 learned the task (success 1.0 at ~8k
            steps) and then collapsed to looping greedy policies once exploration decayed, in every setting tried
            (learning rates 1e-4..1e-3, target updates 500..2000, 1-2 gradient steps); with 0.95 it stayed at 1.0.
        train_freq: Vector-env steps between gradient updates (1: one update per ``n_envs`` transitions).
        gradient_steps: Gradient steps per update.
        target_update_interval: Env steps between target network updates (SB3's 10k is far too slow for grids).
        exploration_fraction: Fraction of training over which epsilon decays from 1 to ``exploration_final_eps``.
        exploration_final_eps: Final epsilon.
        max_grad_norm: Gradient clipping.
        net_arch: Hidden layers of the Q-network.
    """

    learning_rate: float = 5e-4
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    batch_size: int = 64
    gamma: float = 0.95
    train_freq: int = 1
    gradient_steps: int = 1
    target_update_interval: int = 1_000
    exploration_fraction: float = 0.3
    exploration_final_eps: float = 0.05
    max_grad_norm: float = 10.0
    net_arch: list[int] = field(default_factory=lambda: [64, 64])


CONFIGS: dict[str, type] = {"ppo": PPOConfig, "dqn": DQNConfig}
SB3_CLASSES: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN}


def check_algo(algo: Any) -> str:
    """Normalise an algorithm name (case-insensitive).

    Raises:
        ValueError: If ``algo`` is not one of :data:`ALGOS`.
    """
    name = algo.lower() if isinstance(algo, str) else algo
    if name not in ALGOS:
        raise ValueError(f"algo={algo!r} is not allowed: use one of {ALGOS}")
    return name


def make_config(algo: str, **overrides: Any) -> PPOConfig | DQNConfig:
    """The default config of ``algo`` with ``overrides`` applied.

    Raises:
        ValueError: On an unknown algorithm or an unknown hyperparameter name.
    """
    cls = CONFIGS[check_algo(algo)]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown {algo} hyperparameter(s) {unknown}: allowed are {sorted(names)}")
    return cls(**overrides)


def make_agent(
    algo: str,
    env: VecEnv | gym.Env,
    *,
    seed: int | None = 0,
    device: str = "auto",
    tensorboard_log: str | None = None,
    verbose: int = 0,
    config: PPOConfig | DQNConfig | None = None,
    **overrides: Any,
) -> BaseAlgorithm:
    """Construct an SB3 agent with the rewardshare defaults.

    Args:
        algo: ``"ppo"`` or ``"dqn"``.
        env: The training env (an SB3 ``VecEnv``, typically wrapped by
            :class:`~rewardshare.wrappers.LearnedRewardVecEnvWrapper`).
        seed: Seeds SB3 (python, numpy, torch, the env's action space).
        device: Torch device for the policy (``"auto"``: CUDA if available).
        tensorboard_log: Directory for TensorBoard logs (needs the ``tensorboard`` package), or None.
        verbose: SB3 verbosity.
        config: A full config; default :func:`make_config` ``(algo, **overrides)``.
        **overrides: Hyperparameters overriding the defaults (field names of :class:`PPOConfig` / :class:`DQNConfig`).

    Returns:
        The SB3 algorithm (``MlpPolicy``).

    Raises:
        ValueError: On an unknown algorithm or hyperparameter, or DQN on a non-``Discrete`` action space.
    """
    name = check_algo(algo)
    if config is None:
        config = make_config(name, **overrides)
    elif overrides:
        raise ValueError("pass either config=... or hyperparameter overrides, not both")
    if name == "dqn" and not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"algo='dqn' needs a Discrete action space; the env has {env.action_space!r}: use 'ppo'")
    return SB3_CLASSES[name](
        "MlpPolicy", env, seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=verbose,
        **config.sb3_kwargs(),
    )
