"""The teacher's preference model, after B-Pref's scripted teacher (Lee et al. 2021), as samples and as probabilities.

A teacher compares segments A and B of length ``L`` through the returns it *perceives*,
``R = sum_t myopia**(L-1-t) r_t`` (:func:`myopic_return`: with ``myopia < 1`` later steps weigh more; ``1`` is the
plain sum), and then, in this order:

1. **skip**: if both returns are below ``skip`` the query is skipped: no label (:data:`SKIPPED`, NaN);
2. **equal**: if ``|R_A - R_B| < equal``, or the returns are equal, the label is a tie (:data:`TIE`, 0.5);
3. **rationality**: otherwise A is chosen with the Bradley-Terry probability ``sigmoid(beta (R_A - R_B))`` (always
   the better one for ``beta = inf``);
4. **mistake**: the choice is flipped with probability ``flip_prob`` (ties and skips are never flipped).

Unlike B-Pref, ``equal`` and ``skip`` read the same (myopic) returns as the choice, and are absolute rather than
relative to an episode's return: one perceived return per segment drives every step. The
:class:`~rewardshare.feedback.Teacher` samples labels from this model; :func:`preference_outcome_probs` gives the
probability of each outcome, which is what the exact posterior (:mod:`rewardshare.rewardmodels.reuse.bayes`) and the
query scores read, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Preference label of a tie (equal segment returns, or returns closer than the teacher's ``equal``).
TIE = 0.5
#: Preference "label" of a skipped query (both returns below the teacher's ``skip``): no label was given.
SKIPPED = float("nan")
#: The outcomes of a comparison, in the order of :func:`preference_outcome_probs`: B, tie, A, skipped.
PREFERENCE_OUTCOMES: tuple[float, ...] = (0.0, TIE, 1.0, SKIPPED)
#: Returns closer than this are equal (myopic returns are float sums; the plain returns of the grid are integers).
TIE_TOL = 1e-9


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_myopia(value: Any) -> float:
    """``value`` as a float if it is a valid ``myopia`` (in (0, 1]).

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    if not _is_number(value) or not 0 < value <= 1:
        raise ValueError(f"myopia={value!r} is not allowed: use a float in (0, 1] (1.0: no myopia)")
    return float(value)


def check_equal(value: Any) -> float:
    """``value`` as a float if it is a valid ``equal`` threshold (finite, >= 0).

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"equal={value!r} is not allowed: use a finite float >= 0 (0.0: only equal returns tie)")
    return float(value)


def check_skip(value: Any) -> float | None:
    """``value`` as a float (or None) if it is a valid ``skip`` threshold.

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    if value is not None and (not _is_number(value) or not math.isfinite(value)):
        raise ValueError(f"skip={value!r} is not allowed: use a finite float or None (never skip)")
    return None if value is None else float(value)


def myopic_return(rewards: Any, myopia: float = 1.0) -> np.ndarray:
    """A segment's return as a myopic teacher perceives it: ``sum_t myopia**(L-1-t) r_t`` (later steps weigh more).

    Args:
        rewards: ``(..., L)`` per-step rewards.
        myopia: ``gamma`` in (0, 1]; 1.0 is the plain sum.

    Returns:
        float64 ``(...)``.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if myopia == 1.0:
        return r.sum(axis=-1)
    weights = myopia ** np.arange(r.shape[-1] - 1, -1, -1, dtype=np.float64)
    return (r * weights).sum(axis=-1)


def is_tie(diff: np.ndarray, equal: float) -> np.ndarray:
    """Equal returns, or returns closer than ``equal`` (B-Pref's equal-preference threshold); bool of diff's shape."""
    gap = np.abs(diff)
    return (gap <= TIE_TOL) | (gap < equal)


def is_skipped(return_a: np.ndarray, return_b: np.ndarray, skip: float | None) -> np.ndarray:
    """Both returns below ``skip`` (B-Pref's skip threshold): the teacher gives no label. Bool, broadcast shape."""
    if skip is None:
        return np.zeros(np.broadcast_shapes(np.shape(return_a), np.shape(return_b)), dtype=bool)
    return np.maximum(return_a, return_b) < skip


def bradley_terry(diff: np.ndarray, beta: float) -> np.ndarray:
    """``P(A) = sigmoid(beta * diff)``; a step function for ``beta = inf`` (0.5 at 0). float64."""
    if math.isinf(beta):
        return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, TIE))
    return 0.5 * (1.0 + np.tanh(0.5 * np.where(diff == 0, 0.0, beta * diff)))  # numerically stable logistic


def preference_outcome_probs(
    return_a: Any,
    return_b: Any,
    *,
    beta: float = math.inf,
    flip_prob: float = 0.0,
    equal: float = 0.0,
    skip: float | None = None,
) -> np.ndarray:
    """The probability of each comparison outcome given the perceived returns (see the module docstring).

    Args:
        return_a, return_b: float ``(...)`` perceived returns (:func:`myopic_return`).
        beta, flip_prob, equal, skip: The teacher's settings (see :class:`~rewardshare.feedback.Teacher`).

    Returns:
        float64 ``(..., 4)``: probabilities of the outcomes :data:`PREFERENCE_OUTCOMES` (B, tie, A, skipped).
    """
    ra, rb = np.asarray(return_a, dtype=np.float64), np.asarray(return_b, dtype=np.float64)
    diff = ra - rb
    skipped = is_skipped(ra, rb, skip)
    tie = is_tie(diff, equal) & ~skipped
    p_a = bradley_terry(diff, beta)
    p_a = p_a * (1.0 - flip_prob) + (1.0 - p_a) * flip_prob
    choose = ~(tie | skipped)
    return np.stack([np.where(choose, 1.0 - p_a, 0.0), tie.astype(np.float64), np.where(choose, p_a, 0.0),
                     skipped.astype(np.float64)], axis=-1)


def outcome_index(label: Any) -> np.ndarray:
    """The index into :data:`PREFERENCE_OUTCOMES` of each label (0, 0.5, 1 or NaN); -1 for any other value."""
    y = np.asarray(label, dtype=np.float64)
    return np.select([y == 0.0, y == TIE, y == 1.0, np.isnan(y)], [0, 1, 2, 3], default=-1)
