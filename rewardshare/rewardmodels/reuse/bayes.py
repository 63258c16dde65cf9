"""The exact Bayes posterior over a task family's goal cells: the reference every few-shot result is compared with.

On our grids a task is a goal cell, and the simulated teacher's reward family is known (dense or sparse, its noise,
flips, rationality, the expert's epsilon / temperature). So for any feedback ``D`` the posterior over the goal is
computable exactly::

    p(g | D) ∝ p(g) prod_i p(d_i | g)

with one likelihood per feedback kind, each the teacher's own noise model (see :class:`~rewardshare.feedback.Teacher`):

- **labels** ``y`` of ``(s, a)``: with ``r = R_g(s, a)`` and ``r~`` its flipped value,
  ``p(y | g) = (1 - f) N(y; r, sigma^2) + f N(y; r~, sigma^2)`` (``sigma`` the label noise; a noiseless teacher is
  given a tiny ``sigma`` so the likelihood is an equality test);
- **preferences** between segments A and B: the teacher's B-Pref model
  (:func:`~rewardshare.feedback.preference_model.preference_outcome_probs`) on the perceived returns under ``g``
  (myopic with the teacher's ``myopia``): skipped if both are below ``skip``, a tie if they differ by less than
  ``equal`` (or not at all), else Bradley-Terry ``P(A) = sigmoid(beta Delta)`` (a step function for ``beta = inf``),
  flipped with probability ``f``. A pair in a dataset was not skipped, which is itself evidence (a goal under which
  it would have been skipped is ruled out); a label NaN is a skipped query, also evidence;
- **demonstrations**: each step's action under the teacher's expert (uniform over shortest-path actions, or
  Boltzmann ``P(a | s) ∝ exp(-(1 + d_g(T(s, a))) / temperature)``, the softmax of the optimal Q-values of a
  -1-per-step reward), mixed with a uniform action with probability ``epsilon``.

When the env is not absorbing, a transition's ``done`` flag says whether it entered the goal, which is part of the
data too (an episode that ends there reveals the goal).

The posterior-mean reward ``R_bar(s, a) = sum_g p(g | D) R_g(s, a)`` is the Bayes-optimal point estimate under squared
error; :meth:`GoalPosterior.reward` has the signature of :meth:`Teacher.true_reward`, so EPIC scores it like any model.
The posterior knows the teacher's reward family, which no learned method does: it is a lower bound on the feedback any
method needs, not a competitor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from rewardshare.envs.layouts import Cell, Layout
from rewardshare.envs.planner import N_ACTIONS
from rewardshare.envs.tasks import GoalTask
from rewardshare.feedback import Demonstrations, Preferences, Teacher, Transitions
from rewardshare.feedback.preference_model import myopic_return, outcome_index, preference_outcome_probs

#: Standard deviation given to a noiseless teacher's labels: labels are float32, the reward values small integers,
#: so a mismatch of 1 costs ~5e5 nats and a match nothing.
EXACT_SIGMA = 1e-3
#: Probability floor of an event the model says is impossible (a goal is all but ruled out, never NaN).
LOG_FLOOR = math.log(1e-12)


@dataclass(frozen=True)
class TeacherModel:
    """What the reference knows about the teacher: its reward family and noise (not the goal).

    Attributes:
        reward: ``"dense"`` or ``"sparse"``.
        noise: Label noise standard deviation.
        flip_prob: Probability of a flipped label or comparison.
        beta: Bradley-Terry rationality (``inf``: always prefers the better segment).
        myopia: B-Pref's myopia ``gamma``: step ``t`` of a segment weighs ``gamma**(L-1-t)``.
        equal: Perceived returns closer than this are a tie.
        skip: Comparisons whose perceived returns are both below this are skipped (None: never).
        goal_reward: Sparse goal reward.
        step_cost: Sparse step cost.
        absorbing_goal: The env's goal absorbs (``done`` is then never set and carries no information).
    """

    reward: str = "dense"
    noise: float = 0.0
    flip_prob: float = 0.0
    beta: float = math.inf
    goal_reward: float = 1.0
    step_cost: float = 0.0
    absorbing_goal: bool = False
    myopia: float = 1.0
    equal: float = 0.0
    skip: float | None = None

    def teacher_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`Teacher` for this model."""
        return {"reward": self.reward, "noise": self.noise, "flip_prob": self.flip_prob, "beta": self.beta,
                "goal_reward": self.goal_reward, "step_cost": self.step_cost, "myopia": self.myopia,
                "equal": self.equal, "skip": self.skip}

    def preference_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~rewardshare.feedback.preference_model.preference_outcome_probs`."""
        return {"beta": self.beta, "flip_prob": self.flip_prob, "equal": self.equal, "skip": self.skip}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TeacherModel:
        """The teacher model recorded in a feedback dataset's metadata (its first teacher).

        Raises:
            ValueError: If the metadata records no teacher.
        """
        teachers = metadata.get("teachers") or []
        if not teachers:
            raise ValueError("the dataset's metadata records no teacher: pass teacher=TeacherModel(...) explicitly")
        t = teachers[0]
        beta = t.get("beta", math.inf)
        return cls(
            reward=str(t.get("reward", "dense")),
            noise=float(t.get("noise", 0.0)),
            flip_prob=float(t.get("flip_prob", 0.0)),
            beta=math.inf if beta == "inf" else float(beta),
            goal_reward=float(t.get("goal_reward", 1.0)),
            step_cost=float(t.get("step_cost", 0.0)),
            absorbing_goal=bool(metadata.get("env_kwargs", {}).get("absorbing_goal", False)),
            myopia=float(t.get("myopia", 1.0)),
            equal=float(t.get("equal", 0.0)),
            skip=None if t.get("skip") is None else float(t["skip"]),
        )


class GoalPosterior:
    """The exact posterior over a layout's goal cells given any mix of labels, preferences and demonstrations.

    Args:
        layout: The family's layout.
        teacher: The teacher's reward family and noise.
        candidates: The goal cells the prior covers (default: every free cell).
        prior: Prior probabilities of ``candidates`` (default uniform).

    Attributes:
        candidates: ``(G, 2)`` int64 goal cells.
        rewards: float64 ``(G, H*W, 4)``: the teacher's noiseless reward of every (cell, action) under each goal.
        log_weights: float64 ``(G,)``: the normalised log posterior.

    Raises:
        ValueError: On an empty candidate list, a candidate that is not a free cell, or a bad prior.
    """

    def __init__(
        self,
        layout: Layout,
        teacher: TeacherModel | None = None,
        candidates: Sequence[Cell] | None = None,
        prior: Sequence[float] | None = None,
    ) -> None:
        self.layout = layout
        self.teacher = teacher or TeacherModel()
        cells = list(layout.free_cells) if candidates is None else [(int(r), int(c)) for r, c in candidates]
        if not cells:
            raise ValueError("candidates is empty: give at least one goal cell")
        bad = [c for c in cells if not (layout.in_bounds(c) and layout.is_free(c))]
        if bad:
            raise ValueError(f"candidates {bad[:3]} are not free cells of layout {layout.name!r}")
        self.candidates = np.asarray(cells, dtype=np.int64)
        teachers = [Teacher(GoalTask(layout, 0, cell), **self.teacher.teacher_kwargs()) for cell in cells]
        width = layout.width
        self.rewards = np.stack([t.true_reward_table().reshape(-1, N_ACTIONS) for t in teachers]).astype(np.float64)
        #: flat next cell of every (cell, action), shared by all goals (one layout)
        self.next_cell = np.asarray(teachers[0].next_table)
        #: float64 (G, H*W, 4): BFS distance after each action under each goal (inf when unreachable)
        self.next_dist = np.stack([t.next_dist for t in teachers])
        self.optimal = np.stack([t.optimal for t in teachers])
        self.goal_flat = self.candidates[:, 0] * width + self.candidates[:, 1]
        if prior is None:
            log_prior = np.full(len(cells), -math.log(len(cells)))
        else:
            p = np.asarray(prior, dtype=np.float64)
            if p.shape != (len(cells),) or np.any(p < 0) or not np.isfinite(p).all() or p.sum() <= 0:
                raise ValueError(f"prior of shape {p.shape} is not allowed: use {len(cells)} finite values >= 0")
            with np.errstate(divide="ignore"):
                log_prior = np.log(p / p.sum())
        self.log_prior = log_prior
        self.log_weights = log_prior.copy()

    # -- feedback ------------------------------------------------------------------------------------------------
    def _flat(self, cells: np.ndarray) -> np.ndarray:
        cells = np.asarray(cells, dtype=np.int64)
        return cells[..., 0] * self.layout.width + cells[..., 1]

    def _flipped(self, rewards: np.ndarray, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """The teacher's flipped label of ``(s, a)`` under each goal (dense: negated; sparse: goal reward toggled)."""
        if self.teacher.reward == "dense":
            return -rewards
        reached = self.next_cell[s, a][None, :] == self.goal_flat[:, None]
        at_goal = s[None, :] == self.goal_flat[:, None]
        base = np.where(at_goal, 0.0, -self.teacher.step_cost)
        return base + self.teacher.goal_reward * ~reached

    def _done_loglik(self, s: np.ndarray, a: np.ndarray, done: np.ndarray) -> np.ndarray:
        """``log p(done | s, a, g)``: in a non-absorbing env a transition is terminal iff it enters the goal."""
        if self.teacher.absorbing_goal:
            return np.zeros(len(self.candidates))
        enters = (self.next_cell[s, a][None, :] == self.goal_flat[:, None]) & (s[None, :] != self.goal_flat[:, None])
        agree = enters == np.asarray(done, dtype=bool)[None, :]
        return np.where(agree, 0.0, LOG_FLOOR).sum(axis=1)

    def label_outcomes(self, pos: Any, action: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the teacher may answer to label queries ``(s, a)`` under each goal (the model of
        :meth:`label_loglik`, for scoring queries before they are asked).

        Args:
            pos: int ``(N, 2)`` cells; action: int ``(N,)``.

        Returns:
            ``(values, probs, done)``: float64 ``(G, N, 2)`` the true and the flipped judgement, float64 ``(G, N, 2)``
            their probabilities ``(1 - f, f)`` (before the Gaussian noise), and bool ``(G, N)`` whether the
            transition ends the episode (entering the goal; never in an absorbing env).
        """
        s, a = self._flat(pos).reshape(-1), np.asarray(action, dtype=np.int64).reshape(-1)
        r = self.rewards[:, s, a]
        values = np.stack([r, self._flipped(r, s, a)], axis=2)
        f = self.teacher.flip_prob
        probs = np.broadcast_to(np.array([1.0 - f, f]), values.shape).copy()
        enters = (self.next_cell[s, a][None, :] == self.goal_flat[:, None]) & (s[None, :] != self.goal_flat[:, None])
        return values, probs, enters & (not self.teacher.absorbing_goal)

    def label_loglik(self, pos: Any, action: Any, label: Any, done: Any | None = None) -> np.ndarray:
        """``log p(labels | g)`` for every candidate goal.

        Args:
            pos: int ``(N, 2)`` cells; action: int ``(N,)``; label: float ``(N,)``; done: optional bool ``(N,)``.

        Returns:
            float64 ``(G,)``.
        """
        s, a = self._flat(pos).reshape(-1), np.asarray(action, dtype=np.int64).reshape(-1)
        y = np.asarray(label, dtype=np.float64).reshape(-1)
        r = self.rewards[:, s, a]  # (G, N)
        sigma = max(self.teacher.noise, EXACT_SIGMA)

        def log_normal(mean: np.ndarray) -> np.ndarray:
            return -0.5 * ((y[None, :] - mean) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))

        ll = log_normal(r)
        f = self.teacher.flip_prob
        if f > 0:
            ll = np.logaddexp(math.log1p(-f) + ll, math.log(f) + log_normal(self._flipped(r, s, a))) if f < 1 else (
                log_normal(self._flipped(r, s, a)))
        out = ll.sum(axis=1)
        if done is not None:
            out = out + self._done_loglik(s, a, done)
        return out

    def preference_outcomes(self, pos_a: Any, action_a: Any, pos_b: Any, action_b: Any) -> np.ndarray:
        """The probability of each comparison outcome under each goal: the teacher's preference model on the
        perceived (myopic) returns of the segments.

        Args:
            pos_a, pos_b: int ``(N, L, 2)``; action_a, action_b: int ``(N, L)``.

        Returns:
            float64 ``(G, N, 4)`` over :data:`~rewardshare.feedback.preference_model.PREFERENCE_OUTCOMES` (B, tie, A,
            skipped).
        """
        sa, aa = self._flat(pos_a), np.asarray(action_a, dtype=np.int64)
        sb, ab = self._flat(pos_b), np.asarray(action_b, dtype=np.int64)
        gamma = self.teacher.myopia
        ra = myopic_return(self.rewards[:, sa, aa], gamma)  # (G, N)
        rb = myopic_return(self.rewards[:, sb, ab], gamma)
        return preference_outcome_probs(ra, rb, **self.teacher.preference_kwargs())

    def preference_loglik(self, pos_a: Any, action_a: Any, pos_b: Any, action_b: Any, label: Any) -> np.ndarray:
        """``log p(preferences | g)`` (see the module docstring): each label's outcome probability under each goal.

        Args:
            pos_a, pos_b: int ``(N, L, 2)``; action_a, action_b: int ``(N, L)``; label: ``(N,)`` in {0, 0.5, 1} or
                NaN for a query the teacher skipped.

        Returns:
            float64 ``(G,)``.
        """
        probs = self.preference_outcomes(pos_a, action_a, pos_b, action_b)
        idx = outcome_index(np.asarray(label, dtype=np.float64).reshape(-1))
        p = np.take_along_axis(probs, np.maximum(idx, 0)[None, :, None], axis=2)[..., 0]
        p = np.where(idx[None, :] >= 0, p, 0.0)  # a label that is no outcome of the model (e.g. 0.3) is impossible
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(p), LOG_FLOOR).sum(axis=1)

    def demonstration_loglik(
        self, pos: Any, action: Any, done: Any | None = None, epsilon: Any = 0.0, temperature: Any = None
    ) -> np.ndarray:
        """``log p(demonstrated actions | g)`` under the teacher's expert (see the module docstring).

        Args:
            pos: int ``(T, 2)`` cells; action: int ``(T,)``; done: optional bool ``(T,)``.
            epsilon: The demonstrator's epsilon, scalar or ``(T,)``.
            temperature: None (greedy) or its Boltzmann temperature, scalar or ``(T,)``.

        Returns:
            float64 ``(G,)``.
        """
        s, a = self._flat(pos).reshape(-1), np.asarray(action, dtype=np.int64).reshape(-1)
        optimal = self.optimal[:, s, :]  # (G, T, 4)
        has_opt = optimal.any(axis=2, keepdims=True)
        greedy = np.where(has_opt, optimal / np.maximum(optimal.sum(axis=2, keepdims=True), 1), 1.0 / N_ACTIONS)
        policy = greedy
        if temperature is not None:
            temp = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (len(s),))
            soft = temp > 0
            if soft.any():
                logits = -(1.0 + self.next_dist[:, s, :]) / np.where(soft, temp, 1.0)[None, :, None]
                boltz = np.exp(logits - logsumexp(logits, axis=2, keepdims=True))
                boltz = np.where(has_opt, boltz, 1.0 / N_ACTIONS)
                policy = np.where(soft[None, :, None], boltz, greedy)
        eps = np.broadcast_to(np.asarray(epsilon, dtype=np.float64), (len(s),))[None, :]
        p = (1 - eps) * np.take_along_axis(policy, a[None, :, None], axis=2)[..., 0] + eps / N_ACTIONS
        with np.errstate(divide="ignore"):
            out = np.maximum(np.log(p), LOG_FLOOR).sum(axis=1)
        if done is not None:
            out = out + self._done_loglik(s, a, done)
        return out

    def loglik(self, data: Transitions | Preferences | Demonstrations) -> np.ndarray:
        """``log p(data | g)`` of a feedback dataset for every candidate goal (``(G,)``).

        Raises:
            TypeError: If ``data`` is not a feedback dataset.
        """
        if isinstance(data, Transitions):
            return self.label_loglik(data.agent_pos, data.action, data.label, data.done)
        if isinstance(data, Preferences):
            return self.preference_loglik(data.agent_pos_a, data.action_a, data.agent_pos_b, data.action_b,
                                          data.label)
        if isinstance(data, Demonstrations):
            kind = data.metadata.get("noise_kind", "epsilon")
            noise = np.asarray(data.demonstrator_noise, dtype=np.float64)[np.asarray(data.episode)]
            eps, temp = (noise, None) if kind == "epsilon" else (0.0, noise)
            return self.demonstration_loglik(data.agent_pos, data.action, data.done, eps, temp)
        raise TypeError(f"data of type {type(data).__name__} is not allowed: use Transitions, Preferences or "
                        "Demonstrations")

    def update(self, data: Transitions | Preferences | Demonstrations) -> GoalPosterior:
        """Condition on ``data`` (in place; feedback items are independent given the goal); returns ``self``."""
        return self.condition(self.loglik(data))

    def condition(self, loglik: np.ndarray) -> GoalPosterior:
        """Multiply in a likelihood given as ``log p(data | g)`` per candidate (e.g. from :meth:`label_loglik`);
        returns ``self``.

        Raises:
            ValueError: If ``loglik`` does not have one finite-or--inf value per candidate.
        """
        ll = np.asarray(loglik, dtype=np.float64)
        if ll.shape != self.log_weights.shape or np.isnan(ll).any():
            raise ValueError(f"loglik of shape {ll.shape} is not allowed: use {self.log_weights.shape[0]} values")
        self.log_weights = self.log_weights + ll
        self.log_weights = self.log_weights - logsumexp(self.log_weights)
        return self

    def reset(self) -> GoalPosterior:
        """Back to the prior; returns ``self``."""
        self.log_weights = self.log_prior.copy()
        return self

    # -- summaries -----------------------------------------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """float64 ``(G,)`` posterior probabilities of the candidates."""
        return np.exp(self.log_weights)

    def entropy(self) -> float:
        """Posterior entropy in nats (``log G`` under a uniform prior, ``0`` once the goal is known)."""
        w = self.weights
        return float(-(w[w > 0] * np.log(w[w > 0])).sum())

    def map_goal(self) -> Cell:
        """The most probable goal cell."""
        r, c = self.candidates[int(np.argmax(self.log_weights))]
        return int(r), int(c)

    def mean_table(self) -> np.ndarray:
        """The posterior-mean reward of every (cell, action): float64 ``(H, W, 4)`` (walls 0)."""
        return np.tensordot(self.weights, self.rewards, axes=1).reshape(self.layout.height, self.layout.width,
                                                                         N_ACTIONS)

    def reward(self, pos: Any, action: Any, next_pos: Any = None) -> np.ndarray:
        """The posterior-mean reward of transitions (the signature of :meth:`Teacher.true_reward`; like the teacher
        it judges the action, so ``next_pos`` is not read).

        Args:
            pos: int ``(..., 2)`` cells; action: int ``(...)``.

        Returns:
            float32 of ``action``'s shape.
        """
        table = np.tensordot(self.weights, self.rewards, axes=1)
        return table[self._flat(pos), np.asarray(action, dtype=np.int64)].astype(np.float32)
