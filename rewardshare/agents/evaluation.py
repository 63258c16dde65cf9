"""Evaluation on the *true* reward, on eval envs separate from the training envs, and the SB3 callback doing it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from rewardshare.agents.curve import LearningCurve
from rewardshare.wrappers import LearnedRewardWrapper, RewardOptions, RewardSource


@dataclass(frozen=True)
class EvalResult:
    """Aggregates over the eval episodes.

    Attributes:
        success_rate: Fraction of episodes with ``info["is_success"]`` at their end (NaN if the env reports none).
        true_return: Mean return under the env's reward.
        true_return_std: Standard deviation of those returns.
        learned_return: Mean return under the reward source (raw output).
        episode_length: Mean episode length.
    """

    success_rate: float
    true_return: float
    true_return_std: float
    learned_return: float
    episode_length: float


class TrueRewardEvaluator:
    """Runs a policy for a fixed set of episodes on its own envs, measuring the true reward.

    Each evaluation replays the same episodes' starts (episode ``k`` resets with seed ``eval_seed + k``), so
    successive points of a learning curve differ only by the policy. The ``n_episodes`` episodes run side by side,
    with one batched policy call per step. The RNG states of python, numpy and torch are saved and restored around
    an evaluation, so evaluating never changes the training run.

    Args:
        make_env: Makes one eval env (with the env's own reward).
        n_episodes: Episodes per evaluation, >= 1.
        eval_seed: Seed of episode 0.
        source: The training reward source, to report the learned return of the eval episodes (``None``: the
            learned return equals the true return).
        deterministic: Use the policy's greedy action.
        max_episode_steps: Safety cap on the length of an eval episode, for envs without their own time limit.
        policy_obs: Maps a batch of env observations to what the policy observes (see
            :mod:`rewardshare.agents.policy_obs`); ``None``: the env's observations.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        n_episodes: int,
        eval_seed: int,
        source: RewardSource | None = None,
        deterministic: bool = True,
        max_episode_steps: int = 10_000,
        policy_obs: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        first = LearnedRewardWrapper(make_env(), "true" if source is None else source)
        # every eval env shares the first one's reward table instead of tabulating the model again
        table = first.table if first.table is not None else "auto"
        self.envs = [first] + [
            LearnedRewardWrapper(make_env(), first.source, RewardOptions(use_table=table))
            for _ in range(int(n_episodes) - 1)
        ]
        self.eval_seed = int(eval_seed)
        self.deterministic = bool(deterministic)
        self.max_episode_steps = int(max_episode_steps)
        self.policy_obs = policy_obs

    def evaluate(self, policy: BaseAlgorithm) -> EvalResult:
        """Run every eval episode to its end and aggregate."""
        py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        try:
            return self._run(policy)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.random.set_rng_state(torch_state)

    def _run(self, policy: BaseAlgorithm) -> EvalResult:
        n = len(self.envs)
        obs = [env.reset(seed=self.eval_seed + k)[0] for k, env in enumerate(self.envs)]
        active = list(range(n))
        true_ret = np.zeros(n)
        learned_ret = np.zeros(n)
        length = np.zeros(n)
        success: list[Any] = [None] * n
        for _ in range(self.max_episode_steps):
            if not active:
                break
            batch = np.stack([obs[k] for k in active])
            if self.policy_obs is not None:
                batch = self.policy_obs(batch)
            actions, _ = policy.predict(batch, deterministic=self.deterministic)
            still = []
            for k, a in zip(active, actions, strict=True):
                obs[k], _, term, trunc, info = self.envs[k].step(a)
                if term or trunc:
                    true_ret[k] = info["episode_true_return"]
                    learned_ret[k] = info["episode_learned_return"]
                    length[k] = info["episode_length"]
                    success[k] = info["episode_success"]
                else:
                    still.append(k)
            active = still
        for k in active:  # cut off by the safety cap: count as failures, with what they earned so far
            true_ret[k], learned_ret[k], length[k] = self.envs[k].episode_so_far
            success[k] = False
        known = [s for s in success if s is not None]
        return EvalResult(
            success_rate=float(np.mean(known)) if len(known) == n else float("nan"),
            true_return=float(true_ret.mean()),
            true_return_std=float(true_ret.std()),
            learned_return=float(learned_ret.mean()),
            episode_length=float(length.mean()),
        )


class TrueRewardEvalCallback(BaseCallback):
    """Evaluates on the true reward every ``eval_every`` env steps (and before and after training) into a curve.

    Args:
        evaluator: The evaluator (eval envs, episodes, seeds).
        eval_every: Env steps (over all training sub-envs) between evaluations.
        curve: The curve to append to.
        verbose: Print each evaluation if > 0.
    """

    def __init__(self, evaluator: TrueRewardEvaluator, eval_every: int, curve: LearningCurve, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.evaluator = evaluator
        self.eval_every = int(eval_every)
        self.curve = curve
        self._next_eval = 0
        self._start = 0.0
        self._eval_time = 0.0

    def _evaluate(self) -> None:
        t0 = time.perf_counter()
        train_time = t0 - self._start - self._eval_time
        res = self.evaluator.evaluate(self.model)
        self.curve.append(
            timesteps=self.num_timesteps, success_rate=res.success_rate, true_return=res.true_return,
            true_return_std=res.true_return_std, learned_return=res.learned_return,
            episode_length=res.episode_length, wall_time=train_time,
        )
        self.logger.record("eval/true_success_rate", res.success_rate)
        self.logger.record("eval/true_return", res.true_return)
        self.logger.record("eval/learned_return", res.learned_return)
        if self.verbose > 0:
            print(
                f"t={self.num_timesteps} success={res.success_rate:.2f} true_return={res.true_return:.3f} "
                f"learned_return={res.learned_return:.3f}"
            )
        self._next_eval = (self.num_timesteps // self.eval_every + 1) * self.eval_every
        self._eval_time += time.perf_counter() - t0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._eval_time = 0.0
        self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.curve.timesteps or self.curve.timesteps[-1] != self.num_timesteps:
            self._evaluate()
