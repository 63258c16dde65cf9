"""Batched learned-reward wrappers: one reward computation (one forward, or one table lookup) for all sub-envs.

- :class:`LearnedRewardVecEnvWrapper` wraps a Stable-Baselines3 ``VecEnv`` (what SB3 trains on).
- :class:`LearnedRewardVectorWrapper` wraps a gymnasium ``VectorEnv`` (``SyncVectorEnv``, :class:`GridGoalVectorEnv`).

Both compute, per step, exactly what :class:`~rewardshare.wrappers.LearnedRewardWrapper` computes for each sub-env,
but in one batch (a batched forward may differ from a batch-of-one forward in the last float32 bit; see
:mod:`rewardshare.wrappers.table`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardshare.wrappers.learned_reward import build_reward, swapped_options
from rewardshare.wrappers.options import RewardOptions, check_reward_options
from rewardshare.wrappers.sources import RewardSource
from rewardshare.wrappers.table import RewardTable, enumerate_states
from rewardshare.wrappers.transform import RewardTransform

#: Up to this many sub-envs, table lookups run row by row in Python (a few numpy calls cost more than 8 dict lookups).
SMALL_BATCH = 32


class _BatchReward:
    """The shared core: the source, the optional table and the transform, applied to a batch."""

    def __init__(self, source: RewardSource, transform: RewardTransform, table: RewardTable | None) -> None:
        self.source = source
        self.transform = transform
        self.table = table
        self.table_misses = 0
        self._identity = transform.is_identity  # the options are frozen: decided once, not per step

    def state_index(self, obs: np.ndarray, as_list: bool = False) -> np.ndarray | list[int] | None:
        """Table state indices of a batch of observations (``-1``: unknown), or ``None`` without a table.

        With ``as_list`` a small batch's indices stay a Python list (what :meth:`raw` loops over anyway: no array
        round trip per step); a large batch is always an int64 array.
        """
        if self.table is None:
            return None
        states = self.table.states
        if len(obs) <= SMALL_BATCH:
            rows = states.index_rows(np.asarray(obs))
            return rows if as_list else np.array(rows, dtype=np.int64)
        return states.index(obs)

    def raw(self, obs, action, next_obs, done, env_reward, pos, next_pos, s, s2) -> np.ndarray:
        """Raw rewards ``(B,)`` float64; ``s``/``s2`` are table state indices, int64 arrays or (small batches) lists,
        or ``None`` without a table."""
        if self.source.uses_env_reward:
            return np.asarray(env_reward, dtype=np.float64)
        if self.table is None:
            return self.source(obs, action, next_obs, done, env_reward, pos, next_pos)
        action = np.asarray(action)
        if len(s) <= SMALL_BATCH:
            vals = self.table.lookup_rows(
                s if isinstance(s, list) else s.tolist(), action.reshape(-1).tolist(),
                s2 if isinstance(s2, list) else s2.tolist(), done.tolist(),
            )
            if None not in vals:
                return np.array(vals, dtype=np.float64)
            hit = np.array([v is not None for v in vals])
            vals = np.array([0.0 if v is None else v for v in vals], dtype=np.float64)
        else:
            vals, hit = self.table.lookup(s, action, s2, done)
        if not hit.all():
            miss = ~hit
            self.table_misses += int(miss.sum())
            vals = vals.copy()
            vals[miss] = self.source(
                obs[miss], action[miss], next_obs[miss], done[miss], env_reward[miss],
                None if pos is None else pos[miss], None if next_pos is None else next_pos[miss],
            )
        return vals

    def finish(self, raw: np.ndarray, env_reward: np.ndarray) -> np.ndarray:
        return raw if self._identity else self.transform.apply(raw, env_reward)


class _BatchedRewardMixin:
    """What both batched wrappers share: building the reward core, the episode bookkeeping arrays, and the core's
    parts as attributes."""

    core: _BatchReward

    def _init_reward(
        self, reward_model: Any, observation_space: gym.Space, action_space: gym.Space, table_env: Any,
        num_envs: int, options: RewardOptions | None,
    ) -> None:
        """Build the core (see :func:`~rewardshare.wrappers.learned_reward.build_reward`) and zero the per-sub-env
        state."""
        options = check_reward_options(options)
        self.core = _BatchReward(*build_reward(reward_model, observation_space, action_space, table_env, options))
        self._reward_args = (observation_space, action_space, table_env, options)
        self._obs: np.ndarray | None = None
        self._pos: np.ndarray | None = None
        self._state: np.ndarray | list[int] | None = None
        self._true_ret = np.zeros(num_envs)
        self._learned_ret = np.zeros(num_envs)
        self._len = np.zeros(num_envs, dtype=np.int64)

    def set_reward(self, reward_model: Any, use_table: bool | str | RewardTable | None = None) -> None:
        """Swap in another reward from the next step on, as :meth:`LearnedRewardWrapper.set_reward
        <rewardshare.wrappers.LearnedRewardWrapper.set_reward>` does (same options, table rebuilt, transform kept)."""
        obs_space, act_space, table_env, options = self._reward_args
        source, _, table = build_reward(reward_model, obs_space, act_space, table_env,
                                        swapped_options(options, use_table))
        misses = self.core.table_misses
        self.core = _BatchReward(source, self.core.transform, table)
        self.core.table_misses = misses
        if self._obs is not None:  # the current states, indexed by the new table (or none)
            self._state = self.core.state_index(self._obs)

    @property
    def source(self) -> RewardSource:
        """The reward source."""
        return self.core.source

    @property
    def table(self) -> RewardTable | None:
        """The fast-path table, if one was built."""
        return self.core.table

    @property
    def transform(self) -> RewardTransform:
        """The post-processing (normalisation statistics live here)."""
        return self.core.transform

    @property
    def table_misses(self) -> int:
        """Transitions the table did not know (computed with a forward instead)."""
        return self.core.table_misses


class _SubEnvView:
    """Lets :func:`enumerate_states` look at one sub-env of an SB3 VecEnv (spaces and the unwrapped env)."""

    def __init__(self, venv: VecEnv) -> None:
        self.observation_space = venv.observation_space
        self.action_space = venv.action_space
        envs = getattr(venv.unwrapped, "envs", None)  # DummyVecEnv holds its sub-envs; SubprocVecEnv does not
        self.unwrapped = envs[0].unwrapped if envs else None
        self._ok = bool(envs) and all(type(e.unwrapped) is type(envs[0].unwrapped) for e in envs)

    @classmethod
    def of(cls, venv: VecEnv) -> Any:
        view = cls(venv)
        if isinstance(view.observation_space, gym.spaces.Discrete):
            return view
        if not view._ok or view.unwrapped is None:
            return None
        # GridGoal sub-envs may differ in goal; the enumeration covers every goal only when the goal is observed
        # (otherwise the observation does not depend on the goal, and neither does a model of it)
        return view


class LearnedRewardVecEnvWrapper(_BatchedRewardMixin, VecEnvWrapper):
    """A Stable-Baselines3 ``VecEnvWrapper`` that replaces the rewards with a learned reward, batched.

    One reward computation per vector step covers every sub-env. At an autoreset SB3 returns the *reset*
    observation; the transition's real next observation is ``infos[i]["terminal_observation"]``, and that is what the
    model sees. ``done`` passed to the model is ``terminated`` (SB3's ``done`` without ``TimeLimit.truncated``).
    Agent cells for the teacher reward come from ``infos[i]["agent_pos"]`` and, after a reset, from
    ``venv.reset_infos``.

    Because the reward is computed inside the env wrapper while SB3 collects experience, off-policy algorithms
    (DQN) store the learned reward in their replay buffer at collection time.

    ``infos[i]`` gains ``"true_reward"`` and ``"learned_reward"`` (raw) every step and, at an episode's end,
    ``"episode_true_return"``, ``"episode_learned_return"``, ``"episode_length"`` and ``"episode_success"``.
    Returned rewards are float32 (SB3's convention).

    Args:
        venv: The SB3 vec env.
        reward_model: As for :class:`~rewardshare.wrappers.LearnedRewardWrapper`.
        options: As for :class:`~rewardshare.wrappers.LearnedRewardWrapper` (a :class:`RewardOptions`). The table
            path needs a ``DummyVecEnv`` (whose sub-envs can be inspected) or ``Discrete`` observations.

    Raises:
        ValueError: If the model was built for other spaces (both pairs named), or ``use_table=True`` on sub-envs
            that cannot be tabulated.
        TypeError: If ``options`` is not a :class:`RewardOptions`.
    """

    def __init__(self, venv: VecEnv, reward_model: Any, options: RewardOptions | None = None) -> None:
        super().__init__(venv)
        view = _SubEnvView.of(venv)
        if view is not None and enumerate_states(view) is None:
            view = None
        self._init_reward(reward_model, venv.observation_space, venv.action_space, view, self.num_envs, options)
        self._actions: np.ndarray | None = None

    def _reset_positions(self) -> np.ndarray | None:
        infos = getattr(self.venv, "reset_infos", None)
        if not self.core.source.uses_positions:
            return None
        if not infos or any("agent_pos" not in i for i in infos):
            raise ValueError("the teacher reward needs info['agent_pos'] from every sub-env's reset: use GridGoal envs")
        return np.stack([np.asarray(i["agent_pos"], dtype=np.int64) for i in infos])

    def reset(self) -> Any:
        """Reset every sub-env and the episode returns."""
        obs = self.venv.reset()
        self._obs = np.array(obs, copy=True)
        self._pos = self._reset_positions()
        self._state = self.core.state_index(self._obs, as_list=True)
        self._true_ret[:] = 0.0
        self._learned_ret[:] = 0.0
        self._len[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102
        self._actions = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
        """Step every sub-env; rewards come from the learned reward (see the class docstring)."""
        if self._obs is None:
            raise RuntimeError("LearnedRewardVecEnvWrapper.step_wait() called before reset()")
        obs, env_rew, dones, infos = self.venv.step_wait()
        env_rew = np.asarray(env_rew, dtype=np.float64)
        done_idx = dones.nonzero()[0].tolist()
        next_obs, terminated = obs, dones
        if done_idx:
            next_obs = np.array(obs, copy=True)
            terminated = np.array(dones, dtype=bool)
            for i in done_idx:
                next_obs[i] = infos[i]["terminal_observation"]
                if infos[i].get("TimeLimit.truncated", False):
                    terminated[i] = False
        core = self.core
        next_pos = None
        if core.source.uses_positions:
            try:
                next_pos = np.stack([np.asarray(info["agent_pos"], dtype=np.int64) for info in infos])
            except KeyError as err:
                raise ValueError(
                    "the teacher reward needs info['agent_pos'] from every sub-env: use GridGoal envs"
                ) from err
        s2 = core.state_index(next_obs, as_list=True)
        raw = core.raw(self._obs, self._actions, next_obs, terminated, env_rew, self._pos, next_pos, self._state, s2)
        rew = core.finish(raw, env_rew)
        self._true_ret += env_rew
        self._learned_ret += rew
        self._len += 1
        for info, tr, lr in zip(infos, env_rew.tolist(), raw.tolist(), strict=True):
            info["true_reward"] = tr
            info["learned_reward"] = lr
        self._obs = np.array(obs, copy=True)
        self._state = s2
        self._pos = next_pos
        if done_idx:
            reset_pos = self._reset_positions() if next_pos is not None else None
            if reset_pos is not None:
                self._pos = next_pos.copy()
            states = None if core.table is None else core.table.states
            for i in done_idx:
                info = infos[i]
                info["episode_true_return"] = float(self._true_ret[i])
                info["episode_learned_return"] = float(self._learned_ret[i])
                info["episode_length"] = int(self._len[i])
                success = info.get("is_success")
                info["episode_success"] = None if success is None else bool(success)
                self._true_ret[i] = self._learned_ret[i] = 0.0
                self._len[i] = 0
                # the next transition of a reset sub-env starts from its reset observation and cell
                if states is not None:
                    s2[i] = states.index_one(obs[i])
                if reset_pos is not None:
                    self._pos[i] = reset_pos[i]
        return obs, rew.astype(np.float32), dones, infos


class LearnedRewardVectorWrapper(_BatchedRewardMixin, VectorWrapper):
    """A gymnasium ``VectorWrapper`` that replaces the rewards with a learned reward, batched.

    Supports gymnasium 1.x ``NEXT_STEP`` autoreset (the default of ``SyncVectorEnv`` and of
    :class:`~rewardshare.envs.GridGoalVectorEnv`) and ``SAME_STEP`` autoreset:

    - ``NEXT_STEP``: the step after a sub-env's episode ends is a *reset step* (its action is ignored, it returns the
      reset observation). No transition happens there, so its reward is ``0`` (the env's own reward there is ``0``
      too), it adds nothing to the episode returns, and the model is not called for it.
    - ``SAME_STEP``: the real next observation of an ending step is ``infos["final_obs"][i]``.

    ``infos`` gains ``"true_reward"`` and ``"learned_reward"`` ``(N,)`` every step, and at episode ends
    ``"episode_true_return"``, ``"episode_learned_return"``, ``"episode_length"``, ``"episode_success"`` (float:
    1/0, or NaN if the env reports no ``is_success``), each with its ``"_key"`` mask. Rewards are float64.

    Args:
        env: The gymnasium vector env.
        reward_model: As for :class:`~rewardshare.wrappers.LearnedRewardWrapper`.
        options: As for :class:`~rewardshare.wrappers.LearnedRewardWrapper` (a :class:`RewardOptions`).

    Raises:
        ValueError: If the model was built for other spaces (both pairs named), the autoreset mode is unsupported,
            or ``use_table=True`` on an env that cannot be tabulated.
        TypeError: If ``options`` is not a :class:`RewardOptions`.
    """

    def __init__(self, env: VectorEnv, reward_model: Any, options: RewardOptions | None = None) -> None:
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if isinstance(mode, str):
            mode = AutoresetMode(mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(
                f"autoreset_mode={mode!r} is not supported by LearnedRewardVectorWrapper: use NEXT_STEP or SAME_STEP"
            )
        self.autoreset_mode = mode
        self._init_reward(
            reward_model, env.single_observation_space, env.single_action_space, env, self.num_envs, options
        )
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def _positions(self, infos: dict[str, Any]) -> np.ndarray | None:
        if not self.core.source.uses_positions:
            return None
        if "agent_pos" not in infos:
            raise ValueError("the teacher reward needs infos['agent_pos'] from the vector env: use GridGoal envs")
        return np.asarray(infos["agent_pos"], dtype=np.int64)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset (all sub-envs, or those in ``options["reset_mask"]``) and their episode returns."""
        obs, infos = self.env.reset(seed=seed, options=options)
        mask = (options or {}).get("reset_mask")
        rows = np.ones(self.num_envs, dtype=bool) if mask is None or self._obs is None else np.asarray(mask, bool)
        if self._obs is None:
            self._obs = np.array(obs, copy=True)
        else:
            self._obs[rows] = obs[rows]
        pos = self._positions(infos)
        if pos is not None:
            if self._pos is None:
                self._pos = pos.copy()
            else:
                self._pos[rows] = pos[rows]
        self._state = self.core.state_index(self._obs)
        self._autoreset[rows] = False
        self._true_ret[rows] = 0.0
        self._learned_ret[rows] = 0.0
        self._len[rows] = 0
        return obs, infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env; rewards come from the learned reward (see the class docstring)."""
        if self._obs is None:
            raise RuntimeError("LearnedRewardVectorWrapper.step() called before reset()")
        actions_arr = np.asarray(actions)
        obs, env_rew, terminated, truncated, infos = self.env.step(actions)
        env_rew = np.asarray(env_rew, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        done = terminated | truncated
        core = self.core
        next_pos = self._positions(infos)
        next_obs = obs
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            next_obs = np.array(obs, copy=True)
            final_obs, final_info = infos["final_obs"], infos.get("final_info", {})
            for i in np.flatnonzero(done):
                next_obs[i] = final_obs[i]
            if next_pos is not None:
                next_pos = next_pos.copy()
                next_pos[done] = np.asarray(final_info["agent_pos"], dtype=np.int64)[done]
        active = ~self._autoreset  # NEXT_STEP reset steps are not transitions
        s2 = core.state_index(next_obs)
        rew = np.zeros(self.num_envs, dtype=np.float64)
        raw = np.zeros(self.num_envs, dtype=np.float64)
        if active.all():
            raw = core.raw(self._obs, actions_arr, next_obs, terminated, env_rew, self._pos, next_pos, self._state, s2)
            rew = core.finish(raw, env_rew)
        elif active.any():
            sel = lambda x: None if x is None else x[active]  # noqa: E731
            raw[active] = core.raw(
                self._obs[active], actions_arr[active], next_obs[active], terminated[active], env_rew[active],
                sel(self._pos), sel(next_pos), sel(self._state), sel(s2),
            )
            rew[active] = core.finish(raw[active], env_rew[active])
        self._true_ret += np.where(active, env_rew, 0.0)
        self._learned_ret += rew
        self._len += active
        infos = dict(infos)
        all_rows = np.ones(self.num_envs, dtype=bool)
        infos["true_reward"], infos["_true_reward"] = env_rew, all_rows
        infos["learned_reward"], infos["_learned_reward"] = raw, all_rows
        if done.any():
            succ = infos.get("is_success")
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                succ = infos.get("final_info", {}).get("is_success")
            success = np.full(self.num_envs, np.nan) if succ is None else np.asarray(succ, dtype=np.float64)
            infos["episode_true_return"], infos["_episode_true_return"] = np.where(done, self._true_ret, 0.0), done
            infos["episode_learned_return"], infos["_episode_learned_return"] = (
                np.where(done, self._learned_ret, 0.0), done,
            )
            infos["episode_length"], infos["_episode_length"] = np.where(done, self._len, 0), done
            infos["episode_success"], infos["_episode_success"] = np.where(done, success, np.nan), done
            self._true_ret[done] = 0.0
            self._learned_ret[done] = 0.0
            self._len[done] = 0
        self._obs = np.array(obs, copy=True)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._state = core.state_index(self._obs) if done.any() else s2
            self._pos = self._positions(infos)
        else:
            self._state = s2  # NEXT_STEP: obs is next_obs, reset rows included
            self._pos = next_pos
            self._autoreset = done
        return obs, rew, terminated, truncated, infos
