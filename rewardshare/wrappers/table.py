"""The table fast path: evaluate a reward source once over every (s, a[, s'][, done]) of a finite env, then look up.

A learned reward on a grid is a function of finitely many inputs, so a per-step forward (about 100 us for a small MLP)
can be replaced by an array lookup. The table is keyed by the *observation itself* (its bytes, or its value for a
``Discrete`` space): an observation the table was not built from (another goal, an observation wrapper that changed
it) is a miss, and a miss falls back to the forward path. So the table can only ever return a value the source gave
for exactly these inputs.

Enumerations (:class:`FiniteStates`):

- ``Discrete(n)`` observations (FrozenLake, ...): every state; any next state.
- GridGoal envs (:class:`~rewardshare.envs.GridGoalEnv` and :class:`~rewardshare.envs.GridGoalVectorEnv`): every free
  cell (times every free goal cell when the goal is observed), built with the env's own ``observation_for``. The
  dynamics are deterministic, so the next state of ``(s, a)`` is the planner's successor, or ``s`` itself on an
  absorbing goal: two candidates per ``(s, a)`` instead of every state.

Values are computed with batched calls of the source over chunks of :data:`TABLE_CHUNK_ROWS` model rows (a posterior
of ``M`` members evaluates ``M`` model rows per table row, so its chunks hold ``1 / M`` as many table rows): one call
for a small table, and a bounded memory for a large one. A batched forward and a batch-of-one forward of the same
MLP can differ in the last float32 bit (BLAS sums in a different order), so table values equal the per-step forward
to float32 rounding (|difference| <= ~1e-6 relative), and equal the batched forward over the same rows exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rewardshare.envs import grid_env_of, grid_states
from rewardshare.wrappers.sources import RewardSource

#: Default cap on the number of (s, a, s', done) rows a table may hold; larger tables fall back to the forward path.
MAX_TABLE_ROWS = 2_000_000
#: Model rows per call of the source while a table is built (bounds the activations of a large table's forward).
TABLE_CHUNK_ROWS = 1 << 16


@dataclass
class FiniteStates:
    """An enumeration of an env's observations.

    Attributes:
        observations: One observation per state, ``(S, *obs_shape)``.
        positions: The agent cell of each state, int64 ``(S, 2)``, or ``None`` when unknown.
        candidates: Possible next states of each ``(s, a)``, int64 ``(S, A, K)``; ``None`` means every state.
        discrete_start: For ``Discrete`` observation spaces, the space's ``start`` (the state index is
            ``obs - start``); ``None`` for array observations (looked up by their bytes).
        goals: The goal cell of each state, int64 ``(S, 2)`` (GridGoal envs; for an env that does not observe its
            goal, the goal the observations were built with), or ``None``.
    """

    observations: np.ndarray
    positions: np.ndarray | None
    candidates: np.ndarray | None
    discrete_start: int | None = None
    goals: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.discrete_start is None:
            flat = np.ascontiguousarray(self.observations.reshape(len(self.observations), -1))
            self._flat = flat
            self._by_bytes = {row.tobytes(): i for i, row in enumerate(flat)}
            if len(self._by_bytes) != len(flat):
                raise ValueError("the enumerated observations are not unique: states cannot be told apart")
            # an exact integer hash of each row's bytes (uint64 arithmetic wraps, so it is exact and independent
            # of batch size, unlike a float projection whose rounding depends on the BLAS kernel)
            rng = np.random.default_rng(0)
            for _ in range(8):
                coef = rng.integers(1, 2**63, size=flat.view(np.uint8).shape[1], dtype=np.uint64)
                keys = self._hash(flat, coef)
                if np.unique(keys).size == keys.size:
                    break
            else:  # pragma: no cover - eight collisions in a row do not happen for distinct rows
                raise RuntimeError("could not hash the enumerated observations")
            self._coef = coef
            order = np.argsort(keys, kind="stable")
            self._sorted_keys = keys[order]
            self._order = order

    @staticmethod
    def _hash(flat: np.ndarray, coef: np.ndarray) -> np.ndarray:
        raw = np.ascontiguousarray(flat).view(np.uint8).reshape(len(flat), -1)
        return (raw.astype(np.uint64) * coef).sum(axis=1, dtype=np.uint64)

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return len(self.observations)

    @property
    def n_next(self) -> int:
        """Number of next-state slots per ``(s, a)``: ``K``, or ``S`` when any next state is possible."""
        return self.n_states if self.candidates is None else self.candidates.shape[2]

    def index_one(self, obs: Any) -> int:
        """The state index of one observation, ``-1`` if it is not enumerated."""
        if self.discrete_start is not None:
            i = int(obs) - self.discrete_start
            return i if 0 <= i < self.n_states else -1
        if getattr(obs, "dtype", None) != self.observations.dtype:
            obs = np.asarray(obs, dtype=self.observations.dtype)
        return self._by_bytes.get(obs.tobytes(), -1)  # tobytes() is C-ordered even for a non-contiguous view

    def index_rows(self, obs: np.ndarray) -> list[int]:
        """State indices of a small batch, row by row (cheaper than :meth:`index` below a few dozen rows)."""
        if self.discrete_start is not None:
            return self.index(obs).tolist()
        if obs.dtype != self.observations.dtype:
            obs = obs.astype(self.observations.dtype)
        get = self._by_bytes.get
        # one tobytes() for the batch, sliced per row: cheaper than a numpy row view and its tobytes() per row
        raw = obs.tobytes()  # C order, so row i is raw[i * width:(i + 1) * width]
        width = len(raw) // len(obs) if len(obs) else 0
        return [get(raw[i:i + width], -1) for i in range(0, len(raw), width)] if width else [-1] * len(obs)

    def index(self, obs: np.ndarray) -> np.ndarray:
        """State indices of a batch of observations ``(B, *obs_shape)``: int64 ``(B,)``, ``-1`` where not enumerated."""
        obs = np.asarray(obs)
        if self.discrete_start is not None:
            i = obs.astype(np.int64).reshape(-1) - self.discrete_start
            return np.where((i >= 0) & (i < self.n_states), i, -1)
        flat = obs.reshape(len(obs), -1)
        if flat.shape[1] != self._flat.shape[1]:
            return np.full(len(obs), -1, dtype=np.int64)
        keys = self._hash(flat.astype(self._flat.dtype), self._coef)
        pos = np.clip(np.searchsorted(self._sorted_keys, keys), 0, len(self._order) - 1)
        idx = self._order[pos]
        exact = (self._flat[idx] == flat).all(axis=1)  # verify: a key match is only a candidate
        return np.where(exact, idx, -1)

    def next_slot(self, s: np.ndarray, a: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """The slot of next state ``s2`` among the candidates of ``(s, a)``; ``-1`` if it is none of them."""
        if self.candidates is None:
            return s2
        cand = self.candidates[s, a]  # (B, K)
        hit = cand == s2[:, None]
        return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def enumerate_states(env: gym.Env | gym.vector.VectorEnv) -> FiniteStates | None:
    """The finite state enumeration of ``env``, or ``None`` if its observations are not known to be finite.

    Handles ``Discrete`` observation spaces, :class:`GridGoalEnv` (also under wrappers that keep its observation
    space) and :class:`GridGoalVectorEnv`.
    """
    obs_space = env.single_observation_space if isinstance(env, gym.vector.VectorEnv) else env.observation_space
    if isinstance(obs_space, spaces.Discrete):
        n = int(obs_space.n)
        return FiniteStates(np.arange(n, dtype=np.int64) + int(obs_space.start), None, None, int(obs_space.start))
    try:
        proto = grid_env_of(env)
    except TypeError:
        return None
    if proto.random_layout or obs_space != proto.observation_space:
        return None  # a new maze per episode, or an observation wrapper: nothing to enumerate
    grid = grid_states(proto)
    # the dynamics are deterministic: the next state of (s, a) is the planner's successor, or s itself when an
    # absorbing goal keeps the agent in place
    cand = np.stack([grid.next_state, np.broadcast_to(np.arange(grid.n_states)[:, None], grid.next_state.shape)], -1)
    return FiniteStates(grid.observations, grid.cells, cand, goals=grid.goals)


class RewardTable:
    """A reward source tabulated over a finite env.

    Args:
        source: The reward source (must not use the env's reward).
        states: The env's enumeration (:func:`enumerate_states`).
        n_actions: Size of the ``Discrete`` action space.
        action_start: The action space's ``start``.

    Attributes:
        values: float64 ``(S, A, K, D)``; ``K`` is 1 unless the source uses ``next_obs``, ``D`` is 1 unless it uses
            ``done`` (then index ``int(done)``).
    """

    def __init__(self, source: RewardSource, states: FiniteStates, n_actions: int, action_start: int = 0) -> None:
        if source.uses_env_reward:
            raise ValueError(f"reward source {source.name!r} returns the env reward: there is nothing to tabulate")
        if source.uses_positions and states.positions is None:
            raise ValueError(f"reward source {source.name!r} needs agent cells, which this env's states do not have")
        self.source = source
        self.states = states
        self.n_actions = int(n_actions)
        self.action_start = int(action_start)
        self.uses_next = bool(source.uses_next_obs)
        self.uses_done = bool(source.uses_done)
        S, A = states.n_states, self.n_actions
        K = states.n_next if self.uses_next else 1
        D = 2 if self.uses_done else 1
        s, a, k, d = (x.reshape(-1) for x in np.meshgrid(np.arange(S), np.arange(A), np.arange(K), np.arange(D),
                                                           indexing="ij"))
        if not self.uses_next:
            s2 = s  # a source that ignores next_obs gets a valid placeholder
        elif states.candidates is None:
            s2 = k
        else:
            s2 = states.candidates[s, a, k]
        obs = states.observations
        pos = states.positions
        # a posterior runs each table row once per member (n_members model rows)
        chunk = max(1, TABLE_CHUNK_ROWS // max(1, int(getattr(source, "n_members", 1))))
        values = np.empty(len(s), dtype=np.float64)
        for lo in range(0, len(s), chunk):
            i, j = s[lo:lo + chunk], s2[lo:lo + chunk]
            values[lo:lo + chunk] = source(
                obs[i], a[lo:lo + chunk] + self.action_start, obs[j], d[lo:lo + chunk].astype(bool),
                np.zeros(len(i)), None if pos is None else pos[i], None if pos is None else pos[j],
            )
        self.values = values.reshape(S, A, K, D)
        self.values.flags.writeable = False
        # nested lists: the single-env path indexes them with Python ints, far cheaper than numpy scalar indexing
        self._nested = self.values.tolist()
        self._cand = None if states.candidates is None else states.candidates.tolist()

    @staticmethod
    def n_rows(states: FiniteStates, n_actions: int, source: RewardSource) -> int:
        """How many rows a table of ``source`` over ``states`` would hold."""
        k = states.n_next if source.uses_next_obs else 1
        return states.n_states * n_actions * k * (2 if source.uses_done else 1)

    def lookup_one(self, s: int, a: int, s2: int, done: bool) -> float | None:
        """One reward, or ``None`` on a miss (an unknown state or an impossible next state)."""
        if s < 0:
            return None
        a -= self.action_start
        if not 0 <= a < self.n_actions:
            return None
        if not self.uses_next:
            k = 0
        elif s2 < 0:
            return None
        elif self._cand is None:
            k = s2
        else:
            c = self._cand[s][a]
            if s2 == c[0]:
                k = 0
            elif s2 == c[1]:
                k = 1
            else:
                return None
        return self._nested[s][a][k][1 if (self.uses_done and done) else 0]

    def lookup_rows(self, s: list[int], a: list[int], s2: list[int], done: list[bool]) -> list[float | None]:
        """:meth:`lookup_one` over a small batch given as lists (one Python loop, no call per row): the batched
        wrappers' per-step path for a few sub-envs, where a handful of numpy calls would cost more."""
        nested, cand, start, n_actions = self._nested, self._cand, self.action_start, self.n_actions
        uses_next, uses_done = self.uses_next, self.uses_done
        out: list[float | None] = []
        for si, ai, s2i, di in zip(s, a, s2, done, strict=True):
            ai -= start
            if si < 0 or not 0 <= ai < n_actions:
                out.append(None)
                continue
            if not uses_next:
                k = 0
            elif s2i < 0:
                out.append(None)
                continue
            elif cand is None:
                k = s2i
            else:
                c = cand[si][ai]
                k = 0 if s2i == c[0] else 1 if s2i == c[1] else -1
                if k < 0:
                    out.append(None)
                    continue
            out.append(nested[si][ai][k][1 if (uses_done and di) else 0])
        return out

    def lookup(self, s: np.ndarray, a: np.ndarray, s2: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewards for a batch: ``(values (B,) float64, hit (B,) bool)``; values are 0 where ``hit`` is False."""
        a = np.asarray(a, dtype=np.int64).reshape(-1) - self.action_start
        hit = (s >= 0) & (a >= 0) & (a < self.n_actions)
        s_ = np.where(hit, s, 0)
        a_ = np.where(hit, a, 0)
        if self.uses_next:
            k = self.states.next_slot(s_, a_, np.where(s2 >= 0, s2, -2))
            hit &= (k >= 0) & (s2 >= 0)
            k = np.where(hit, k, 0)
        else:
            k = np.zeros_like(s_)
        d = np.asarray(done, dtype=np.int64).reshape(-1) if self.uses_done else np.zeros_like(s_)
        vals = self.values[s_, a_, k, d]
        return np.where(hit, vals, 0.0), hit


def build_table(
    source: RewardSource,
    env: gym.Env | gym.vector.VectorEnv,
    use_table: bool | str | RewardTable = "auto",
    max_rows: int = MAX_TABLE_ROWS,
) -> RewardTable | None:
    """Build the fast-path table for ``source`` on ``env`` if possible.

    Args:
        source: The reward source.
        env: A gymnasium env or vector env.
        use_table: ``"auto"`` (build when possible, else ``None``), ``True`` (build or raise), ``False`` (``None``),
            or an existing :class:`RewardTable` of the same source and the same states (shared, e.g. by many eval
            envs, instead of being rebuilt).
        max_rows: The largest table (rows of (s, a, s', done)) to build.

    Returns:
        The table, or ``None``.

    Raises:
        ValueError: ``use_table=True`` on an env or source that cannot be tabulated, a table of another source or
            env, or a bad ``use_table``.
    """
    if isinstance(use_table, RewardTable):
        if use_table.source is not source:
            raise ValueError("use_table=<RewardTable> was built for another reward source: pass the table's source")
        states = enumerate_states(env)
        if states is None or not np.array_equal(states.observations, use_table.states.observations):
            raise ValueError("use_table=<RewardTable> was built for an env with other states: build a new table")
        return use_table
    if use_table not in (True, False, "auto"):
        raise ValueError(f"use_table={use_table!r} is not allowed: use True, False or 'auto'")
    if use_table is False or source.uses_env_reward:
        return None
    act_space = env.single_action_space if isinstance(env, gym.vector.VectorEnv) else env.action_space
    states = enumerate_states(env) if isinstance(act_space, spaces.Discrete) else None
    why = None
    if states is None:
        why = "its observations are not a known finite set (Discrete, or a GridGoal env) or its actions not Discrete"
    elif source.uses_positions and states.positions is None:
        why = f"reward source {source.name!r} needs agent cells and this env's states have none"
    else:
        rows = RewardTable.n_rows(states, int(act_space.n), source)
        if rows > max_rows:
            why = f"the table would hold {rows} rows, more than max_table_rows={max_rows}"
    if why is not None:
        if use_table is True:
            raise ValueError(f"use_table=True is not possible for this env: {why}")
        return None
    return RewardTable(source, states, int(act_space.n), int(act_space.start))
