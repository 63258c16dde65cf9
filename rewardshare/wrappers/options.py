"""``RewardOptions``: what the reward wrappers (single, SB3 and gymnasium vector) and ``train_agent`` do to a reward.

One frozen, validated object instead of seven keyword arguments repeated by every wrapper::

    options = RewardOptions(normalize=True, clip=5.0)
    env = LearnedRewardWrapper(env, model, options)
    curve = train_agent("ppo", task, model, reward_options=options)

    # a posterior's pessimistic reward (mean - 1.5 std over the latent modes of a latent-task model)
    env = LearnedRewardWrapper(env, latent_model, RewardOptions(uncertainty="pessimistic", beta=1.5))

    # only the potential-based part phi(s') - phi(s) of that reward (no positive cycles; grid envs only)
    env = LearnedRewardWrapper(env, latent_model, RewardOptions(uncertainty="pessimistic", shaping="potential"))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rewardshare.wrappers.posterior import check_uncertainty
from rewardshare.wrappers.shaping import check_shaping
from rewardshare.wrappers.table import MAX_TABLE_ROWS, RewardTable
from rewardshare.wrappers.transform import RewardTransform

USE_TABLE_CHOICES: tuple[bool | str, ...] = (True, False, "auto")


@dataclass(frozen=True)
class RewardOptions:
    """How a wrapper turns its reward source's output into the reward the agent sees, and how it computes it.

    Post-processing runs in the order ``normalise -> * scale -> clip -> (+ env reward)`` (see
    :class:`~rewardshare.wrappers.RewardTransform`); the table options only change how fast the reward is computed,
    never its value (beyond float32 rounding, see :mod:`rewardshare.wrappers.table`).

    Raises:
        ValueError: On a non-bool flag, a non-finite ``scale`` or ``spread_bonus``, a ``clip`` that is not > 0, an
            unknown ``use_table`` or ``uncertainty``, a ``beta`` that is negative or set without
            ``uncertainty="pessimistic"``, ``spread_bonus`` together with ``uncertainty``, an unknown ``shaping``, or a
            negative ``max_table_rows``; the message names the field.
    """

    normalize: bool = False
    """Running normalisation of the raw reward by the mean and variance of every raw reward seen so far."""
    scale: float = 1.0
    """Multiplies the (normalised) reward."""
    clip: float | None = None
    """Clips to ``[-clip, clip]`` after normalising and scaling; ``None`` disables."""
    add_env_reward: bool = False
    """Return ``learned + env reward`` instead of the learned reward alone (shaping on top of the task reward)."""
    spread_bonus: float = 0.0
    """Ensembles only: reward = member mean + ``spread_bonus`` * member std (an optimism bonus)."""
    uncertainty: str | None = None
    """``None``: the reward as given (a latent-task model at its MAP latent, an ensemble's mean). ``"mean"``: the
    posterior-mean reward; ``"pessimistic"``: posterior mean - ``beta`` * posterior std. Both need a posterior: a
    list of models, a model with ``metadata["latent_posterior"]``, a GoalPosterior or a
    :class:`~rewardshare.wrappers.PosteriorReward` (see :mod:`rewardshare.wrappers.posterior`)."""
    beta: float | None = None
    """Pessimism of ``uncertainty="pessimistic"`` (finite, ``>= 0``; ``None`` means 1.0); refused otherwise."""
    shaping: str = "none"
    """``"none"``: the reward as the source (and ``uncertainty``) gives it. ``"potential"``: only its potential-based
    part ``phi(s') - phi(s)``, ``phi`` fitted by least squares to the tabulated reward over every move of a grid env
    (after the ``uncertainty`` combination, before normalise / scale / clip); every cycle then pays 0. Needs a GridGoal
    env with a fixed layout (refused elsewhere); see :mod:`rewardshare.wrappers.shaping`."""
    use_table: bool | str | RewardTable = "auto"
    """``"auto"`` (tabulate when the env is finite), ``True`` (tabulate or raise), ``False`` (always forward), or the
    :class:`~rewardshare.wrappers.RewardTable` of another wrapper with the same source and env states (shared)."""
    max_table_rows: int = MAX_TABLE_ROWS
    """The largest table (rows of ``(s, a, s', done)``) to build; a larger one falls back to the forward path."""

    def __post_init__(self) -> None:
        for name in ("normalize", "add_env_reward"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name}={value!r} is not allowed: use True or False")
            object.__setattr__(self, name, bool(value))
        transform = self.transform()  # one place checks scale and clip: the transform's own validation
        object.__setattr__(self, "scale", transform.scale)
        object.__setattr__(self, "clip", transform.clip)
        bonus = self.spread_bonus
        if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not math.isfinite(bonus):
            raise ValueError(f"spread_bonus={bonus!r} is not allowed: use a finite float")
        object.__setattr__(self, "spread_bonus", float(bonus))
        check_uncertainty(self.uncertainty, self.beta, self.spread_bonus)
        if self.beta is not None:
            object.__setattr__(self, "beta", float(self.beta))
        check_shaping(self.shaping)
        if not isinstance(self.use_table, RewardTable) and not any(
            self.use_table is c or (isinstance(c, str) and self.use_table == c) for c in USE_TABLE_CHOICES
        ):
            raise ValueError(f"use_table={self.use_table!r} is not allowed: use True, False or 'auto'")
        rows = self.max_table_rows
        if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
            raise ValueError(f"max_table_rows={rows!r} is not allowed: use an int >= 0")
        object.__setattr__(self, "max_table_rows", int(rows))

    def transform(self) -> RewardTransform:
        """A new :class:`~rewardshare.wrappers.RewardTransform` with these options (its statistics start at zero)."""
        return RewardTransform(normalize=self.normalize, scale=self.scale, clip=self.clip,
                               add_env_reward=self.add_env_reward)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a shared table is written as ``"<RewardTable>"``)."""
        use_table = "<RewardTable>" if isinstance(self.use_table, RewardTable) else self.use_table
        return {"normalize": self.normalize, "scale": self.scale, "clip": self.clip,
                "add_env_reward": self.add_env_reward, "spread_bonus": self.spread_bonus,
                "uncertainty": self.uncertainty, "beta": self.beta, "shaping": self.shaping, "use_table": use_table,
                "max_table_rows": self.max_table_rows}

    def source_kwargs(self) -> dict[str, Any]:
        """The options that choose the reward source (for :func:`~rewardshare.wrappers.as_reward_source`)."""
        return {"spread_bonus": self.spread_bonus, "uncertainty": self.uncertainty, "beta": self.beta}

    def without_source_options(self) -> RewardOptions:
        """These options minus :meth:`source_kwargs`: for a wrapper given a source that already applied them."""
        return replace(self, spread_bonus=0.0, uncertainty=None, beta=None)


def check_reward_options(options: Any) -> RewardOptions:
    """``options`` itself, or the defaults for ``None``.

    Raises:
        TypeError: If ``options`` is not a :class:`RewardOptions`.
    """
    if options is None:
        return RewardOptions()
    if not isinstance(options, RewardOptions):
        raise TypeError(
            f"options={options!r} is not allowed: use RewardOptions(normalize=..., scale=..., ...) or None"
        )
    return options
