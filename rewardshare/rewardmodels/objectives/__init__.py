"""Training objectives: the label, preference and demonstration likelihoods, one module each, and their factory.

Kinds (formulas, with ``R`` the model's reward):

- ``"mse"`` (reward labels ``y``, :mod:`.labels`): ``mean_i (R(s_i, a_i, s'_i) - y_i)^2``.
- ``"bradley_terry"`` (segment preferences, :mod:`.preferences`): cross-entropy of
  ``sigmoid(sum_t R(A_i,t) - sum_t R(B_i,t))`` against ``p_i``, the probability that A is preferred (ties 0.5).
- ``"trex"`` (demonstrations ranked by ``demonstrator_noise``, :mod:`.preferences`): Bradley-Terry on snippet pairs
  of two episodes of one task, the less noisy one preferred (Brown et al. 2019).
- ``"maxent_irl"`` (demonstrations on a known finite grid, :mod:`.demonstrations`): ``-mean_t log pi_R(a_t | s_t)``
  with ``pi_R`` the soft-optimal policy under ``R``.

The kinds import only :mod:`.base` (the :class:`Objective` interface); this module imports the kinds, never the
other way round. A new kind is one module with an :class:`Objective` subclass, plus an entry in :func:`make_loss`.
"""

from __future__ import annotations

from typing import Any

from rewardshare.envs import env_from_metadata
from rewardshare.rewardmodels.objectives.base import Batch, Objective, RewardFn, call_reward, get_field
from rewardshare.rewardmodels.objectives.demonstrations import (
    MaxEntIRLObjective,
    SoftValues,
    TerminationLink,
    boltzmann_log_likelihood,
    default_iterations,
    demonstration_log_likelihood,
    greedy_policy,
    reward_table,
    soft_value_iteration,
)
from rewardshare.rewardmodels.objectives.labels import LabelObjective
from rewardshare.rewardmodels.objectives.preferences import PreferenceObjective, trex_pairs

LOSS_KINDS: tuple[str, ...] = ("mse", "bradley_terry", "trex", "maxent_irl")


def infer_kind(data: Any, env: Any = None) -> str:
    """The default loss for a dataset: labels -> ``"mse"``, preferences -> ``"bradley_terry"``, demonstrations ->
    ``"maxent_irl"`` when a grid env is given (or recorded in the data) and else ``"trex"``.

    Raises:
        ValueError: If the data is none of the three feedback kinds.
    """
    if isinstance(data, Objective):
        return data.kind
    has = lambda name: get_field(data, name, required=False) is not None  # noqa: E731
    if has("obs_a"):
        return "bradley_terry"
    if has("episode") and has("demonstrator_noise"):
        if env is not None or env_from_metadata(data) is not None:
            return "maxent_irl"
        return "trex"
    if has("label"):
        return "mse"
    raise ValueError(
        f"cannot tell the feedback kind of {type(data).__name__}: expected Transitions (label), Preferences "
        "(obs_a/obs_b/label) or Demonstrations (episode/demonstrator_noise)"
    )


def make_loss(kind: str, data: Any, **kwargs: Any) -> Objective:
    """Build the :class:`Objective` of ``kind`` over ``data``.

    Args:
        kind: ``"auto"`` (see :func:`infer_kind`) or one of :data:`LOSS_KINDS`.
        data: ``Transitions`` (mse), ``Preferences`` (bradley_terry), ``Demonstrations`` (trex, maxent_irl), a
            mapping of arrays with the same fields, or an :class:`Objective` (returned as is).
        **kwargs: Per kind. ``trex``: ``n_pairs`` (1000), ``segment_length`` (10), ``seed`` (0).
            ``maxent_irl``: ``env`` (a :class:`GridGoalEnv` with the data's observation mode), ``tasks``,
            ``gamma`` (0.9), ``iterations`` (None: until ``gamma**k < 1e-4``); see :class:`MaxEntIRLObjective`.
            ``env`` is accepted and ignored by the other kinds.

    Raises:
        ValueError: On an unknown kind, empty data, data of the wrong kind, or NaN/inf in the data.
        TypeError: On options the kind does not take.
    """
    if isinstance(data, Objective):
        if kind not in ("auto", data.kind):
            raise ValueError(f"loss={kind!r} does not match the given objective of kind {data.kind!r}")
        return data
    env = kwargs.pop("env", None)
    if kind == "auto":
        kind = infer_kind(data, env)
    if kind not in LOSS_KINDS:
        raise ValueError(f"loss={kind!r} is not allowed: use 'auto' or one of {LOSS_KINDS}")
    if kind in ("mse", "bradley_terry") and kwargs:
        raise TypeError(f"loss {kind!r} takes no options; got {sorted(kwargs)}")
    if kind == "mse":
        obj: Objective = LabelObjective.from_data(data)
    elif kind == "bradley_terry":
        obj = PreferenceObjective.from_data(data)
    elif kind == "trex":
        obj = PreferenceObjective.from_ranked_demonstrations(data, **kwargs)
    else:
        obj = MaxEntIRLObjective.from_data(data, env=env, **kwargs)
    if len(obj) == 0:
        raise ValueError(f"data is empty: {type(data).__name__} has no items to train the {kind!r} loss on")
    return obj


__all__ = [
    "LOSS_KINDS", "Batch", "LabelObjective", "MaxEntIRLObjective", "Objective", "PreferenceObjective", "RewardFn",
    "SoftValues", "TerminationLink", "boltzmann_log_likelihood", "call_reward", "default_iterations",
    "demonstration_log_likelihood", "greedy_policy", "infer_kind", "make_loss", "reward_table",
    "soft_value_iteration", "trex_pairs",
]

