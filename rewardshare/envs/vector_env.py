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

_INT64 = np.dtype(np.int64)
#: Above this many bytes the (goal, cell) -> observation table is not built; observations are concatenated per step.
_MAX_JOINT_OBS_BYTES = 16 * 2**20


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


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

    Raises:
        ValueError: On a bad ``num_envs``, ``goals_per_env`` or env argument, and in :meth:`step` on actions that are
            not an int array of shape ``(num_envs,)`` with values in ``0..3``.

    Observations are ``float32`` ``(num_envs, *single_obs_shape)``; rewards ``float64`` ``(num_envs,)``. Infos are
    gymnasium vector infos: ``agent_pos`` and ``goal`` ``(N, 2)`` int64, ``is_success`` ``(N,)`` bool, ``task_id``
    ``(N,)`` object (str), each with its ``_key`` mask (all ``True``, except after a reset with a ``reset_mask``).
    Every call returns new arrays.

    Speed: sub-envs with a fixed start and a fixed goal (``goal`` / ``goals_per_env``) reset with numpy too;
    random goals or starts are drawn per sub-env from its own generator (to match the single env draw for draw),
    which costs a few microseconds per reset.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, goals_per_env: Sequence[Cell] | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is not allowed: use an int >= 1")
        if kwargs.get("layout_seed", 0) is None:
            raise ValueError("layout_seed=None (a new maze per reset) is not supported by GridGoalVectorEnv")
        kwargs.pop("render_mode", None)
        if goals_per_env is not None:
            kwargs.setdefault("goal", "random")  # the default goal cell plays no part, so it must not clash with start
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
            # validated once here (as the single env's constructor would), then used as they are at every reset
            self._per_env_goals: list[Cell] | None = [
                proto.draw_episode(np.random.default_rng(0), {"goal": tuple(g)})[0] for g in goals_per_env
            ]
        else:
            self._per_env_goals = None
        # with a fixed start and fixed goals a reset needs no random draw, so it can be done with numpy
        self._static_default = proto._start is not None and (goals_per_env is not None or proto._goal is not None)
        self._random_goals = goals_per_env is None and proto._goal is None
        # a reset with options={"goal": ...} leaves goals that the next autoreset must undo, one sub-env at a time
        self._static_resets = self._static_default
        self._goals_change = self._random_goals

        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._build_tables()
        # per-step constants as plain attributes (the step reads them every call)
        self._act_shape = (self.num_envs,)
        self._width = layout.width
        self._absorbing = proto.absorbing_goal
        self._goal_reward = proto.goal_reward
        self._step_cost = proto.step_cost
        self._max_steps = proto.max_steps

        n = self.num_envs
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(n)]
        # state: s4 = 4 * flat cell index, so that s4 + action indexes the transition table directly
        self._s4 = np.zeros(n, dtype=np.int64)
        self._buf = np.zeros(n, dtype=np.int64)
        self._goal_idx = np.zeros(n, dtype=np.int64)
        self._goal4 = np.zeros(n, dtype=np.int64)
        self._goal_off = np.zeros(n, dtype=np.int64)
        # truncation: sub-env i is truncated at the global step count self._t == self._deadline[i]
        self._t = 0
        self._deadline = np.full(n, proto.max_steps, dtype=np.int64)
        self._done = np.zeros(n, dtype=bool)
        self._any_done = False
        self._all = _read_only(np.ones(n, dtype=bool))
        self._goal_pos = _read_only(np.zeros((n, 2), dtype=np.int64))
        self._goal_tid = _read_only(np.full(n, "", dtype=object))

    def _build_tables(self) -> None:
        """Precompute every lookup a step needs, indexed by ``s4 = 4 * cell`` (and the goal where observed)."""
        proto, layout = self._proto, self.layout
        h, w = layout.height, layout.width
        n_cells = h * w
        self._n_cells = n_cells
        nxt = transition_table(layout)
        # cells n_cells..2*n_cells-1 are "about to reset to cell c" states: every action leads to c. An autoreset
        # puts a sub-env there, so the ordinary table lookup performs the reset and ignores the action.
        t4 = np.empty(2 * n_cells * N_ACTIONS, dtype=np.int64)
        t4[: n_cells * N_ACTIONS] = (nxt * N_ACTIONS).ravel()
        t4[n_cells * N_ACTIONS:] = np.repeat(np.arange(n_cells, dtype=np.int64) * N_ACTIONS, N_ACTIONS)
        self._t4 = t4
        self._reset_base = n_cells * N_ACTIONS
        pos = np.array([(i // w, i % w) for i in range(n_cells)], dtype=np.int64)
        self._pos = pos
        self._pos4 = np.repeat(pos, N_ACTIONS, axis=0)
        self._task_ids = np.array([task_id_for(layout, (i // w, i % w)) for i in range(n_cells)], dtype=object)
        if proto._start is not None:
            self._start_reset4 = self._reset_base + (proto._start[0] * w + proto._start[1]) * N_ACTIONS

        agent_obs = np.stack([proto._build_obs(i, 0) for i in range(n_cells)])
        self._obs4 = self._joint_obs4 = self._goal_part = None
        if not proto.observe_goal:
            self._obs4 = np.repeat(agent_obs, N_ACTIONS, axis=0)
            return
        # observation = agent part (indexed by cell) ++ goal part (indexed by goal cell), along the feature axis
        split = {"coords": 2, "onehot": n_cells, "grid": 2}[proto.obs_mode]
        agent_part = agent_obs[:, :split]
        goal_part = np.stack([proto._build_obs(0, g) for g in range(n_cells)])[:, split:]
        joint_bytes = n_cells * n_cells * N_ACTIONS * agent_obs[0].nbytes
        if joint_bytes <= _MAX_JOINT_OBS_BYTES:
            # one gather per step: row goal * (4 * n_cells) + s4 holds the whole observation
            joint = np.concatenate(
                [
                    np.broadcast_to(agent_part[None], (n_cells, *agent_part.shape)),
                    np.broadcast_to(goal_part[:, None], (n_cells, n_cells, *goal_part.shape[1:])),
                ],
                axis=2,
            )
            self._joint_obs4 = np.repeat(joint, N_ACTIONS, axis=1).reshape(-1, *agent_obs.shape[1:])
        else:
            self._agent_part4 = np.repeat(np.ascontiguousarray(agent_part), N_ACTIONS, axis=0)
            self._goal_part = np.ascontiguousarray(goal_part)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _reset_sub(self, i: int, t: int, pending: bool, options: dict[str, Any] | None = None) -> None:
        """Draw sub-env ``i``'s next episode; ``pending`` leaves it in the about-to-reset state for a step."""
        proto = self._proto
        per_env_goals = self._per_env_goals
        if options:
            if per_env_goals is not None and "goal" not in options:
                options = {"goal": per_env_goals[i], **options}
            goal, start = proto.draw_episode(self._rngs[i], options)
        elif per_env_goals is None:
            goal, start = proto.draw_episode(self._rngs[i], {})
        else:  # exactly what a single env built with goal=goals_per_env[i] draws
            goal = per_env_goals[i]
            start = proto._start if proto._start is not None else proto.draw_start(self._rngs[i], goal)
        w = self._width
        g = goal[0] * w + goal[1]
        self._goal_idx[i] = g
        self._goal4[i] = g * N_ACTIONS
        self._goal_off[i] = g * self._reset_base
        s4 = (start[0] * w + start[1]) * N_ACTIONS
        self._s4[i] = self._reset_base + s4 if pending else s4
        self._deadline[i] = t + self._max_steps

    def _refresh_goal_infos(self) -> None:
        self._goal_pos = _read_only(self._pos.take(self._goal_idx, axis=0))
        self._goal_tid = _read_only(self._task_ids.take(self._goal_idx))

    def _obs(self, s4: np.ndarray) -> np.ndarray:
        if self._obs4 is not None:
            return self._obs4.take(s4, axis=0)
        if self._joint_obs4 is not None:
            return self._joint_obs4.take(self._goal_off + s4, axis=0)
        return np.concatenate([self._agent_part4.take(s4, axis=0), self._goal_part.take(self._goal_idx, axis=0)], 1)

    def _infos(self, s4: np.ndarray, success: np.ndarray) -> dict[str, Any]:
        # new arrays on every call (gymnasium's rule): users keep infos, so nothing returned may be reused later
        every = self._all
        return {
            "agent_pos": self._pos4.take(s4, axis=0), "_agent_pos": every.copy(),
            "goal": self._goal_pos.copy(), "_goal": every.copy(),
            "is_success": success, "_is_success": every.copy(),
            "task_id": self._goal_tid.copy(), "_task_id": every.copy(),
        }

    @property
    def goals(self) -> np.ndarray:
        """The current goal of every sub-env, int64 ``(num_envs, 2)``."""
        return self._pos.take(self._goal_idx, axis=0)

    @property
    def prototype(self) -> GridGoalEnv:
        """A :class:`GridGoalEnv` built with this env's arguments: the layout, observation mode and dynamics every
        sub-env shares (its own goal and agent play no part in the sub-envs; read it, do not step it)."""
        return self._proto

    @property
    def agent_positions(self) -> np.ndarray:
        """The agent cell of every sub-env, int64 ``(num_envs, 2)``."""
        return self._pos4.take(self._s4, axis=0)

    # -- gymnasium API ------------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env (or those in ``options["reset_mask"]``), as gymnasium's ``SyncVectorEnv`` would.

        Args:
            seed: None, an int (sub-env ``i`` gets ``seed + i``), or a sequence of ``num_envs`` ints / Nones. With a
                reset mask, only the reset sub-envs are seeded.
            options: May hold ``"reset_mask"`` (bool array ``(num_envs,)``) to reset only some sub-envs; any other
                keys (``"goal"``, ``"start"``) go to every reset sub-env, as a single env's ``reset`` takes them.

        Returns:
            Observations ``(num_envs, *obs_shape)`` and the vector infos (with a mask, only the reset sub-envs carry
            infos: the others hold zeros / None and ``False`` in the ``_key`` masks, as in ``SyncVectorEnv``).

        Raises:
            ValueError: On a seed list of the wrong length, a malformed reset mask, or bad ``"goal"``/``"start"``.
        """
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed has {len(seeds)} entries: it needs exactly num_envs={n}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if "goal" in options:
            self._static_resets, self._goals_change = False, True
        elif mask is None:
            self._static_resets, self._goals_change = self._static_default, self._random_goals
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (n,) or mask.dtype != bool:
                raise ValueError(
                    f"options['reset_mask'] with shape {mask.shape} and dtype {mask.dtype} is not allowed: "
                    f"use a bool array of shape ({n},)"
                )
        for i in range(n):
            if mask is not None and not mask[i]:
                continue
            if seeds[i] is not None:
                self._rngs[i], _ = gym.utils.seeding.np_random(int(seeds[i]))
            self._reset_sub(i, self._t, pending=False, options=options)
            self._done[i] = False
        self._any_done = bool(self._done.any())
        self._refresh_goal_infos()
        s4 = self._s4
        # outside a step every sub-env sits on a real cell, and it is on its goal exactly when it has succeeded
        infos = self._infos(s4, s4 == self._goal4)
        if mask is not None:
            for key in ("agent_pos", "goal", "is_success", "task_id"):
                value = infos[key]
                value[~mask] = None if value.dtype == object else 0
                infos["_" + key] = mask.copy()
        return self._obs(s4), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env.

        Args:
            actions: int array-like of shape ``(num_envs,)`` with values in ``0..3``.

        Returns:
            ``(observations, rewards, terminated, truncated, infos)`` with leading dimension ``num_envs``.

        Raises:
            ValueError: If ``actions`` has the wrong shape or dtype or a value outside ``0..3``.
        """
        act = actions if actions.__class__ is np.ndarray else np.asarray(actions)
        if act.shape != self._act_shape or act.dtype.kind not in "iu":
            raise ValueError(
                f"actions with shape {act.shape} and dtype {act.dtype} are not allowed: "
                f"use an int array of shape ({self.num_envs},) with values in 0..{N_ACTIONS - 1}"
            )
        # one reduction checks the range: any value outside 0..3 (negative ones included) sets a bit above bit 1
        if int(np.bitwise_or.reduce(act)) & ~(N_ACTIONS - 1):
            bad = act[(act < 0) | (act >= N_ACTIONS)]
            raise ValueError(f"actions={bad[:8]!r} are not allowed: every action must be in 0..{N_ACTIONS - 1}")
        if act.dtype is not _INT64:
            act = act.astype(np.int64)
        t = self._t = self._t + 1
        s4 = self._s4
        done = self._done
        any_done = self._any_done
        if any_done:
            # sub-envs whose episode ended last step reset now: they move to an about-to-reset state, from which
            # the transition below lands on their start whatever their action
            if self._static_resets:
                np.copyto(s4, self._start_reset4, where=done)
                np.copyto(self._deadline, t + self._max_steps, where=done)
            else:
                for i in np.flatnonzero(done).tolist():
                    self._reset_sub(i, t, pending=True)
                if self._goals_change:
                    self._refresh_goal_infos()
        np.add(s4, act, out=self._buf)
        nxt = self._s4 = self._t4.take(self._buf)
        truncated = self._deadline == t
        goal4 = self._goal4
        if self._absorbing:
            # an agent on the goal stays there and earns nothing; being on the goal is the same as success
            at_goal = s4 == goal4
            np.copyto(nxt, s4, where=at_goal)
            success = nxt == goal4
            reached = np.greater(success, at_goal)
            terminated = np.zeros(self.num_envs, dtype=bool)
            rewards = reached.astype(np.float64)
            if self._goal_reward != 1.0:
                rewards *= self._goal_reward
            if self._step_cost != 0.0:
                rewards -= np.logical_not(at_goal) * self._step_cost
            self._done = truncated.copy()
        else:
            # a sub-env that has not ended is never on its goal before the step, so success == reaching it now
            reached = terminated = nxt == goal4
            success = reached.copy()
            truncated = np.less(reached, truncated)  # truncation only when not terminated at the same step
            rewards = reached.astype(np.float64)
            if self._goal_reward != 1.0:
                rewards *= self._goal_reward
            if self._step_cost != 0.0:
                rewards -= self._step_cost
            self._done = reached | truncated
        if any_done and self._step_cost != 0.0:
            rewards[done] = 0.0  # the autoreset step earns nothing (flags are False already: start != goal)
        self._any_done = bool(self._done.any())
        return self._obs(nxt), rewards, terminated, truncated, self._infos(nxt, success)
