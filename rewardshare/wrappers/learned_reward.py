"""``LearnedRewardWrapper``: replace (or augment) a gymnasium env's reward with a learned one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rewardshare.wrappers.options import RewardOptions, check_reward_options
from rewardshare.wrappers.resolve import as_reward_source
from rewardshare.wrappers.shaping import PotentialReward, potential_source
from rewardshare.wrappers.sources import RewardSource
from rewardshare.wrappers.table import RewardTable, build_table
from rewardshare.wrappers.transform import RewardTransform

#: Keys added to ``info`` on the step that ends an episode (terminated or truncated).
EPISODE_INFO_KEYS: tuple[str, ...] = (
    "episode_true_return", "episode_learned_return", "episode_success", "episode_length",
)


def build_reward(
    reward_model: Any,
    observation_space: gym.Space,
    action_space: gym.Space,
    table_env: Any,
    options: RewardOptions | None = None,
) -> tuple[RewardSource, RewardTransform, RewardTable | None]:
    """The argument handling shared by the single-env and the batched wrappers.

    Args:
        reward_model: As for :class:`LearnedRewardWrapper`.
        observation_space, action_space: The (single) env's spaces, which the reward must fit.
        table_env: The env (or vector env) whose states a table enumerates; ``None`` when its sub-envs cannot be
            inspected (then no table is built).
        options: The :class:`RewardOptions` (default ``RewardOptions()``).

    Returns:
        ``(source, transform, table)``; ``table`` is ``None`` when none is built.

    Raises:
        ValueError: If the model was built for other spaces, on ``use_table=True`` without a ``table_env``, an
            uncertainty option for a reward without a posterior, or ``shaping="potential"`` where the env's moves
            cannot be tabulated.
        TypeError: If ``options`` is not a :class:`RewardOptions`.
    """
    options = check_reward_options(options)
    source = as_reward_source(reward_model, **options.source_kwargs())
    transform = options.transform()
    source.check_fits(observation_space, action_space)
    if options.shaping == "potential":
        shared = options.use_table
        if isinstance(shared, RewardTable) and isinstance(shared.source, PotentialReward) and (
                shared.source.base is source):
            source = shared.source  # another wrapper's shaped table of this source: its phi, not a refit
        else:
            source = potential_source(source, table_env, options.max_table_rows)
    if table_env is not None:
        return source, transform, build_table(source, table_env, options.use_table, options.max_table_rows)
    if options.use_table is True and not source.uses_env_reward:
        raise ValueError("use_table=True is not possible for this vec env: its sub-envs cannot be enumerated")
    return source, transform, None


def swapped_options(options: RewardOptions, use_table: bool | str | RewardTable | None) -> RewardOptions:
    """The options a swapped-in reward is built with: the wrapper's own, with ``use_table`` overridden (``None``
    keeps it, except that a table shared at construction becomes ``"auto"``: it belongs to the old reward)."""
    if use_table is None:
        use_table = "auto" if isinstance(options.use_table, RewardTable) else options.use_table
    return replace(options, use_table=use_table)


class LearnedRewardWrapper(gym.Wrapper):
    """A gymnasium wrapper whose ``step`` returns a learned reward instead of the env's.

    The reward of a step is the reward model's prediction for ``(obs, action, next_obs, done)`` (``done`` is
    ``terminated``; ``next_obs`` and ``done`` are only passed to models built to use them), post-processed by the
    options below in the order ``normalise -> * scale -> clip -> (+ env reward)``.

    ``info`` of every step gains ``"true_reward"`` (the env's own reward) and ``"learned_reward"`` (the source's raw
    output, before post-processing). The step that ends an episode also carries ``"episode_true_return"``,
    ``"episode_learned_return"`` (the sum of the rewards this wrapper returned), ``"episode_length"`` and
    ``"episode_success"`` (the env's ``info["is_success"]``, or ``None`` if the env has no such key).

    Works on any env the model fits (GridGoal, FrozenLake, CartPole, ...). On finite envs (``Discrete``
    observations, GridGoal) the model is tabulated once (see :mod:`rewardshare.wrappers.table`) and each step is a
    lookup, not a forward; an observation the table does not know falls back to a forward.

    Args:
        env: The env.
        reward_model: A RewardModel, a list of RewardModels (ensemble mean), a GoalPosterior (posterior mean),
            ``"true"``, a Teacher (its noiseless ``true_reward`` on ``info["agent_pos"]``) or a :class:`RewardSource`
            (e.g. a :class:`~rewardshare.wrappers.PosteriorReward`).
        options: Post-processing (normalise, scale, clip, add the env reward), the ensemble's spread bonus, the
            posterior-mean / pessimistic reward (``uncertainty``, ``beta``) and the table fast path: a
            :class:`RewardOptions` (default ``RewardOptions()``: the raw reward, tabulated when the env is finite).

    Raises:
        ValueError: If the model was built for other spaces (both pairs of spaces are named), ``use_table=True``
            on an env that cannot be tabulated, or ``uncertainty`` for a reward without a posterior.
        TypeError: If ``reward_model`` is none of the accepted kinds, or ``options`` is not a :class:`RewardOptions`.
    """

    def __init__(self, env: gym.Env, reward_model: Any, options: RewardOptions | None = None) -> None:
        super().__init__(env)
        self.table: RewardTable | None
        self._options = check_reward_options(options)
        self.source, self.transform, self.table = build_reward(
            reward_model, env.observation_space, env.action_space, env, self._options
        )
        self._identity = self.transform.is_identity
        self._passthrough = self.source.uses_env_reward and self._identity
        self.table_misses = 0
        self._obs: Any = None
        self._pos: np.ndarray | None = None
        self._state = -1
        self._reset_episode()

    def set_reward(self, reward_model: Any, use_table: bool | str | RewardTable | None = None) -> None:
        """Swap in another reward (e.g. a model updated from new feedback) from the next step on.

        The options stay those of the constructor; the table, when this wrapper tabulates, is rebuilt for the new
        reward (or shared: ``use_table=`` another wrapper's table of the same source); the transform and its running
        statistics are kept.

        Args:
            reward_model: Anything the constructor accepts.
            use_table: Overrides the options' ``use_table``; ``None`` keeps it (a table shared at construction is
                replaced by ``"auto"``: it belongs to the old reward).

        Raises:
            ValueError, TypeError: As the constructor.
        """
        self.source, _, self.table = build_reward(
            reward_model, self.env.observation_space, self.env.action_space, self.env,
            swapped_options(self._options, use_table),
        )
        self._passthrough = self.source.uses_env_reward and self._identity
        if self.table is not None and self._obs is not None:
            self._state = self.table.states.index_one(self._obs)

    def _reset_episode(self) -> None:
        self._true_return = 0.0
        self._learned_return = 0.0
        self._length = 0

    @property
    def episode_so_far(self) -> tuple[float, float, int]:
        """The running episode's ``(true return, learned return, length)`` up to the last step (what the episode's
        end reports in ``info``; for an episode cut off before its end)."""
        return self._true_return, self._learned_return, self._length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Reset the env and the episode's returns."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        self._pos = info.get("agent_pos")
        if self.table is not None:
            self._state = self.table.states.index_one(obs)
        self._reset_episode()
        return obs, info

    def _forward(self, obs: Any, action: Any, next_obs: Any, done: bool, env_reward: float, next_pos: Any) -> float:
        pos = self._pos
        # copies: envs hand out read-only observation arrays, which torch.as_tensor warns about
        out = self.source(
            np.array(obs)[None], np.array(action)[None], np.array(next_obs)[None], np.array([done]),
            np.array([env_reward], dtype=np.float64),
            None if pos is None else np.asarray(pos)[None], None if next_pos is None else np.asarray(next_pos)[None],
        )
        return float(out[0])

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; the reward is the (post-processed) learned reward; see the class docstring for ``info``."""
        if self._obs is None:
            raise RuntimeError("LearnedRewardWrapper.step() called before reset()")
        next_obs, env_reward, terminated, truncated, info = self.env.step(action)
        env_reward = float(env_reward)
        table = self.table
        if self._passthrough:
            raw = env_reward
        elif table is not None:
            s2 = table.states.index_one(next_obs)
            raw = table.lookup_one(self._state, int(action), s2, terminated)
            if raw is None:
                self.table_misses += 1
                raw = self._forward(self._obs, action, next_obs, terminated, env_reward, info.get("agent_pos"))
            self._state = s2
        else:
            raw = self._forward(self._obs, action, next_obs, terminated, env_reward, info.get("agent_pos"))
        reward = raw if self._identity else self.transform.apply_scalar(raw, env_reward)
        self._obs = next_obs
        if self.source.uses_positions:
            self._pos = info.get("agent_pos")
        self._true_return += env_reward
        self._learned_return += reward
        self._length += 1
        info["true_reward"] = env_reward
        info["learned_reward"] = raw
        if terminated or truncated:
            info["episode_true_return"] = self._true_return
            info["episode_learned_return"] = self._learned_return
            info["episode_length"] = self._length
            success = info.get("is_success")
            info["episode_success"] = None if success is None else bool(success)
        return next_obs, reward, terminated, truncated, info
