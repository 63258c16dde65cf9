"""What every collector shares: the parameter objects (:class:`EnvOptions`, :class:`CollectionOptions`), coverage
mixtures and the argument checks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardshare.envs.grid_env import OBS_MODES

COVERAGES: tuple[str, ...] = ("uniform", "random", "expert")
NOISE_KINDS: tuple[str, ...] = ("epsilon", "temperature")
DEFAULT_ENV_ID = "rewardshare/GridGoal-v0"

Coverage = str | Mapping[str, float]


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int, if it is an integer ``>= low``.

    Raises:
        ValueError: Naming the argument otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: use an int >= {low}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is not allowed: use True or False")
    return bool(value)


@dataclass(frozen=True)
class EnvOptions:
    """The env the rollouts run in, and so the observations and ``done`` flags the dataset records.

    The same options make the env a model trained on the data is used in (they are saved as the dataset's
    ``metadata["env_kwargs"]``), so build one :class:`EnvOptions` and pass it to every collector of an experiment.

    Raises:
        ValueError: On an unknown ``obs_mode``, a non-bool flag or ``max_steps`` below 1.
    """

    obs_mode: str = "coords"
    """The env's observation mode (``"coords"``, ``"onehot"`` or ``"grid"``); data comes with observations of it."""
    observe_goal: bool = False
    """Whether observations include the goal (needed to tell the tasks of a multi-task dataset apart)."""
    absorbing_goal: bool = False
    """Fixed-horizon episodes where the goal absorbs: transitions out of it are collected and labelled 0, and no
    step is ``done``."""
    max_steps: int | None = None
    """Truncation horizon of rollouts (default ``4 * H * W``, the env's)."""

    def __post_init__(self) -> None:
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={self.obs_mode!r} is not allowed: use one of {OBS_MODES}")
        object.__setattr__(self, "observe_goal", _check_bool("observe_goal", self.observe_goal))
        object.__setattr__(self, "absorbing_goal", _check_bool("absorbing_goal", self.absorbing_goal))
        if self.max_steps is not None:
            object.__setattr__(self, "max_steps", check_int("max_steps", self.max_steps, 1))

    def env_kwargs(self) -> dict[str, Any]:
        """The :class:`~rewardshare.envs.GridGoalEnv` arguments these options set."""
        return {"obs_mode": self.obs_mode, "observe_goal": self.observe_goal, "absorbing_goal": self.absorbing_goal,
                "max_steps": self.max_steps}


@dataclass(frozen=True)
class CollectionOptions:
    """How a collection runs and what it records about itself; none of it changes the data drawn for a seed, except
    ``num_envs`` (the rollouts' batch size).

    Raises:
        ValueError: On ``num_envs`` below 1, a non-bool ``progress``, or ``metadata`` that is not a mapping.
    """

    num_envs: int | None = None
    """Vector-env size per layout (default: sized to the request, at most 2048 sub-envs)."""
    progress: bool = False
    """Show a progress bar."""
    env_id: str | None = None
    """Recorded in the metadata (default ``"rewardshare/GridGoal-v0"``, which takes every layout)."""
    metadata: Mapping[str, Any] | None = None
    """Extra entries for the dataset's metadata (e.g. the command that collected it)."""

    def __post_init__(self) -> None:
        if self.num_envs is not None:
            object.__setattr__(self, "num_envs", check_int("num_envs", self.num_envs, 1))
        object.__setattr__(self, "progress", _check_bool("progress", self.progress))
        if self.env_id is not None and not isinstance(self.env_id, str):
            raise ValueError(f"env_id={self.env_id!r} is not allowed: use a registered env id string or None")
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise ValueError(f"metadata={self.metadata!r} is not allowed: use a mapping (dict) or None")


def check_options(env: Any, options: Any) -> tuple[EnvOptions, CollectionOptions]:
    """The parameter objects of a collector call (``None`` means the defaults).

    Raises:
        TypeError: If either is not its parameter object.
    """
    env = EnvOptions() if env is None else env
    options = CollectionOptions() if options is None else options
    if not isinstance(env, EnvOptions):
        raise TypeError(f"env={env!r} is not allowed: use EnvOptions(obs_mode=..., max_steps=...) or None")
    if not isinstance(options, CollectionOptions):
        raise TypeError(f"options={options!r} is not allowed: use CollectionOptions(num_envs=..., ...) or None")
    return env, options


def normalize_coverage(coverage: Coverage) -> dict[str, float]:
    """Turn a coverage argument into ``{strategy: weight}`` with weights summing to 1.

    Raises:
        ValueError: On an unknown strategy, a negative weight or weights summing to 0.
    """
    if isinstance(coverage, str):
        if coverage not in COVERAGES:
            raise ValueError(f"coverage={coverage!r} is not allowed: use one of {COVERAGES} or a mixture dict")
        return {coverage: 1.0}
    if not isinstance(coverage, Mapping) or not coverage:
        raise ValueError(f"coverage={coverage!r} is not allowed: use one of {COVERAGES} or e.g. {{'uniform': 0.5, "
                         "'expert': 0.5}")
    out: dict[str, float] = {}
    for name, weight in coverage.items():
        if name not in COVERAGES:
            raise ValueError(f"coverage has strategy {name!r}, which is not allowed: use keys from {COVERAGES}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0 or math.isinf(weight):
            raise ValueError(f"coverage[{name!r}]={weight!r} is not allowed: use a finite weight >= 0")
        if weight > 0:
            out[name] = float(weight)
    total = sum(out.values())
    if total <= 0:
        raise ValueError(f"coverage={dict(coverage)!r} has no positive weight: give at least one weight > 0")
    return {k: v / total for k, v in out.items()}


def split_count(n: int, weights: Sequence[float]) -> list[int]:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainder, ties to the earlier part)."""
    w = np.asarray(weights, dtype=np.float64)
    raw = n * w / w.sum()
    parts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[: n - int(parts.sum())]] += 1
    return parts.tolist()


def check_expert(epsilon: Any, temperature: Any) -> None:
    """Validate the expert's noise (``expert_epsilon`` in [0, 1], ``expert_temperature`` finite >= 0 or None).

    Raises:
        ValueError: Naming the argument.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
        raise ValueError(f"expert_epsilon={epsilon!r} is not allowed: use a float in [0, 1]")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature < math.inf):
        raise ValueError(f"expert_temperature={temperature!r} is not allowed: use a finite float >= 0 or None")
