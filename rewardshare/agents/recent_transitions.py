"""``TransitionRecorder``: the agent's most recent transitions, as the env (and a reward model) sees them.

Interactive feedback asks the teacher about what the agent itself did lately. SB3's buffers hold what the *policy*
observes (possibly a one-hot view, see :mod:`rewardshare.agents.policy_obs`) and no agent cells, so this small
``VecEnvWrapper`` keeps its own ring of the last ``window`` env steps: the env's observations before and after each
step (the real terminal observation at an episode's end), the action, ``terminated`` (truncation is not a property
of the transition), the agent's cells (``info["agent_pos"]``, which the teacher judges) and, per sub-env, an episode
id and the step's index in its episode (so segments never cross an episode boundary).

Put it directly on the ``DummyVecEnv`` (under the reward wrapper); :func:`~rewardshare.agents.train_agent` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

Arrays = dict[str, np.ndarray]
#: The fields of a recorded step that a feedback dataset stores.
STEP_FIELDS: tuple[str, ...] = ("obs", "action", "next_obs", "done", "agent_pos", "next_agent_pos")


class TransitionRecorder(VecEnvWrapper):
    """Keeps the last ``window`` env steps (over all sub-envs) of transitions; passes everything through unchanged.

    Args:
        venv: The SB3 vec env (GridGoal sub-envs: their ``info["agent_pos"]`` is recorded; other envs record
            ``-1`` cells, which a teacher refuses).
        window: Env steps to keep, >= 1 (rounded up to whole vector steps).

    Raises:
        ValueError: On a ``window`` < 1.
    """

    def __init__(self, venv: VecEnv, window: int) -> None:
        super().__init__(venv)
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window={window!r} is not allowed: use an int >= 1 (env steps)")
        self.window = int(window)
        self.capacity = math.ceil(self.window / self.num_envs)  # vector steps
        n, cap = self.num_envs, self.capacity
        shape = self.observation_space.shape or ()
        self._ring: Arrays = {
            "obs": np.zeros((cap, n, *shape), dtype=np.float32),
            "next_obs": np.zeros((cap, n, *shape), dtype=np.float32),
            "action": np.zeros((cap, n), dtype=np.int64),
            "done": np.zeros((cap, n), dtype=bool),
            "agent_pos": np.zeros((cap, n, 2), dtype=np.int64),
            "next_agent_pos": np.zeros((cap, n, 2), dtype=np.int64),
            "episode": np.zeros((cap, n), dtype=np.int64),
            "episode_step": np.zeros((cap, n), dtype=np.int64),
        }
        self.steps = 0  # vector steps recorded so far
        self._obs: np.ndarray | None = None
        self._pos = np.full((n, 2), -1, dtype=np.int64)
        self._episode = np.arange(n, dtype=np.int64)
        self._next_episode = n
        self._episode_step = np.zeros(n, dtype=np.int64)
        self._actions: np.ndarray | None = None

    def _cells(self, infos: list[dict[str, Any]] | None) -> np.ndarray:
        out = np.full((self.num_envs, 2), -1, dtype=np.int64)
        for i, info in enumerate(infos or []):
            if info and "agent_pos" in info:
                out[i] = np.asarray(info["agent_pos"], dtype=np.int64)
        return out

    def reset(self) -> Any:
        """Reset every sub-env; episodes restart (the recorded window is kept)."""
        obs = self.venv.reset()
        self._obs = np.array(obs, dtype=np.float32, copy=True)
        self._pos = self._cells(getattr(self.venv, "reset_infos", None))
        self._episode = np.arange(self._next_episode, self._next_episode + self.num_envs, dtype=np.int64)
        self._next_episode += self.num_envs
        self._episode_step[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102
        self._actions = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
        """Step every sub-env and record the transitions."""
        if self._obs is None or self._actions is None:
            raise RuntimeError("TransitionRecorder.step_wait() called before reset() and step_async()")
        obs, rew, dones, infos = self.venv.step_wait()
        row = self.steps % self.capacity
        ring = self._ring
        ring["obs"][row] = self._obs
        ring["next_obs"][row] = obs
        ring["action"][row] = self._actions.reshape(self.num_envs, -1)[:, 0]
        ring["agent_pos"][row] = self._pos
        ring["next_agent_pos"][row] = next_pos = self._cells(infos)
        ring["episode"][row] = self._episode
        ring["episode_step"][row] = self._episode_step
        done_idx = np.flatnonzero(dones)
        terminated = np.array(dones, dtype=bool)
        for i in done_idx:
            ring["next_obs"][row, i] = infos[i]["terminal_observation"]
            terminated[i] = not infos[i].get("TimeLimit.truncated", False)
        ring["done"][row] = terminated
        self.steps += 1
        self._obs = np.array(obs, dtype=np.float32, copy=True)
        self._pos = next_pos
        self._episode_step += 1
        if done_idx.size:
            reset_pos = self._cells(getattr(self.venv, "reset_infos", None))
            self._pos[done_idx] = reset_pos[done_idx]
            self._episode[done_idx] = np.arange(self._next_episode, self._next_episode + done_idx.size)
            self._next_episode += done_idx.size
            self._episode_step[done_idx] = 0
        return obs, rew, dones, infos

    # -- reading the window ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Transitions held (at most ``capacity * num_envs``)."""
        return min(self.steps, self.capacity) * self.num_envs

    def _chronological(self) -> Arrays:
        """The held rows, oldest first: ``{field: (T, n_envs, ...)}``."""
        held = min(self.steps, self.capacity)
        order = (np.arange(held) + (self.steps - held)) % self.capacity
        return {k: v[order] for k, v in self._ring.items()}

    def sample_transitions(self, n: int, rng: np.random.Generator) -> Arrays:
        """Up to ``n`` distinct held transitions, uniformly at random.

        Returns:
            ``{"obs", "next_obs": (m, *obs_shape) float32, "action": (m,) int64, "done": (m,) bool, "agent_pos",
            "next_agent_pos": (m, 2) int64}`` with ``m = min(n, len(self))``.
        """
        data = self._chronological()
        total = len(self)
        pick = np.sort(rng.choice(total, size=min(int(n), total), replace=False))
        return {k: v.reshape(total, *v.shape[2:])[pick] for k, v in data.items() if k in STEP_FIELDS}

    def sample_segment_pairs(self, n: int, length: int, rng: np.random.Generator) -> tuple[Arrays, Arrays]:
        """Up to ``n`` pairs of distinct segments of ``length`` consecutive steps of one episode each, uniformly over
        the held segments (a pair's two segments are drawn from the same pool, independently of their episodes).

        Returns:
            Segments A and B: ``{"obs", "next_obs": (m, L, *obs_shape), "action", "done": (m, L), "agent_pos",
            "next_agent_pos": (m, L, 2)}``, ``m = min(n, segments // 2)``.
        """
        data = self._chronological()
        episode = data["episode"]
        held = episode.shape[0]
        if held < length:
            empty = {k: v[:0, :0] for k, v in data.items() if k in STEP_FIELDS}
            return empty, empty
        # a segment ends at (t, e) when its first step (t - length + 1) belongs to the same episode
        same = episode[length - 1:] == episode[: held - length + 1]
        ends_t, ends_e = np.nonzero(same)
        ends_t = ends_t + length - 1
        m = min(int(n), ends_t.size // 2)
        pick = rng.choice(ends_t.size, size=2 * m, replace=False)
        steps = ends_t[pick][:, None] - np.arange(length - 1, -1, -1)[None, :]  # (2m, L), oldest step first
        envs = np.repeat(ends_e[pick][:, None], length, axis=1)
        seg = {k: v[steps, envs] for k, v in data.items() if k in STEP_FIELDS}
        return {k: v[:m] for k, v in seg.items()}, {k: v[m:] for k, v in seg.items()}
