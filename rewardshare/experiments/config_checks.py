"""How a learning-curve config is checked: every value against its field's type (as JSON or ``--set`` delivers it),
then every field's range or allowed values, and how the fields fit together.

Each check raises :class:`~rewardshare.errors.InvalidArgumentError` naming the field, the bad value and what is
allowed, so a bad ``--set`` is refused before anything runs. :class:`~rewardshare.experiments.config.BenchConfig`
calls :func:`check_types` and :func:`check_values` on construction.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments.names import (
    ALGOS,
    FEEDBACK_KINDS,
    METHODS,
    POSTERIOR_METHODS,
    UNCERTAINTY_VARIANTS,
    UNTRAINED_METHODS,
    split_variant,
)

# The checks read a config.BenchConfig through its fields: importing it, even for annotations only, would close a
# cycle with config.py, which calls them from BenchConfig.__post_init__.
BenchConfig = Any


def fits(value: Any, annotation: str) -> bool:
    """Whether ``value`` (as read from JSON or ``--set``) fits a field annotation written as a string.

    Args:
        value: The value.
        annotation: ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"tuple[X, ...]"``, or any of them
            ``+ " | None"``.

    Raises:
        TypeError: On an annotation with no checker (a bug in the config, not bad input).
    """
    if annotation.endswith(" | None"):
        return value is None or fits(value, annotation.removesuffix(" | None"))
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        inner = annotation[len("tuple["):-len(", ...]")]
        return isinstance(value, (list, tuple)) and all(fits(v, inner) for v in value)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    raise TypeError(f"BenchConfig annotation {annotation!r} has no checker: add one to fits")


def describe(annotation: str) -> str:
    """How to write a value of an annotation, for messages (``--set FIELD=VALUE`` takes JSON)."""
    if annotation.endswith(" | None"):
        return describe(annotation.removesuffix(" | None")) + " or null"
    if annotation.startswith("tuple["):
        inner = annotation[len("tuple["):-len(", ...]")]
        return {"int": "a list of ints, e.g. [4, 16]", "float": "a list of numbers, e.g. [0.001, 0.01]",
                "str": 'a list of strings, e.g. ["ppo"]'}.get(inner, f"a list of {inner}")
    return {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string"}[annotation]


def check_types(config: BenchConfig) -> None:
    """Check every field's value against its annotation.

    Runs first: a string where a list belongs would otherwise be split into characters.

    Raises:
        InvalidArgumentError: Naming the field, the value and the type allowed.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not fits(value, str(f.type)):
            raise InvalidArgumentError(f"{f.name}={value!r} is not allowed: use {describe(str(f.type))}")


def _refuse(name: str, value: Any, allowed: str) -> None:
    raise InvalidArgumentError(f"{name}={value!r} is not allowed: use {allowed}")


def _is_int(x: Any, low: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _check_tasks(c: BenchConfig) -> None:
    """The task family, its split and the observation: names from the envs and teacher, seeds, fractions."""
    from rewardshare.envs import OBS_MODES, SUBSETS
    from rewardshare.envs.layouts import LAYOUT_NAMES
    from rewardshare.feedback.teacher import REWARD_KINDS

    for name, allowed in (("layout", LAYOUT_NAMES), ("subset", SUBSETS), ("obs_mode", OBS_MODES),
                          ("teacher_reward", REWARD_KINDS)):
        if getattr(c, name) not in allowed:
            _refuse(name, getattr(c, name), f"one of {allowed}")
    if not 0.0 < c.held_out_fraction < 1.0:
        _refuse("held_out_fraction", c.held_out_fraction, "a float in (0, 1)")
    for name in ("layout_seed", "split_seed", "eval_task_seed", "validation_seed", "pretrain_seed"):
        if getattr(c, name) < 0:
            _refuse(name, getattr(c, name), "an int >= 0")
    if c.n_validation_tasks < 1:
        _refuse("n_validation_tasks", c.n_validation_tasks, "an int >= 1")


def _check_sizes(c: BenchConfig) -> None:
    """Counts and steps that must be positive, and the numbers that must be finite."""
    for name in ("size", "n_eval_tasks", "source_budget", "pretrain_steps", "maml_iterations", "validation_pool",
                 "maml_support_size", "maml_query_size", "maml_inner_steps", "max_prior_tasks",
                 "total_timesteps", "eval_every", "eval_episodes", "irl_iterations"):
        if not _is_int(getattr(c, name), 1):
            _refuse(name, getattr(c, name), "an int >= 1")
    for name in ("n_envs", "max_steps"):
        if getattr(c, name) is not None and not _is_int(getattr(c, name), 1):
            _refuse(name, getattr(c, name), "an int >= 1")
    if not math.isfinite(c.maml_inner_lr) or not math.isfinite(c.teacher_noise):
        raise InvalidArgumentError("maml_inner_lr and teacher_noise are not allowed to be NaN or infinite")
    if not c.maml_inner_lr > 0:
        _refuse("maml_inner_lr", c.maml_inner_lr, "a float > 0")
    if c.teacher_noise < 0:
        _refuse("teacher_noise", c.teacher_noise, "a float >= 0")
    if not 0.0 < c.success_threshold <= 1.0:
        _refuse("success_threshold", c.success_threshold, "a float in (0, 1]")
    if c.eval_every > c.total_timesteps:
        _refuse("eval_every", c.eval_every, f"at most total_timesteps={c.total_timesteps}")


def _check_adaptation(c: BenchConfig) -> None:
    """The candidate adaptation settings and the MAML batch sizes."""
    for name in ("adapt_steps", "selection_seeds"):
        v = getattr(c, name)
        if v is not None and (not v or not all(_is_int(x, 0) for x in v)):
            _refuse(name, v, "a non-empty tuple of ints >= 0")
    for name in ("adapt_lrs", "prior_weights"):
        v = getattr(c, name)
        if v is not None and (not v or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0
                                           for x in v)):
            _refuse(name, v, "None or a non-empty tuple of numbers > 0")
    if c.reuse_methods and c.maml_support_size + c.maml_query_size > c.source_budget:
        raise InvalidArgumentError(
            f"source_budget={c.source_budget} is not allowed: MAML needs maml_support_size + maml_query_size = "
            f"{c.maml_support_size + c.maml_query_size} items per source task"
        )


