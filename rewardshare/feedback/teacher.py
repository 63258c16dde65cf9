"""The simulated teacher: reward labels, preferences and demonstrations for one goal task, on a query budget.

The teacher knows the task's layout and goal, so it judges every transition exactly with the BFS planner; noise,
label flips and the B-Pref settings (Lee et al. 2021: rationality ``beta``, ``myopia``, mistake ``flip_prob``,
``equal``, ``skip``) model an imperfect human. Every reward label, every comparison and every demonstrated step costs
one unit of the budget. :meth:`Teacher.true_reward` is the noiseless reward, free of charge, used to evaluate learned
rewards and as an oracle for agents. The demonstrator lives in :mod:`rewardshare.feedback.expert`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardshare.envs.layouts import Cell
from rewardshare.envs.mdp import goal_distances, layout_transitions
from rewardshare.envs.planner import N_ACTIONS
from rewardshare.envs.tasks import GoalTask
from rewardshare.errors import RewardShareError
from rewardshare.feedback.expert import Expert, check_expert_noise, expert_actions
from rewardshare.feedback.preference_model import (
    PREFERENCE_OUTCOMES,
    SKIPPED,
    TIE,
    bradley_terry,
    check_equal,
    check_myopia,
    check_skip,
    is_skipped,
    is_tie,
    myopic_return,
)
from rewardshare.feedback.reward_family import (
    ABSORBING_REWARD,
    DENSE_CLOSER,
    DENSE_FARTHER,
    DENSE_GOAL_BONUS,
    REWARD_KINDS,
    flat_cells,
    flipped_rewards,
    judged_transitions,
    move_rewards,
)

__all__ = [
    "ABSORBING_REWARD", "DENSE_CLOSER", "DENSE_FARTHER", "DENSE_GOAL_BONUS", "PREFERENCE_OUTCOMES", "REWARD_KINDS",
    "SKIPPED", "TIE", "BudgetExhausted", "Teacher", "expert_actions",
]


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_prob(name: str, value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name}={value!r} is not allowed: use a float in [0, 1]")
    return float(value)


def _check_nonneg(name: str, value: Any, allow_inf: bool = False) -> float:
    if not _is_number(value) or math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        allowed = "a float >= 0 or float('inf')" if allow_inf else "a finite float >= 0"
        raise ValueError(f"{name}={value!r} is not allowed: use {allowed}")
    return float(value)


class Teacher:
    """A simulated teacher for one :class:`~rewardshare.envs.GoalTask`.

    **Reward labels** ``r(s, a, s')`` (:meth:`label`, :meth:`true_reward`): ``reward="dense"`` (a person's
    judgement of progress towards the goal: +1 closer, -1 farther or bumping, +6 reaching the goal, 0 out of it) or
    ``"sparse"`` (the env's own reward), as defined in :mod:`rewardshare.feedback.reward_family`. The teacher judges
    the *action*: ``s'`` is taken as the move's real outcome ``T(s, a)``, so both kinds are state-action rewards and
    a triple ``(s, a, s')`` that the dynamics cannot produce (EPIC evaluates those) gets the reward of
    ``(s, a, T(s, a))``. Noisy labels (:meth:`label`): with probability ``flip_prob`` the judgement is flipped
    (dense: negated; sparse: whether the goal reward is paid is toggled), then Gaussian noise with standard
    deviation ``noise`` is added.

    **Preferences** (:meth:`prefer`) between segments A and B: B-Pref's scripted teacher, as documented in
    :mod:`rewardshare.feedback.preference_model`: myopic returns (``myopia``), then **skip** (both returns below
    ``skip``: the label is :data:`SKIPPED`, NaN; the query is still charged, as a person's time was spent on it, and
    a collector drops the pair from its dataset), **equal** (returns closer than ``equal``, or equal: a tie,
    ``0.5``), **rationality** (``beta=inf``: ``1.0`` if A is better, ``0.0`` if B is; finite ``beta``: A with
    probability ``sigmoid(beta * (R_A - R_B))``) and **mistake** (a choice flipped with probability ``flip_prob``).
    The defaults (``myopia=1``, ``equal=0``, ``skip=None``) give exactly the labels of the teacher before these
    settings existed.

    **Demonstrations** (:meth:`act`, :meth:`demonstrate`): an expert that follows shortest paths (ties broken by
    the seeded RNG), optionally epsilon-greedy or Boltzmann with a temperature (see
    :func:`~rewardshare.feedback.expert.expert_actions`).

    **Budget**: each label, each comparison (skipped or not) and each demonstrated step costs one query; a call that
    would overspend raises :class:`BudgetExhausted` and spends nothing. :meth:`true_reward` and :meth:`act` are free.

    Args:
        task: The task being taught.
        reward: ``"dense"`` or ``"sparse"``.
        noise: Standard deviation of the Gaussian label noise, >= 0.
        flip_prob: Probability in [0, 1] of flipping a label or a comparison (B-Pref's mistake).
        beta: Bradley-Terry rationality, >= 0; ``float("inf")`` means a perfectly rational teacher.
        seed: Seed of the teacher's RNG (noise, flips, choices, expert tie-breaking).
        budget: Total number of queries, or None for no limit.
        goal_reward: The sparse reward for reaching the goal (match the env's ``goal_reward``).
        step_cost: The sparse per-step cost (match the env's ``step_cost``).
        myopia: B-Pref's ``gamma`` in (0, 1]: step ``t`` of a segment weighs ``myopia**(L-1-t)``.
        equal: Returns closer than this (>= 0) are a tie.
        skip: Comparisons whose two returns are both below this are skipped; None never skips.

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
        myopia: float = 1.0,
        equal: float = 0.0,
        skip: float | None = None,
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
        self.myopia = check_myopia(myopia)
        self.equal = check_equal(equal)
        self.skip = check_skip(skip)
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
        self.expert = Expert(layout, self.goal, self._dist, self.next_table)
        #: float (H*W, 4): BFS distance after each action (inf where the goal cannot be reached); bool (H*W, 4):
        #: the actions on a shortest path to the goal (none on the goal itself)
        self.next_dist, self.optimal = self.expert.next_dist, self.expert.optimal
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
        return flat_cells(self.layout, name, value)

    def _flat_transitions(self, pos: Any, action: Any, next_pos: Any) -> tuple[np.ndarray, np.ndarray]:
        return judged_transitions(self.layout, self.next_table, pos, action, next_pos)

    def _reward_flat(self, s: np.ndarray, s2: np.ndarray) -> np.ndarray:
        return move_rewards(self.reward, self._dist.reshape(-1), s, s2, self._goal_index, self.goal_reward,
                            self.step_cost)

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
        return flipped_rewards(self.reward, r, self._dist.reshape(-1), s, s2, self._goal_index, self.goal_reward,
                               self.step_cost)

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

    def perceived_return(self, pos: Any, action: Any, next_pos: Any) -> np.ndarray:
        """The return the teacher compares: :func:`myopic_return` of the noiseless rewards (``myopia=1``: the
        :meth:`segment_return`); free. Arguments as :meth:`segment_return`; float64 ``(N,)``."""
        return myopic_return(self.true_reward(pos, action, next_pos), self.myopia)

    def preference_probability(self, return_a: np.ndarray, return_b: np.ndarray) -> np.ndarray:
        """Bradley-Terry probability that A is preferred: ``sigmoid(beta * (R_A - R_B))``; 0.5 on ties (equal returns
        or closer than ``equal``). With ``beta=inf`` this is 1, 0 or 0.5. Returns float64 of the broadcast shape."""
        diff = np.asarray(return_a, dtype=np.float64) - np.asarray(return_b, dtype=np.float64)
        return np.where(is_tie(diff, self.equal), TIE, bradley_terry(diff, self.beta))

    def prefer(
        self,
        pos_a: Any,
        action_a: Any,
        next_pos_a: Any,
        pos_b: Any,
        action_b: Any,
        next_pos_b: Any,
    ) -> np.ndarray:
        """Compare segment pairs; costs one query per pair, skipped or not (see the class docstring).

        Args:
            pos_a, next_pos_a: int ``(N, L, 2)`` cells of segments A; action_a: int ``(N, L)``.
            pos_b, next_pos_b: int ``(N, L, 2)`` cells of segments B; action_b: int ``(N, L)``.

        Returns:
            float32 ``(N,)``: 1.0 if the teacher prefers A, 0.0 if B, 0.5 for a tie, NaN (:data:`SKIPPED`) for a
            skipped pair (only with ``skip`` set).

        Raises:
            BudgetExhausted: If fewer than ``N`` queries are left.
            ValueError: On malformed segments or A and B of different shapes.
        """
        if np.shape(action_a) != np.shape(action_b) or np.ndim(action_a) != 2:
            raise ValueError(
                f"action_a {np.shape(action_a)} and action_b {np.shape(action_b)} must both have shape (N, L)"
            )
        ra = self.perceived_return(pos_a, action_a, next_pos_a)
        rb = self.perceived_return(pos_b, action_b, next_pos_b)
        n = ra.shape[0]
        self.spend(n)
        p = self.preference_probability(ra, rb)
        tie = is_tie(ra - rb, self.equal)
        # every pair draws its randoms, skipped or not, so that the defaults keep the stream (and labels) of old
        if math.isinf(self.beta):
            label = p
        else:
            label = np.where(tie, TIE, (self.rng.random(n) < p).astype(np.float64))
        if self.flip_prob > 0:
            flip = (self.rng.random(n) < self.flip_prob) & ~tie
            label = np.where(flip, 1.0 - label, label)
        label = np.where(is_skipped(ra, rb, self.skip), SKIPPED, label)
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
        check_expert_noise(epsilon, temperature)
        return self.expert.act(s, rng or self.rng, epsilon, temperature)

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
            ValueError: If ``start`` is the goal, a wall, outside the grid or cannot reach the goal, or on a bad
                ``max_steps``, ``epsilon`` or ``temperature``.
            BudgetExhausted: If the budget cannot pay for the episode's steps.
        """
        self._cells("start", np.asarray(start).reshape(1, 2))
        h, w = self._shape
        horizon = 4 * h * w if max_steps is None else max_steps
        pos, act, nxt = self.expert.episode(start, horizon, self.rng, epsilon, temperature)
        self.spend(len(act))
        done = (nxt == np.array(self.goal)).all(axis=1)
        return {"agent_pos": pos, "action": act, "next_agent_pos": nxt, "done": done,
                "return": float(self.true_reward(pos, act, nxt).sum())}

    # -- provenance ---------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """A JSON-ready description of the teacher (``beta=inf`` is written as the string ``"inf"``, ``skip=None``
        as null)."""
        return {
            "task": self.task.to_dict(),
            "reward": self.reward,
            "noise": self.noise,
            "flip_prob": self.flip_prob,
            "beta": "inf" if math.isinf(self.beta) else self.beta,
            "myopia": self.myopia,
            "equal": self.equal,
            "skip": self.skip,
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
        """A fresh teacher (nothing spent) from :meth:`config` output (older configs lack the B-Pref settings: they
        get the defaults, which are what those teachers did)."""
        keys = ("reward", "noise", "flip_prob", "seed", "budget", "goal_reward", "step_cost", "myopia", "equal", "skip")
        kwargs = {k: config[k] for k in keys if k in config}
        return cls(GoalTask.from_dict(config["task"]), beta=float(config.get("beta", "inf")), **kwargs)

    def __repr__(self) -> str:
        bpref = "" if (self.myopia, self.equal, self.skip) == (1.0, 0.0, None) else (
            f", myopia={self.myopia}, equal={self.equal}, skip={self.skip}")
        return (
            f"Teacher(task={self.task.id!r}, reward={self.reward!r}, noise={self.noise}, flip_prob={self.flip_prob}, "
            f"beta={self.beta}{bpref}, seed={self.seed}, budget={self.budget}, spent={self.spent})"
        )
