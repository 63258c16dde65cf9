"""A native vector env: N GridGoal sub-envs stepped with numpy in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rewardshare.envs.grid_env import GridGoalEnv, task_id_for
from rewardshare.envs.layouts import Cell
from rewardshare.envs.planner import N_ACTIONS, transition_table


class GridGoalVectorEnv(VectorEnv):
    """``num_envs`` GridGoal sub-envs on one layout, stepped together with numpy.

    Each sub-env behaves exactly like a :class:`GridGoalEnv` built with the same arguments and seeded with
    ``seed + i`` (the convention of gymnasium's ``SyncVectorEnv``): same observations, rewards, flags and infos.
    Sub-envs may pursue different goals (``goals_per_env``), so one batch can hold several tasks. Autoreset follows
    gymnasium 1.x ``NEXT_STEP`` semantics: the step after an episode ends resets that sub-env, ignores its action,
    and returns the reset observation with reward 0 and both flags ``False``.

    Reach it with ``gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")`` or construct it.

    Args:
        num_envs: Number of sub-envs, >= 1.
        goals_per_env: Optional fixed goal cell for each sub-env (length ``num_envs``); overrides ``goal``.
        **kwargs: Any :class:`GridGoalEnv` argument (``layout``, ``size``, ``goal``, ``start``, ``obs_mode``, ...).
            A new maze per reset (``layout_seed=None``) is not supported here.

    Infos are gymnasium vector infos: ``agent_pos`` and ``goal`` ``(N, 2)`` int64, ``is_success`` ``(N,)`` bool,
    ``task_id`` ``(N,)`` object, each with its ``_key`` mask.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, goals_per_env: Sequence[Cell] | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is not allowed: use an int >= 1")
        if kwargs.get("layout_seed", 0) is None:
            raise ValueError("layout_seed=None (a new maze per reset) is not supported by GridGoalVectorEnv")
        kwargs.pop("render_mode", None)
        self.num_envs = int(num_envs)
        # a prototype env validates the arguments and owns the per-episode draw, so both envs draw alike
        self._proto = GridGoalEnv(**kwargs)
        proto = self._proto
        layout = self.layout = proto.layout
        if goals_per_env is not None:
            if len(goals_per_env) != self.num_envs:
                raise ValueError(
                    f"goals_per_env has {len(goals_per_env)} cells: it needs exactly num_envs={self.num_envs}"
                )
            self._goal_options = [{"goal": tuple(g)} for g in goals_per_env]
            for opt in self._goal_options:  # validate now rather than at the first reset
                proto.draw_episode(np.random.default_rng(0), opt)
        else:
            self._goal_options = [{} for _ in range(self.num_envs)]

        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        h, w = layout.height, layout.width
        n_cells = h * w
        self._next = transition_table(layout)
        self._pos = np.array([(i // w, i % w) for i in range(n_cells)], dtype=np.int64)
        # observation = agent part (indexed by cell) ++ goal part (indexed by goal cell), along the feature axis
        agent_obs = np.stack([proto._build_obs(i, 0) for i in range(n_cells)])
        if proto.observe_goal:
            split = {"coords": 2, "onehot": n_cells, "grid": 2}[proto.obs_mode]
            self._agent_part = np.ascontiguousarray(agent_obs[:, :split])
            self._goal_part = np.ascontiguousarray(np.stack([proto._build_obs(0, g) for g in range(n_cells)])[:, split:])
        else:
            self._agent_part, self._goal_part = agent_obs, None
        self._task_ids = np.array([task_id_for(layout, (i // w, i % w)) for i in range(n_cells)], dtype=object)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.num_envs)]
        self._cell = np.zeros(self.num_envs, dtype=np.int64)
        self._goal = np.zeros(self.num_envs, dtype=np.int64)
        self._steps = np.zeros(self.num_envs, dtype=np.int64)
        self._success = np.zeros(self.num_envs, dtype=bool)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._all = np.ones(self.num_envs, dtype=bool)
        self._all.flags.writeable = False

    # -- helpers ------------------------------------------------------------------------------------------------
    def _reset_sub(self, i: int) -> None:
        goal, start = self._proto.draw_episode(self._rngs[i], self._goal_options[i])
        w = self.layout.width
        self._goal[i] = goal[0] * w + goal[1]
        self._cell[i] = start[0] * w + start[1]
        self._steps[i] = 0
        self._success[i] = False

    def _obs(self) -> np.ndarray:
        if self._goal_part is None:
            return self._agent_part[self._cell]
        return np.concatenate([self._agent_part[self._cell], self._goal_part[self._goal]], axis=1)

    def _infos(self) -> dict[str, Any]:
        return {
            "agent_pos": self._pos[self._cell], "_agent_pos": self._all,
            "goal": self._pos[self._goal], "_goal": self._all,
            "is_success": self._success.copy(), "_is_success": self._all,
            "task_id": self._task_ids[self._goal], "_task_id": self._all,
        }

    @property
    def goals(self) -> np.ndarray:
        """The current goal of every sub-env, int64 ``(num_envs, 2)``."""
        return self._pos[self._goal]

    @property
    def agent_positions(self) -> np.ndarray:
        """The agent cell of every sub-env, int64 ``(num_envs, 2)``."""
        return self._pos[self._cell]

    # -- gymnasium API ------------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env. An int ``seed`` seeds sub-env ``i`` with ``seed + i``; a list gives one seed each.

        ``options`` may hold ``"reset_mask"`` (bool ``(num_envs,)``) to reset only some sub-envs.
        """
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed has {len(seeds)} entries: it needs exactly num_envs={self.num_envs}")
            for i, s in enumerate(seeds):
                if s is not None:
                    self._rngs[i], _ = gym.utils.seeding.np_random(int(s))
        mask = (options or {}).get("reset_mask")
        for i in range(self.num_envs):
            if mask is None or mask[i]:
                self._reset_sub(i)
                self._done[i] = False
        return self._obs(), self._infos()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env with ``actions`` (int array ``(num_envs,)``)."""
        act = np.asarray(actions)
        if act.shape != (self.num_envs,) or not np.issubdtype(act.dtype, np.integer):
            raise ValueError(
                f"actions with shape {act.shape} and dtype {act.dtype} are not allowed: "
                f"use an int array of shape ({self.num_envs},) with values in 0..{N_ACTIONS - 1}"
            )
        if act.min() < 0 or act.max() >= N_ACTIONS:
            raise ValueError(f"actions={act!r} are not allowed: every action must be in 0..{N_ACTIONS - 1}")
        proto = self._proto
        resetting = self._done
        any_reset = bool(resetting.any())
        if any_reset:
            for i in np.flatnonzero(resetting):
                self._reset_sub(int(i))
            start_cells = self._cell.copy()
        frozen = self._success if proto.absorbing_goal else None
        nxt = self._next[self._cell, act]
        if frozen is not None:
            nxt = np.where(frozen, self._cell, nxt)
        reached = nxt == self._goal
        if frozen is not None:
            reached &= ~frozen
        rewards = reached * proto.goal_reward - proto.step_cost
        if frozen is not None:
            rewards[frozen] = 0.0
        self._cell = nxt
        self._steps += 1
        self._success |= reached
        terminated = self._success.copy() if not proto.absorbing_goal else np.zeros(self.num_envs, dtype=bool)
        truncated = ~terminated & (self._steps >= proto.max_steps)
        if any_reset:
            self._cell[resetting] = start_cells[resetting]  # a resetting sub-env ignores its action
            self._steps[resetting] = 0
            self._success[resetting] = False
            rewards[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
        self._done = terminated | truncated
        return self._obs(), rewards.astype(np.float64), terminated, truncated, self._infos()
