"""Post-processing of a reward source's output: running normalisation, scaling, clipping, adding the env reward.

The order is fixed and documented: ``raw -> normalise -> * scale -> clip -> (+ env reward)``. The single-env
wrapper uses the scalar path (pure Python, no numpy call per step); the batched wrappers use the array path. Both do
the same float64 arithmetic (tested to agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RewardTransform:
    """How a raw reward becomes the reward the agent sees.

    Attributes:
        normalize: Running normalisation: ``(r - mean) / sqrt(var + epsilon)`` with the mean and variance of every raw
            reward seen so far (updated *before* normalising, so the first reward maps to 0). Keeps the scale of a
            learned reward (arbitrary up to an affine map) from setting the agent's effective learning rate.
        scale: Multiplies the (normalised) reward.
        clip: If set, clips to ``[-clip, clip]`` after scaling.
        add_env_reward: Add the env's own reward to the result instead of replacing it (reward shaping on top of the
            task reward).
        epsilon: Keeps the normaliser finite while the variance is 0.
        update_stats: Whether new rewards update the running statistics (set ``False`` to freeze them, e.g. for
            evaluation).
    """

    normalize: bool = False
    scale: float = 1.0
    clip: float | None = None
    add_env_reward: bool = False
    epsilon: float = 1e-8
    update_stats: bool = True
    count: float = field(default=0.0, init=False)
    mean: float = field(default=0.0, init=False)
    var: float = field(default=0.0, init=False)  # population variance of the raw rewards seen

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
            raise ValueError(f"scale={self.scale!r} is not allowed: use a finite float")
        self.scale = float(self.scale)
        if self.clip is not None:
            if isinstance(self.clip, bool) or not isinstance(self.clip, (int, float)) or not self.clip > 0:
                raise ValueError(f"clip={self.clip!r} is not allowed: use a float > 0 or None")
            self.clip = float(self.clip)
        if not self.epsilon > 0:
            raise ValueError(f"epsilon={self.epsilon!r} is not allowed: use a float > 0")

    @property
    def is_identity(self) -> bool:
        """True when the transform returns the raw reward unchanged."""
        return not self.normalize and self.scale == 1.0 and self.clip is None and not self.add_env_reward

    # -- scalar path (single env) ---------------------------------------------------------------------------------
    def apply_scalar(self, raw: float, env_reward: float) -> float:
        """Transform one reward (updates the running statistics if enabled)."""
        r = raw
        if self.normalize:
            if self.update_stats:
                # Welford / Chan update with a batch of one, written to match the array path's arithmetic
                n = self.count + 1.0
                delta = raw - self.mean
                self.mean += delta / n
                self.var = (self.var * self.count + delta * delta * self.count / n) / n
                self.count = n
            r = (r - self.mean) / math.sqrt(self.var + self.epsilon)
        r = r * self.scale
        if self.clip is not None:
            r = min(max(r, -self.clip), self.clip)
        if self.add_env_reward:
            r = r + env_reward
        return r

    # -- array path (batched wrappers) ----------------------------------------------------------------------------
    def apply(self, raw: np.ndarray, env_reward: np.ndarray) -> np.ndarray:
        """Transform a batch ``(B,)`` of rewards; returns float64 ``(B,)``.

        The statistics are updated with the whole batch at once (Chan et al.'s parallel update), then applied to
        every element.
        """
        r = np.asarray(raw, dtype=np.float64)
        if self.normalize:
            if self.update_stats and r.size:
                self._update_batch(r)
            r = (r - self.mean) / math.sqrt(self.var + self.epsilon)
        if self.scale != 1.0:
            r = r * self.scale
        if self.clip is not None:
            r = np.clip(r, -self.clip, self.clip)
        if self.add_env_reward:
            r = r + np.asarray(env_reward, dtype=np.float64)
        return r

    def _update_batch(self, r: np.ndarray) -> None:
        b = float(r.size)
        b_mean = float(r.mean())
        b_var = float(r.var())
        n = self.count + b
        delta = b_mean - self.mean
        self.mean += delta * b / n
        self.var = (self.var * self.count + b_var * b + delta * delta * self.count * b / n) / n
        self.count = n

    def state(self) -> dict[str, Any]:
        """The options and running statistics, JSON-ready."""
        return {
            "normalize": self.normalize, "scale": self.scale, "clip": self.clip, "add_env_reward": self.add_env_reward,
            "epsilon": self.epsilon, "count": self.count, "mean": self.mean, "var": self.var,
        }