def _check_runs(c: BenchConfig) -> None:
    """Methods, algorithms, feedback, seeds and the target budgets ``ks`` / ``rl_ks`` (0 = zero-shot)."""
    if not c.methods or len(set(c.methods)) != len(c.methods) or any(m not in METHODS for m in c.methods):
        _refuse("methods", c.methods, f"distinct names from {METHODS}")
    if not c.algos or len(set(c.algos)) != len(c.algos) or any(a not in ALGOS for a in c.algos):
        _refuse("algos", c.algos, f"distinct names from {ALGOS}")
    if c.feedback not in FEEDBACK_KINDS:
        _refuse("feedback", c.feedback, f"one of {FEEDBACK_KINDS}")
    if not c.seeds or len(set(c.seeds)) != len(c.seeds) or any(s < 0 for s in c.seeds):
        _refuse("seeds", c.seeds, "distinct ints >= 0")
    if not c.ks or not all(_is_int(k, 0) for k in c.ks):
        _refuse("ks", c.ks, "ints >= 0 (0 = zero-shot: no target feedback)")
    if list(c.ks) != sorted(set(c.ks)):
        _refuse("ks", c.ks, "distinct ints in increasing order")
    if 0 in c.ks and c.reuse_methods and all(m in UNTRAINED_METHODS for m in c.reuse_methods):
        raise InvalidArgumentError(
            f"ks={c.ks!r} is not allowed with methods={c.methods!r}: k=0 (zero-shot) needs a pre-trained reuse "
            f"method, and {', '.join(repr(m) for m in UNTRAINED_METHODS)} cannot predict without target feedback "
            "(it is skipped at k=0); add a pre-trained method such as 'transfer', or drop 0 from ks"
        )
    if any(k not in c.ks for k in c.rl_ks):
        raise InvalidArgumentError(f"rl_ks={c.rl_ks!r} is not allowed: every rl k must be one of ks={c.ks}")
    if c.reuse_methods and not c.rl_ks:
        raise InvalidArgumentError("rl_ks=() is not allowed while reuse methods are compared: give at least one k")
    if c.validation_pool < max(c.ks):
        _refuse("validation_pool", c.validation_pool, f"at least max(ks)={max(c.ks)}")


def _check_uncertainty(c: BenchConfig) -> None:
    """The reward variants agents are trained on, the pessimism, the scratch ensemble and the collapse threshold."""
    v = c.reward_uncertainty
    order = [x for x in UNCERTAINTY_VARIANTS if x in v]
    if not v or len(set(v)) != len(v) or any(x not in UNCERTAINTY_VARIANTS for x in v) or "none" not in v or (
        list(v) != order
    ):
        _refuse("reward_uncertainty", v, f"distinct names from {UNCERTAINTY_VARIANTS} in that order, including "
                "'none' (the plain reward every variant is compared with)")
    if len(v) > 1 and not any(m in POSTERIOR_METHODS for m in c.methods):
        raise InvalidArgumentError(
            f"reward_uncertainty={v!r} is not allowed with methods={c.methods!r}: the variants but 'none' need a "
            f"method whose reward has a posterior, one of {tuple(POSTERIOR_METHODS)}; add one or use ('none',)"
        )
    beta = c.pessimism_beta
    if not (math.isfinite(beta) and beta >= 0):
        _refuse("pessimism_beta", beta, "a finite float >= 0 (the reward is mean - beta * std)")
    if beta != 1.0 and not any(split_variant(x)[0] == "pessimistic" for x in v):
        raise InvalidArgumentError(
            f"pessimism_beta={beta!r} is only read with 'pessimistic' in reward_uncertainty (it is {v!r}): add "
            "'pessimistic' or leave pessimism_beta at 1.0"
        )
    if not _is_int(c.ensemble_size, 2):
        _refuse("ensemble_size", c.ensemble_size, "an int >= 2 (a posterior's std needs two members)")
    if not (math.isfinite(c.collapse_drop) and 0.0 < c.collapse_drop <= 1.0):
        _refuse("collapse_drop", c.collapse_drop, "a float in (0, 1] (a drop of the success rate)")


def check_values(config: BenchConfig) -> None:
    """Check every field's range or allowed values and how the fields fit together (types already checked).

    Raises:
        InvalidArgumentError: Naming the field, the bad value and what is allowed (a ``ValueError``).
    """
    _check_tasks(config)
    _check_sizes(config)
    _check_runs(config)
    _check_adaptation(config)
    _check_uncertainty(config)


__all__ = ["check_types", "check_values", "describe", "fits"]
