"""Choosing the next query from a feedback pool: uniform, disagreement, information gain.

A learner that may choose what to ask gets far more from each query than one handed a random sample. Three pieces:

- **Pools** of candidate queries: :class:`LabelPool` (``(cell, action)`` pairs, e.g. every pair of the grid,
  :meth:`LabelPool.grid`) and :class:`PreferencePool` (pairs of segments, e.g. :meth:`PreferencePool.random`).
- **Beliefs** about the task: a weighted set of hypotheses ``m``, each predicting the teacher's answer to any query.
  :class:`GoalBelief` wraps the exact posterior over goal cells (:class:`~.bayes.GoalPosterior`: hypotheses are the
  goals, answers follow the teacher's own noise model); :class:`LatentBelief` wraps a pre-trained
  :class:`~.latent.LatentTask` (hypotheses are latent modes ``z_m``, from the source tasks' latents before any data and
  from :meth:`~.latent.LatentTask.infer` after it; a label is ``N(R(s, a, z_m), sigma^2)`` with the model's own
  noise variance, a preference Bradley-Terry on the modes' returns).
- **Strategies** (:func:`make_strategy`) score every candidate and pick the best (ties broken at random by a seeded
  generator): ``"uniform"`` (every candidate scores the same: a seeded random choice), ``"disagreement"`` (the
  weighted variance across hypotheses of the predicted label, or of the predicted preference ``P(A) + P(tie) / 2``,
  skips counting as indifference) and ``"information_gain"`` (the expected information gain about the hypothesis,
  ``I(y; m) = H[y] - E_m H[y | m]``).

Information gain is exact for discrete answers (preferences: B, tie, A, skipped; noiseless labels: the few reward
values, with the ``done`` flag the env reports as part of the answer). For noisy labels the answer is a Gaussian
mixture, ``p(y | m) = sum_k p_mk N(y; v_mk, sigma^2)``; its entropies are integrated by Gauss-Hermite quadrature
around every component (:data:`QUADRATURE_NODES` nodes each), which is exact for a single Gaussian and within
~1e-5 nats of a fine-grid integral for the mixtures tried (random weights, means and widths). For the latent
posterior the hypotheses are its modes, so the figure is the information about *which mode*, a mixture
approximation of the information about ``z``.

:func:`active_feedback` runs the loop: choose, ask the teacher (one query, charged to its budget), condition the
belief, repeat; it returns a proper :class:`~rewardshare.feedback.Transitions` or
:class:`~rewardshare.feedback.Preferences` (metadata records the strategy and the chosen pool indices), so any method
can then learn from actively chosen feedback. A skipped comparison is charged, conditions the belief (the skip is
information) and is left out of the dataset.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import logsumexp

from rewardshare.envs.tasks import GoalTask
from rewardshare.feedback import CollectionOptions, EnvOptions, Preferences, Teacher, Transitions
from rewardshare.feedback.collection.rollouts import group_by_layout, make_metadata
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior
from rewardshare.rewardmodels.reuse.latent import LatentTask
from rewardshare.rewardmodels.reuse.query_beliefs import Belief, GoalBelief, LabelPredictive, LatentBelief
from rewardshare.rewardmodels.reuse.query_pools import LabelPool, Pool, PreferencePool

STRATEGIES: tuple[str, ...] = ("uniform", "disagreement", "information_gain")
#: Gauss-Hermite nodes per mixture component when integrating the entropy of a noisy label.
QUADRATURE_NODES = 32
#: Label answers are mixed over their distinct (value, done) pairs when there are at most this many (the exact
#: posterior's few reward values), else over every hypothesis' components (a latent model's continuous predictions).
MAX_MERGED = 64
#: Candidates whose scores are within this (relative) of the best are tied; the tie is broken at random.
SCORE_TOL = 1e-9


# ------------------------------------------------------------------------------------------------------ scores
def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=axis)


def discrete_information_gain(weights: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``I(y; m) = H[sum_m w_m p(y | m)] - sum_m w_m H[p(y | m)]`` for discrete answers, in nats.

    Args:
        weights: float ``(M,)`` hypothesis probabilities.
        probs: float ``(M, N, O)`` each hypothesis' answer distribution for ``N`` queries over ``O`` outcomes.

    Returns:
        float64 ``(N,)``, >= 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    marginal = np.tensordot(w, p, axes=1)  # (N, O)
    return np.maximum(_entropy(marginal) - np.tensordot(w, _entropy(p), axes=1), 0.0)


def mixture_entropy(weights: np.ndarray, means: np.ndarray, groups: np.ndarray, sigma: float) -> np.ndarray:
    """Entropy (nats) of ``(y, d)`` with ``p(y, d) = sum_{c: group_c = d} w_c N(y; mu_c, sigma^2)``, per row.

    The expectation over each component is taken by Gauss-Hermite quadrature (:data:`QUADRATURE_NODES` nodes):
    exact for one Gaussian, within ~1e-5 nats of a fine-grid integral for mixtures.

    Args:
        weights: float ``(N, C)`` component weights (each row sums to 1).
        means: float ``(N, C)`` component means.
        groups: int ``(N, C)`` the discrete part ``d`` of each component.
        sigma: Standard deviation > 0.

    Returns:
        float64 ``(N,)``.
    """
    x, wq = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    wq = wq / math.sqrt(2.0 * math.pi)  # E_{x ~ N(0, 1)} f(x) ~ sum_q wq f(x_q)
    w, mu = np.asarray(weights, dtype=np.float64), np.asarray(means, dtype=np.float64)
    y = mu[:, :, None] + sigma * x[None, None, :]  # (N, C, Q): nodes around every component
    z = (y[:, :, :, None] - mu[:, None, None, :]) / sigma  # (N, C, Q, C')
    same = np.asarray(groups)[:, :, None, None] == np.asarray(groups)[:, None, None, :]
    with np.errstate(divide="ignore"):
        log_w = np.where(same & (w[:, None, None, :] > 0), np.log(w)[:, None, None, :], -np.inf)
    log_p = logsumexp(log_w - 0.5 * z**2, axis=3) - math.log(sigma * math.sqrt(2.0 * math.pi))  # (N, C, Q)
    expect = (log_p * wq).sum(axis=2)  # (N, C): E_{y ~ component c} log p(y, d_c)
    expect = np.where(w > 0, expect, 0.0)  # a component of weight 0 contributes nothing (its log p may be -inf)
    return -(w * expect).sum(axis=1)


def _merged(values: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components with the same (value, done) merged: ``(codes (..., K) into uniques, unique values, unique done)``."""
    key = np.round(values, 6) * 2.0 + done  # values are spaced far more than 1e-6 apart, done is 0/1
    uniq, codes = np.unique(key.reshape(-1), return_inverse=True)
    first = np.zeros(len(uniq), dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    return codes.reshape(key.shape), values.reshape(-1)[first], done.reshape(-1)[first]


def _distinct_rows_entropy(weights: np.ndarray, means: np.ndarray, done: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`mixture_entropy` of each row, computed once per distinct row (the exact posterior's (goal, query)
    answer distributions take a handful of distinct forms)."""
    rows = np.concatenate([weights, means, done.astype(np.float64)], axis=1)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    k = weights.shape[1]
    h = mixture_entropy(uniq[:, :k], uniq[:, k:2 * k], uniq[:, 2 * k:].astype(np.int64), sigma)
    return h[inverse.reshape(-1)]


def label_information_gain(weights: np.ndarray, predictive: LabelPredictive) -> np.ndarray:
    """Expected information gain ``I(y, done; m)`` of label queries, in nats (see the module docstring).

    Args:
        weights: float ``(M,)`` hypothesis probabilities.
        predictive: Each hypothesis' answer distribution for the ``N`` queries.

    Returns:
        float64 ``(N,)``, >= 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    m, n, k = predictive.values.shape
    keep = w > 0  # hypotheses ruled out add nothing (and cost time)
    w, values = w[keep] / w[keep].sum(), predictive.values[keep]
    probs, done = predictive.probs[keep], predictive.done[keep]
    codes, uniq_values, uniq_done = _merged(values, done)
    per = np.zeros((len(w), n, len(uniq_values)))  # p(answer u | m, query)
    np.add.at(per, (np.arange(len(w))[:, None, None], np.arange(n)[None, :, None], codes), probs)
    if predictive.sigma <= 0:
        return discrete_information_gain(w, per)
    groups = uniq_done.astype(np.int64)
    if len(uniq_values) <= MAX_MERGED:  # few distinct answers (the exact posterior): mix over them
        marginal = np.tensordot(w, per, axes=1)  # (N, U)
        h_y = mixture_entropy(marginal, np.broadcast_to(uniq_values, marginal.shape),
                              np.broadcast_to(groups, marginal.shape), predictive.sigma)
    else:  # continuous predictions (a latent model): every hypothesis' components
        comp_w = (w[:, None, None] * probs).transpose(1, 0, 2).reshape(n, -1)
        h_y = mixture_entropy(comp_w, values.transpose(1, 0, 2).reshape(n, -1),
                              done.transpose(1, 0, 2).reshape(n, -1).astype(np.int64), predictive.sigma)
    h_cond = _distinct_rows_entropy(probs.reshape(-1, k), values.reshape(-1, k), done.reshape(-1, k),
                                    predictive.sigma).reshape(len(w), n)
    return np.maximum(h_y - w @ h_cond, 0.0)


def _weighted_variance(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    mean = np.tensordot(weights, values, axes=1)
    return np.tensordot(weights, (values - mean[None]) ** 2, axes=1)


class QueryStrategy(ABC):
    """Scores candidate queries under a belief; :meth:`select` picks the best available one."""

    name: ClassVar[str] = ""

    @abstractmethod
    def scores(self, belief: Belief, pool: Pool, index: np.ndarray) -> np.ndarray:
        """float64 scores of the candidates ``index`` of ``pool`` (higher: more worth asking)."""

    def select(self, belief: Belief, pool: Pool, available: np.ndarray, rng: np.random.Generator) -> int:
        """The pool index of the next query among the ``available`` (bool ``(N,)``) candidates, ties broken by
        ``rng``.

        Raises:
            ValueError: If no candidate is available.
        """
        index = np.flatnonzero(available)
        if not index.size:
            raise ValueError("no candidate query is left in the pool: give a larger pool or allow repeats")
        s = np.asarray(self.scores(belief, pool, index), dtype=np.float64)
        best = s.max()
        tied = index[s >= best - SCORE_TOL * max(1.0, abs(best))]
        return int(rng.choice(tied))


class Uniform(QueryStrategy):
    """Every candidate scores the same: a seeded uniform choice among those left."""

    name = "uniform"

    def scores(self, belief: Belief, pool: Pool, index: np.ndarray) -> np.ndarray:
        return np.zeros(len(index))


class Disagreement(QueryStrategy):
    """The weighted variance across hypotheses of the predicted label (or preference ``P(A) + P(tie) / 2 +
    P(skip) / 2``)."""

    name = "disagreement"

    def scores(self, belief: Belief, pool: Pool, index: np.ndarray) -> np.ndarray:
        w = belief.weights
        if isinstance(pool, LabelPool):
            return _weighted_variance(w, belief.label_predictive(pool.pos[index], pool.action[index]).mean)
        probs = belief.preference_predictive(pool, index)
        return _weighted_variance(w, probs[..., 2] + 0.5 * (probs[..., 1] + probs[..., 3]))


class InformationGain(QueryStrategy):
    """The expected information gain about the hypothesis, ``H[y] - E_m H[y | m]`` (see the module docstring)."""

    name = "information_gain"

    def scores(self, belief: Belief, pool: Pool, index: np.ndarray) -> np.ndarray:
        if isinstance(pool, LabelPool):
            return label_information_gain(belief.weights, belief.label_predictive(pool.pos[index], pool.action[index]))
        return discrete_information_gain(belief.weights, belief.preference_predictive(pool, index))


_STRATEGIES: dict[str, type[QueryStrategy]] = {cls.name: cls for cls in (Uniform, Disagreement, InformationGain)}


def make_strategy(name: str | QueryStrategy) -> QueryStrategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES`); a :class:`QueryStrategy` is returned as is.

    Raises:
        ValueError: On an unknown name.
    """
    if isinstance(name, QueryStrategy):
        return name
    if name not in _STRATEGIES:
        raise ValueError(f"strategy={name!r} is not allowed: use one of {STRATEGIES} or a QueryStrategy")
    return _STRATEGIES[name]()


# ------------------------------------------------------------------------------------------------------ the loop
def as_belief(posterior_or_method: Any, task: GoalTask | None = None, seed: int = 0) -> Belief:
    """A :class:`Belief` from a belief, a :class:`~.bayes.GoalPosterior` or a pre-trained
    :class:`~.latent.LatentTask` (which needs the ``task`` whose env emits the observations).

    Raises:
        TypeError: On anything else.
    """
    if isinstance(posterior_or_method, Belief):
        return posterior_or_method
    if isinstance(posterior_or_method, GoalPosterior):
        return GoalBelief(posterior_or_method)
    if isinstance(posterior_or_method, LatentTask):
        if task is None:
            raise TypeError("a LatentTask needs the task whose env emits the observations: pass task=...")
        return LatentBelief(posterior_or_method, task, seed=seed)
    raise TypeError(f"posterior_or_method={posterior_or_method!r} is not allowed: use a Belief, a GoalPosterior or a "
                    "pre-trained LatentTask")


def active_feedback(
    posterior_or_method: Belief | GoalPosterior | LatentTask,
    teacher: Teacher,
    pool: Pool,
    n: int,
    strategy: str | QueryStrategy = "information_gain",
    *,
    seed: int = 0,
    replace: bool = False,
    env: EnvOptions | None = None,
    on_query: Callable[[int, Belief], Any] | None = None,
) -> Transitions | Preferences:
    """Ask ``teacher`` ``n`` queries chosen one at a time from ``pool``, conditioning the belief after each.

    Args:
        posterior_or_method: The belief to query with (a :class:`GoalPosterior` is conditioned in place; a
            :class:`LatentTask` gets a :class:`LatentBelief` over the teacher's task env).
        teacher: Answers the queries; each one is charged to its budget.
        pool: The candidates (:class:`LabelPool` for labels, :class:`PreferencePool` for comparisons).
        n: Number of queries, >= 1 (<= the pool's size unless ``replace``).
        strategy: A name from :data:`STRATEGIES` or a :class:`QueryStrategy`.
        seed: Seeds the tie-breaking (and the uniform choice).
        replace: Allow asking the same candidate again (useful with a noisy teacher).
        env: The env whose observations and ``done`` flags the dataset records (default :class:`EnvOptions`).
        on_query: Called after every answer with ``(queries asked so far, belief)``, e.g. to score the belief.

    Returns:
        The answered queries as a :class:`Transitions` (labels) or :class:`Preferences` (comparisons; skipped
        ones left out) whose metadata holds the teacher, the strategy, the chosen pool indices, the number of
        skipped queries and the budget spent.

    Raises:
        ValueError: On a bad ``n`` or ``strategy``.
        TypeError: On a pool, teacher or belief of the wrong type.
        BudgetExhausted: When the teacher's budget runs out (the queries before are lost with the exception).
    """
    if not isinstance(teacher, Teacher):
        raise TypeError(f"teacher={teacher!r} is not allowed: use a rewardshare.feedback.Teacher")
    if not isinstance(pool, (LabelPool, PreferencePool)):
        raise TypeError(f"pool={pool!r} is not allowed: use a LabelPool or a PreferencePool")
    limit = math.inf if replace else len(pool)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= limit:
        raise ValueError(f"n={n!r} is not allowed: use an int in 1..{limit} (the pool has {len(pool)} candidates"
                         f"{'' if replace else '; pass replace=True to ask one more than once'})")
    chooser = make_strategy(strategy)
    belief = as_belief(posterior_or_method, teacher.task, seed)
    env = env or EnvOptions()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    available = np.ones(len(pool), dtype=bool)
    spent_before = teacher.spent
    w = teacher.layout.width
    goal = teacher.goal[0] * w + teacher.goal[1]
    chosen, answers = [], []
    for step in range(int(n)):
        i = chooser.select(belief, pool, available, rng)
        if not replace:
            available[i] = False
        if isinstance(pool, LabelPool):
            s = pool.pos[i : i + 1] @ np.array([w, 1])
            s2 = teacher.next_table[s, pool.action[i : i + 1]]
            label = teacher.label(pool.pos[i : i + 1], pool.action[i : i + 1], np.stack(np.divmod(s2, w), axis=1))
            done = (s2 == goal) & (s != goal) & (not env.absorbing_goal)  # the env ends the episode there
            belief.observe_labels(pool.pos[i : i + 1], pool.action[i : i + 1], label, done)
        else:
            idx = np.array([i])
            label = teacher.prefer(*_segment_args(pool, idx, teacher))
            belief.observe_preferences(pool, idx, label)
        chosen.append(i)
        answers.append(float(label[0]))
        if on_query is not None:
            on_query(step + 1, belief)
    return _dataset(pool, teacher, np.array(chosen), np.array(answers), env, chooser.name, seed,
                    teacher.spent - spent_before)


def _segment_args(pool: PreferencePool, idx: np.ndarray, teacher: Teacher) -> list[np.ndarray]:
    out = []
    for side in ("a", "b"):
        pos, action = getattr(pool, f"pos_{side}")[idx], getattr(pool, f"action_{side}")[idx]
        nxt = teacher.next_table[pos[..., 0] * teacher.layout.width + pos[..., 1], action]
        out += [pos, action, np.stack(np.divmod(nxt, teacher.layout.width), axis=-1)]
    return out


def _dataset(
    pool: Pool, teacher: Teacher, chosen: np.ndarray, answers: np.ndarray, env: EnvOptions, strategy: str, seed: int,
    spent: int,
) -> Transitions | Preferences:
    """The answered queries as a dataset of the pool's kind, with the env's observations and done flags."""
    group = group_by_layout([teacher], env.env_kwargs())[0]
    w = teacher.layout.width
    goal = int(group.goal_cells[0])
    skipped = np.isnan(answers)
    meta_more = {"query_strategy": strategy, "query_pool": {"kind": pool.kind, "size": len(pool)},
                 "query_indices": chosen.tolist(), "skipped": int(skipped.sum())}
    meta = make_metadata(pool.kind if pool.kind == "preferences" else "transitions", [teacher], {"active": 1.0}, seed,
                         env, CollectionOptions(), spent, **meta_more)
    task_id = np.full(int((~skipped).sum()), teacher.task.id)
    if isinstance(pool, LabelPool):
        s = pool.pos[chosen] @ np.array([w, 1])
        s2 = teacher.next_table[s, pool.action[chosen]]
        fields = group.step_fields(0, s, pool.action[chosen], s2)
        done = (s2 == goal) & (s != goal) & (not env.absorbing_goal)
        return Transitions(metadata=meta, **fields, done=done, label=answers.astype(np.float32), task_id=task_id)
    keep = chosen[~skipped]
    sides: dict[str, np.ndarray] = {}
    for side in ("a", "b"):
        pos, action = getattr(pool, f"pos_{side}")[keep], getattr(pool, f"action_{side}")[keep]
        s = pos[..., 0] * w + pos[..., 1]
        s2 = teacher.next_table[s, action]
        fields = group.step_fields(0, s, action, s2)
        # as collected preferences: the step into the goal and steps on it are done in a terminating env
        fields["done"] = ((s2 == goal) | (s == goal)) & (not env.absorbing_goal)
        sides.update({f"{key}_{side}": value for key, value in fields.items()})
    return Preferences(metadata=meta, **sides, label=answers[~skipped].astype(np.float32), task_id=task_id)


__all__: Sequence[str] = [
    "QUADRATURE_NODES", "STRATEGIES", "Belief", "Disagreement", "GoalBelief", "InformationGain", "LabelPool",
    "LabelPredictive", "LatentBelief", "PreferencePool", "QueryStrategy", "Uniform", "active_feedback", "as_belief",
    "discrete_information_gain", "label_information_gain", "make_strategy",
    "mixture_entropy",
]
