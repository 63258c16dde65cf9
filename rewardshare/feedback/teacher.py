"""The simulated teacher: reward labels, preferences and demonstrations for one goal task, on a query budget.

The teacher knows the task's layout and goal, so it judges every transition exactly with the BFS planner; noise,
label flips and a finite rationality ``beta`` model an imperfect human. Every reward label, every comparison and every
demonstrated step costs one unit of the budget. :meth:`Teacher.true_reward` is the noiseless reward, free of charge,
used to evaluate learned rewards and as an oracle for agents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardshare.envs.layouts import Cell
from rewardshare.envs.mdp import goal_distances, layout_transitions
from rewardshare.envs.planner import N_ACTIONS, move
from rewardshare.envs.tasks import GoalTask
from rewardshare.errors import RewardShareError

REWARD_KINDS: tuple[str, ...] = ("dense", "sparse")

#: Dense label of a move that shortens the BFS distance to the goal.
DENSE_CLOSER = 1.0
#: Dense label of a move that lengthens the distance or bumps into a wall (the agent stays in place).
DENSE_FARTHER = -1.0
#: Bonus added to the dense label of the transition that reaches the goal (so that transition is ``+1 + 5 = +6``).
DENSE_GOAL_BONUS = 5.0
#: Label of every transition out of the goal (absorbing), and of cells from which the goal cannot be reached.
ABSORBING_REWARD = 0.0
#: Preference label of a tie (equal segment returns).
TIE = 0.5


class BudgetExhausted(RewardShareError, RuntimeError):
    """The teacher was asked for more queries than its budget has left.

    Attributes:
        requested: Queries asked for by the failed call.
        remaining: Queries that were still left (nothing is spent by the failed call).
        budget: The teacher's total budget.
    """

    def __init__(self, requested: int, remaining: int, budget: int) -> None:
        self.requested, self.remaining, self.budget = requested, remaining, budget
        super().__init__(
            f"teacher budget exhausted: asked for {requested} queries but only {remaining} of budget={budget} are left "
            f"(spent {budget - remaining}); give the Teacher a larger budget or ask for fewer items"
        )


def _check_prob(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        raise ValueError(f"{name}={value!r} is not allowed: use a float in [0, 1]")
    return float(value)


def _check_nonneg(name: str, value: Any, allow_inf: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        allowed = "a float >= 0 or float('inf')" if allow_inf else "a finite float >= 0"
        raise ValueError(f"{name}={value!r} is not allowed: use {allowed}")
    return float(value)


def expert_actions(
    optimal: np.ndarray,
    next_dist: np.ndarray,
    rng: np.random.Generator,
    epsilon: float | np.ndarray = 0.0,
    temperature: float | np.ndarray | None = None,
) -> np.ndarray:
    """Vectorized planner-based expert: one action per query.

    Greedy (``temperature`` None or 0): a uniformly drawn action among those on a shortest path, so ties are broken
    by ``rng``. Boltzmann (``temperature > 0``): ``P(a) ∝ exp(-(1 + d(s')) / temperature)`` with ``d(s')`` the BFS
    distance after the move, i.e. a softmax over the optimal Q-values of a -1-per-step reward. On the goal, a wall
    or a cell that cannot reach the goal (no shortest-path action) the action is uniform. Finally, with probability
    ``epsilon`` the action is replaced by a uniform one.

    Args:
        optimal: bool ``(N, 4)``, the shortest-path actions of each query's cell.
        next_dist: float ``(N, 4)``, the BFS distance of the cell each action leads to (``inf`` if unreachable).
        rng: Source of all randomness.
        epsilon: Scalar or ``(N,)`` per-query epsilon in [0, 1].
        temperature: None, a scalar or ``(N,)`` per-query temperature >= 0 (0 means greedy).

    Returns:
        int64 ``(N,)`` actions.
    """
    n = optimal.shape[0]
    keys = rng.random((n, N_ACTIONS))
    has_opt = optimal.any(axis=1)
    # argmax over random keys restricted to the optimal actions = a uniform choice among them
    scores = np.where(has_opt[:, None], np.where(optimal, keys, -1.0), keys)
    if temperature is not None and np.any(np.asarray(temperature) > 0):
        temp = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (n,))
        soft = (temp > 0) & has_opt
        logits = -(1.0 + next_dist) / np.where(soft, temp, 1.0)[:, None]  # inf distance -> -inf logit
        gumbel = -np.log(-np.log(np.clip(keys, 1e-300, 1.0 - 1e-16)))  # Gumbel-max samples the softmax
        scores = np.where(soft[:, None], logits + gumbel, scores)
    actions = scores.argmax(axis=1).astype(np.int64)
    eps = np.broadcast_to(np.asarray(epsilon, dtype=np.float64), (n,))
    if np.any(eps > 0):
        explore = rng.random(n) < eps
        actions = np.where(explore, rng.integers(N_ACTIONS, size=n), actions)
    return actions


class Teacher:
    """A simulated teacher for one :class:`~rewardshare.envs.GoalTask`.

    **Reward labels** ``r(s, a, s')`` (:meth:`label`, :meth:`true_reward`), for cells ``s`` and ``s'``:

    - ``reward="dense"`` — a person's judgement of progress, using the BFS distance ``d`` to the goal:
      ``+1`` (:data:`DENSE_CLOSER`) if ``d(s') < d(s)``; ``-1`` (:data:`DENSE_FARTHER`) if ``d(s') > d(s)`` or the
      move bumps into a wall or the border (``s' == s``); plus ``+5`` (:data:`DENSE_GOAL_BONUS`) on the transition that
      reaches the goal (so that one is ``+6``); ``0`` for every transition out of the goal (the goal is absorbing)
      and for cells that cannot reach the goal. On a grid every unblocked move changes ``d`` by exactly one, so
      these cases are exhaustive.
    - The teacher judges the *action*: ``s'`` is taken as the move's real outcome ``T(s, a)``, so both kinds are
      state-action rewards and a triple ``(s, a, s')`` that the dynamics cannot produce (EPIC evaluates those) gets
      the reward of ``(s, a, T(s, a))``.
    - ``reward="sparse"`` — the env's own reward: ``goal_reward`` on the transition that reaches the goal, minus
      ``step_cost`` on every transition; ``0`` out of the goal.

    Noisy labels (:meth:`label`): with probability ``flip_prob`` the judgement is flipped (dense: the sign is
    negated; sparse: whether the goal reward is paid is toggled), then Gaussian noise with standard deviation
    ``noise`` is added.

    **Preferences** (:meth:`prefer`) between segments A and B with returns ``R_A``, ``R_B`` (sums of the noiseless
    reward): equal returns give a tie, label ``0.5``; otherwise with ``beta=inf`` the label is ``1.0`` if A is
    better and ``0.0`` if B is; with finite ``beta`` the teacher picks A with the Bradley-Terry probability
    ``sigmoid(beta * (R_A - R_B))`` (a hard 0/1 label). A non-tie label is then flipped with probability
    ``flip_prob``.

    **Demonstrations** (:meth:`act`, :meth:`demonstrate`): an expert that follows shortest paths (ties broken by
    the seeded RNG), optionally epsilon-greedy or Boltzmann with a temperature (see :func:`expert_actions`).

    **Budget**: each label, each comparison and each demonstrated step costs one query; a call that would overspend
    raises :class:`BudgetExhausted` and spends nothing. :meth:`true_reward` and :meth:`act` are free.

    Args:
        task: The task being taught.
        reward: ``"dense"`` or ``"sparse"``.
        noise: Standard deviation of the Gaussian label noise, >= 0.
        flip_prob: Probability in [0, 1] of flipping a label or a comparison.
        beta: Bradley-Terry rationality, >= 0; ``float("inf")`` means a perfectly rational teacher.
        seed: Seed of the teacher's RNG (noise, flips, choices, expert tie-breaking).
        budget: Total number of queries, or None for no limit.
        goal_reward: The sparse reward for reaching the goal (match the env's ``goal_reward``).
        step_cost: The sparse per-step cost (match the env's ``step_cost``).

    Raises:
        ValueError: On an unknown reward kind or an out-of-range argument.
    """

    def __init__(
        self,
        task: GoalTask,
        reward: str = "dense",
        noise: float = 0.0,
        flip_prob: float = 0.0,
        beta: float = float("inf"),
        seed: int = 0,
        budget: int | None = None,
        goal_reward: float = 1.0,
        step_cost: float = 0.0,
    ) -> None:
        if not isinstance(task, GoalTask):
            raise TypeError(f"task={task!r} is not allowed: use a rewardshare.envs.GoalTask")
        if reward not in REWARD_KINDS:
            raise ValueError(f"reward={reward!r} is not allowed: use one of {REWARD_KINDS}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0):
            raise ValueError(f"budget={budget!r} is not allowed: use an int >= 0 or None (no limit)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed={seed!r} is not allowed: use an int")
        self.task = task
        self.reward = reward
        self.noise = _check_nonneg("noise", noise)
        self.flip_prob = _check_prob("flip_prob", flip_prob)
        self.beta = _check_nonneg("beta", beta, allow_inf=True)
        self.seed = int(seed)
        self.budget = None if budget is None else int(budget)
        self.goal_reward = float(goal_reward)
        self.step_cost = float(step_cost)
        self.spent = 0
        self.rng = np.random.default_rng(self.seed)

        layout = self.layout = task.resolve_layout()
        self.goal: Cell = task.goal
        h, w = layout.height, layout.width
        # cached per (layout, goal) and per layout: the teachers of a family share them
        self._dist = goal_distances(layout, self.goal)  # (H, W), -1 on walls and unreachable cells
        #: int64 (H*W, 4): flat index of the cell each action leads to (the layout's dynamics), read-only
        self.next_table = layout_transitions(layout)
        flat_dist = self._dist.reshape(-1).astype(np.float64)
        reach = np.where(flat_dist >= 0, flat_dist, np.inf)
        #: BFS distance after each action, (H*W, 4); inf where the goal cannot be reached
        self.next_dist = reach[self.next_table]
        here = reach[:, None]
        #: bool (H*W, 4): actions on a shortest path to the goal (none on the goal itself)
        self.optimal = (self.next_dist == here - 1) & np.isfinite(here) & (here > 0)
        self._goal_index = self.goal[0] * w + self.goal[1]
        self._shape = (h, w)

    # -- budget -------------------------------------------------------------------------------------------------
    @property
    def remaining(self) -> int | None:
        """Queries left, or None without a budget."""
        return None if self.budget is None else self.budget - self.spent

    def spend(self, n: int) -> None:
        """Charge ``n`` queries (all or nothing).

        Raises:
            BudgetExhausted: If fewer than ``n`` queries are left; nothing is charged then.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"n={n!r} is not allowed: a teacher cannot be refunded")
        if self.budget is not None and self.spent + n > self.budget:
            raise BudgetExhausted(n, self.budget - self.spent, self.budget)
        self.spent += n

    # -- rewards ------------------------------------------------------------------------------------------------
    def _cells(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim < 1 or arr.shape[-1] != 2:
            raise ValueError(f"{name} has shape {arr.shape}: use (row, col) cells of shape (..., 2)")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
                raise ValueError(f"{name} holds non-integer values (dtype {arr.dtype}): use int (row, col) cells")
            arr = arr.astype(np.int64)
        h, w = self._shape
        rows, cols = arr[..., 0], arr[..., 1]
        bad = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)
        if bad.any():
            first = tuple(arr[tuple(np.argwhere(bad)[0])].tolist())
            raise ValueError(f"{name} holds cell {first} outside the {h}x{w} grid of {self.layout.name!r}")
        flat = rows.astype(np.int64) * w + cols
        walls = self.layout.walls.reshape(-1)[flat]
        if walls.any():
            first = tuple(arr[tuple(np.argwhere(walls)[0])].tolist())
            raise ValueError(f"{name} holds cell {first}, a wall of layout {self.layout.name!r}: cells must be free")
        return flat

    def _flat_transitions(self, pos: Any, action: Any, next_pos: Any) -> tuple[np.ndarray, np.ndarray]:
        s = self._cells("pos", pos)
        s2 = self._cells("next_pos", next_pos)
        a = np.asarray(action)
        if s.shape != s2.shape or a.shape != s.shape:
            raise ValueError(
                f"pos {np.shape(pos)}, action {a.shape} and next_pos {np.shape(next_pos)} do not match: "
                "use pos and next_pos of shape (..., 2) and action of shape (...)"
            )
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= N_ACTIONS):
            raise ValueError(f"action holds values outside 0..{N_ACTIONS - 1} (dtype {a.dtype}): use int actions")
        # The teacher judges the action: on these deterministic grids (s, a) fixes s', so the judgement is that of
        # the move's actual outcome T(s, a). The given s' only matters through it; an impossible triple (used by
        # EPIC's canonicalization) gets the reward of (s, a). A state-action model can then match the teacher
        # exactly, which EPIC with independent S' would otherwise forbid.
        return s, self.next_table[s, a]

    def _reward_flat(self, s: np.ndarray, s2: np.ndarray) -> np.ndarray:
        dist = self._dist.reshape(-1)
        d, d2 = dist[s], dist[s2]
        reached = s2 == self._goal_index
        if self.reward == "dense":
            r = np.where((d2 < d) & (d2 >= 0), DENSE_CLOSER, DENSE_FARTHER) + DENSE_GOAL_BONUS * reached
            r = np.where(d <= 0, ABSORBING_REWARD, r)  # out of the goal (d == 0) or from an unreachable cell
        else:
            r = self.goal_reward * reached - self.step_cost
            r = np.where(d == 0, ABSORBING_REWARD, r)
        return np.asarray(r, dtype=np.float32)

    def true_reward(self, pos: Any, action: Any, next_pos: Any) -> np.ndarray:
        """The noiseless reward of transitions; free (spends no budget).

        Args:
            pos: int ``(..., 2)`` cells before the move (``(N, 2)`` usually; ``(N, L, 2)`` for segments).
            action: int ``(...)`` actions (checked to lie in 0..3).
            next_pos: int ``(..., 2)`` cells after the move. The teacher judges the action, so the reward is that of
                ``(pos, action, T(pos, action))`` whatever ``next_pos`` is (they agree on every real transition).

        Returns:
            float32 array of shape ``(...)`` (``(N,)`` for ``(N, 2)`` cells).

        Raises:
            ValueError: On mismatched shapes, cells outside the grid or on walls, or actions outside 0..3.
        """
        s, s2 = self._flat_transitions(pos, action, next_pos)
        return self._reward_flat(s, s2)

    def true_reward_table(self) -> np.ndarray:
        """The noiseless reward of every ``(cell, action)`` under the layout's dynamics.

        Returns:
            float32 ``(H, W, 4)``; entries for wall cells are 0. Transitions out of the goal are 0 (absorbing).
        """
        h, w = self._shape
        cells = np.repeat(np.arange(h * w), N_ACTIONS).reshape(h * w, N_ACTIONS)
        table = self._reward_flat(cells, self.next_table)
        table[self.layout.walls.reshape(-1)] = 0.0
        return table.reshape(h, w, N_ACTIONS)

    def _flip(self, r: np.ndarray, s: np.ndarray, s2: np.ndarray) -> np.ndarray:
        if self.reward == "dense":
            return -r
        # sparse: toggle whether the goal reward is paid (a transition out of the goal has no step cost)
        reached = s2 == self._goal_index
        base = np.where(self._dist.reshape(-1)[s] == 0, 0.0, -self.step_cost)
        return np.asarray(base + self.goal_reward * ~reached, dtype=np.float32)

    def label(self, pos: Any, action: Any, next_pos: Any) -> np.ndarray:
        """Noisy reward labels of transitions; costs one query per transition.

        Args:
            pos: int ``(N, 2)`` cells before the move.
            action: int ``(N,)`` actions.
            next_pos: int ``(N, 2)`` cells after the move.

        Returns:
            float32 ``(N,)`` labels: the true reward, flipped with probability ``flip_prob``, plus
            ``N(0, noise**2)``.

        Raises:
            BudgetExhausted: If fewer than ``N`` queries are left.
            ValueError: On malformed transitions (see :meth:`true_reward`).
        """
        s, s2 = self._flat_transitions(pos, action, next_pos)
        s, s2 = s.reshape(-1), s2.reshape(-1)
        self.spend(s.size)
        r = self._reward_flat(s, s2)
        if self.flip_prob > 0:
            flip = self.rng.random(s.size) < self.flip_prob
            r = np.where(flip, self._flip(r, s, s2), r)
        if self.noise > 0:
            r = r + self.rng.normal(0.0, self.noise, size=s.size)
        return np.asarray(r, dtype=np.float32).reshape(np.shape(action))

    # -- preferences --------------------------------------------------------------------------------------------
    def segment_return(self, pos: Any, action: Any, next_pos: Any) -> np.ndarray:
        """Noiseless return of segments: the sum of :meth:`true_reward` over the last axis; free.

        Args:
            pos: int ``(N, L, 2)``; action: int ``(N, L)``; next_pos: int ``(N, L, 2)``.

        Returns:
            float64 ``(N,)``.
        """
        return self.true_reward(pos, action, next_pos).astype(np.float64).sum(axis=-1)

    def preference_probability(self, return_a: np.ndarray, return_b: np.ndarray) -> np.ndarray:
        """Bradley-Terry probability that A is preferred: ``sigmoid(beta * (R_A - R_B))``; 0.5 on ties.

        With ``beta=inf`` this is 1, 0 or 0.5. Returns float64 of the broadcast shape.
        """
        diff = np.asarray(return_a, dtype=np.float64) - np.asarray(return_b, dtype=np.float64)
        if math.isinf(self.beta):
            return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, TIE))
        z = np.where(diff == 0, 0.0, self.beta * diff)
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # numerically stable logistic

    def prefer(
        self,
        pos_a: Any,
        action_a: Any,
        next_pos_a: Any,
        pos_b: Any,
        action_b: Any,
        next_pos_b: Any,
    ) -> np.ndarray:
        """Compare segment pairs; costs one query per pair.

        Args:
            pos_a, next_pos_a: int ``(N, L, 2)`` cells of segments A; action_a: int ``(N, L)``.
            pos_b, next_pos_b: int ``(N, L, 2)`` cells of segments B; action_b: int ``(N, L)``.

        Returns:
            float32 ``(N,)``: 1.0 if the teacher prefers A, 0.0 if B, 0.5 for a tie (equal returns).

        Raises:
            BudgetExhausted: If fewer than ``N`` queries are left.
            ValueError: On malformed segments or A and B of different shapes.
        """
        if np.shape(action_a) != np.shape(action_b) or np.ndim(action_a) != 2:
            raise ValueError(
                f"action_a {np.shape(action_a)} and action_b {np.shape(action_b)} must both have shape (N, L)"
            )
        ra = self.segment_return(pos_a, action_a, next_pos_a)
        rb = self.segment_return(pos_b, action_b, next_pos_b)
        n = ra.shape[0]
        self.spend(n)
        p = self.preference_probability(ra, rb)
        tie = ra == rb
        if math.isinf(self.beta):
            label = p
        else:
            label = np.where(tie, TIE, (self.rng.random(n) < p).astype(np.float64))
        if self.flip_prob > 0:
            flip = (self.rng.random(n) < self.flip_prob) & ~tie
            label = np.where(flip, 1.0 - label, label)
        return label.astype(np.float32)

    # -- demonstrations -----------------------------------------------------------------------------------------
    def act(
        self,
        pos: Any,
        epsilon: float | np.ndarray = 0.0,
        temperature: float | np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """The expert's actions at cells; free (a demonstration is charged in :meth:`demonstrate` / collection).

        Args:
            pos: int ``(N, 2)`` cells.
            epsilon: Probability of a uniform random action, scalar or ``(N,)``.
            temperature: None/0 for greedy shortest-path actions, or a Boltzmann temperature > 0 (scalar or ``(N,)``).
            rng: Generator to draw from (default: the teacher's).

        Returns:
            int64 ``(N,)`` actions.
        """
        s = self._cells("pos", pos).reshape(-1)
        eps = np.asarray(epsilon, dtype=np.float64)
        if np.any((eps < 0) | (eps > 1)) or np.any(np.isnan(eps)):
            raise ValueError(f"epsilon={epsilon!r} is not allowed: use values in [0, 1]")
        if temperature is not None:
            t = np.asarray(temperature, dtype=np.float64)
            if np.any(~(t >= 0)) or np.any(np.isinf(t)):
                raise ValueError(f"temperature={temperature!r} is not allowed: use finite values >= 0 or None")
        return expert_actions(self.optimal[s], self.next_dist[s], rng or self.rng, epsilon, temperature)

    def demonstrate(
        self,
        start: Cell,
        max_steps: int | None = None,
        epsilon: float = 0.0,
        temperature: float | None = None,
    ) -> dict[str, np.ndarray]:
        """One demonstration from ``start`` until the goal or ``max_steps``; costs one query per step.

        The whole episode is generated first; if the budget cannot pay for it, nothing is charged.

        Args:
            start: The start cell (a free cell other than the goal).
            max_steps: Truncation horizon (default ``4 * H * W``, like the env).
            epsilon: Epsilon of an epsilon-greedy demonstrator.
            temperature: Boltzmann temperature (None: greedy).

        Returns:
            ``{"agent_pos": (T, 2) int64, "action": (T,) int64, "next_agent_pos": (T, 2) int64,
            "done": (T,) bool, "return": float}``; ``done`` marks the step reaching the goal.

        Raises:
            ValueError: If ``start`` is the goal, a wall, outside the grid or cannot reach the goal.
            BudgetExhausted: If the budget cannot pay for the episode's steps.
        """
        flat = int(self._cells("start", np.asarray(start).reshape(1, 2))[0])
        if flat == self._goal_index:
            raise ValueError(f"start={tuple(start)!r} is the goal: choose another free cell")
        if self._dist.reshape(-1)[flat] < 0:
            raise ValueError(f"start={tuple(start)!r} cannot reach the goal {self.goal!r}")
        h, w = self._shape
        horizon = 4 * h * w if max_steps is None else int(max_steps)
        if horizon < 1:
            raise ValueError(f"max_steps={max_steps!r} is not allowed: use an int >= 1 or None")
        cell = (flat // w, flat % w)
        cells, actions, nexts = [], [], []
        for _ in range(horizon):
            a = int(self.act(np.array([cell]), epsilon=epsilon, temperature=temperature)[0])
            nxt = move(self.layout, cell, a)
            cells.append(cell)
            actions.append(a)
            nexts.append(nxt)
            cell = nxt
            if cell == self.goal:
                break
        self.spend(len(actions))
        pos = np.array(cells, dtype=np.int64)
        nxt_arr = np.array(nexts, dtype=np.int64)
        act = np.array(actions, dtype=np.int64)
        done = (nxt_arr == np.array(self.goal)).all(axis=1)
        return {
            "agent_pos": pos, "action": act, "next_agent_pos": nxt_arr, "done": done,
            "return": float(self.true_reward(pos, act, nxt_arr).sum()),
        }

    # -- provenance ---------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """A JSON-ready description of the teacher (``beta=inf`` is written as the string ``"inf"``)."""
        return {
            "task": self.task.to_dict(),
            "reward": self.reward,
            "noise": self.noise,
            "flip_prob": self.flip_prob,
            "beta": "inf" if math.isinf(self.beta) else self.beta,
            "seed": self.seed,
            "budget": self.budget,
            "spent": self.spent,
            "goal_reward": self.goal_reward,
            "step_cost": self.step_cost,
            "dense_values": {"closer": DENSE_CLOSER, "farther_or_bump": DENSE_FARTHER, "goal_bonus": DENSE_GOAL_BONUS,
                             "from_goal": ABSORBING_REWARD},
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Teacher:
        """A fresh teacher (nothing spent) from :meth:`config` output."""
        beta = config.get("beta", "inf")
        return cls(
            GoalTask.from_dict(config["task"]),
            reward=config.get("reward", "dense"),
            noise=config.get("noise", 0.0),
            flip_prob=config.get("flip_prob", 0.0),
            beta=float(beta),
            seed=config.get("seed", 0),
            budget=config.get("budget"),
            goal_reward=config.get("goal_reward", 1.0),
            step_cost=config.get("step_cost", 0.0),
        )

    def __repr__(self) -> str:
        return (
            f"Teacher(task={self.task.id!r}, reward={self.reward!r}, noise={self.noise}, flip_prob={self.flip_prob}, "
            f"beta={self.beta}, seed={self.seed}, budget={self.budget}, spent={self.spent})"
        )
