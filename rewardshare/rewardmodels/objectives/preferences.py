"""Preferences: Bradley-Terry on segment pairs (``"bradley_terry"``), and T-REX pairs from ranked demonstrations.

- ``"bradley_terry"`` (segment preferences, ``p_i`` = probability that A is preferred, ties 0.5):
  ``mean_i BCE(sigmoid(sum_t R(A_i,t) - sum_t R(B_i,t)), p_i)``.
- ``"trex"`` (demonstrations ranked by ``demonstrator_noise``): equal-length snippets of two episodes of the same task
  with different noise form a pair, the less noisy one preferred, then Bradley-Terry as above (Brown et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rewardshare.rewardmodels.objectives.base import (
    Batch,
    Objective,
    RewardFn,
    as_tensor,
    call_reward,
    check_finite,
    get_field,
    task_indices,
)


class PreferenceObjective(Objective):
    """``"bradley_terry"``: cross-entropy of the Bradley-Terry model on segment return differences.

    Items: per side ``s`` in ``a``, ``b``: ``obs_s (n, L, *obs)``, ``action_s (n, L)``, ``next_obs_s``, ``done_s
    (n, L)``, ``mask_s (n, L)`` (1 for real steps, 0 for padding); ``label (n,)`` = P(A preferred).
    """

    kind = "bradley_terry"

    @classmethod
    def from_data(cls, data: Any) -> PreferenceObjective:
        """Build from a ``Preferences`` dataset (or a mapping with the same fields)."""
        label = np.asarray(get_field(data, "label"), dtype=np.float32)
        n = len(label)
        check_finite("label", label)
        if n and (label.min() < 0 or label.max() > 1):
            raise ValueError(
                f"preference labels must lie in [0, 1] (P(A preferred)); got min {label.min()}, max {label.max()}"
            )
        items: dict[str, torch.Tensor] = {"label": torch.as_tensor(label)}
        for side in ("a", "b"):
            obs = np.asarray(get_field(data, f"obs_{side}"))
            if len(obs) != n:
                raise ValueError(f"data has {len(obs)} segments obs_{side} but {n} labels")
            check_finite(f"obs_{side}", obs)
            next_obs = get_field(data, f"next_obs_{side}", required=False)
            done = get_field(data, f"done_{side}", required=False)
            length = obs.shape[1] if obs.ndim > 1 else 0
            items[f"obs_{side}"] = as_tensor(obs)
            items[f"action_{side}"] = as_tensor(np.asarray(get_field(data, f"action_{side}")))
            items[f"next_obs_{side}"] = as_tensor(obs if next_obs is None else next_obs)
            items[f"done_{side}"] = torch.as_tensor(
                np.zeros((n, length), bool) if done is None else np.asarray(done, dtype=bool)
            )
            mask = get_field(data, f"mask_{side}", required=False)
            items[f"mask_{side}"] = torch.as_tensor(
                np.ones((n, length), np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
            )
        items["task_index"], task_ids = task_indices(get_field(data, "task_id", required=False), n)
        return cls(items, task_ids)

    @classmethod
    def from_ranked_demonstrations(
        cls, data: Any, n_pairs: int = 1000, segment_length: int = 10, seed: int = 0
    ) -> PreferenceObjective:
        """``"trex"``: Bradley-Terry over the snippet pairs of :func:`trex_pairs` (Brown et al. 2019).

        Raises:
            ValueError: On data with no demonstration steps, or no task demonstrated at two noise levels.
        """
        if not len(np.asarray(get_field(data, "episode"))):
            raise ValueError("data is empty: no demonstration steps to build T-REX pairs from")
        obj = cls.from_data(trex_pairs(data, n_pairs=n_pairs, segment_length=segment_length, seed=seed))
        obj.kind = "trex"
        return obj

    @staticmethod
    def segment_returns(model: RewardFn, batch: Batch, side: str) -> torch.Tensor:
        """Masked sum of rewards over each segment of ``side`` (``"a"`` or ``"b"``): shape ``(n,)``."""
        obs = batch[f"obs_{side}"]
        n, length = obs.shape[:2]
        flat = lambda x: x.reshape(n * length, *x.shape[2:])  # noqa: E731
        ctx = batch.get("context")
        if ctx is not None:
            ctx = ctx.repeat_interleave(length, dim=0)
        r = call_reward(
            model, flat(obs), flat(batch[f"action_{side}"]), flat(batch[f"next_obs_{side}"]),
            flat(batch[f"done_{side}"]), ctx,
        ).reshape(n, length)
        return (r * batch[f"mask_{side}"].to(r.dtype)).sum(dim=1)

    def logits(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """``sum R(A) - sum R(B)`` per pair, shape ``(n,)``: the log-odds that A is preferred."""
        return self.segment_returns(model, batch, "a") - self.segment_returns(model, batch, "b")

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """Binary cross-entropy of the Bradley-Terry probability that A is preferred against the labels."""
        logits = self.logits(model, batch)
        return nn.functional.binary_cross_entropy_with_logits(logits, batch["label"].to(logits.dtype))


def trex_pairs(
    data: Any, n_pairs: int = 1000, segment_length: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """T-REX preference pairs from demonstrations ranked by ``demonstrator_noise`` (less noise is better).

    Each pair takes two episodes of the same task with different noise and an equal-length random snippet of
    each (``min(segment_length, both lengths)`` steps, padded to ``segment_length`` with ``mask`` 0). The less noisy
    episode's snippet is side A with label 1, or side B with label 0 (sides drawn at random).

    Returns:
        A mapping with the fields of a ``Preferences`` dataset plus ``mask_a`` / ``mask_b``.

    Raises:
        ValueError: If no task has episodes of two different noise levels.
    """
    episode = np.asarray(get_field(data, "episode"), dtype=np.int64)
    noise = np.asarray(get_field(data, "demonstrator_noise"), dtype=np.float64)
    ep_task = get_field(data, "episode_task_id", required=False)
    n_ep = len(noise)
    ep_task = np.zeros(n_ep, dtype=str) if ep_task is None else np.asarray(ep_task).astype(str)
    obs = np.asarray(get_field(data, "obs"))
    action = np.asarray(get_field(data, "action"))
    next_obs = np.asarray(get_field(data, "next_obs", default=obs, required=False))
    done = np.asarray(get_field(data, "done", default=np.zeros(len(obs), bool), required=False), dtype=bool)
    steps = [np.flatnonzero(episode == e) for e in range(n_ep)]
    candidates = []  # (i, j) episode pairs of one task with noise_i < noise_j
    for i in range(n_ep):
        for j in range(n_ep):
            if ep_task[i] == ep_task[j] and noise[i] < noise[j] and len(steps[i]) and len(steps[j]):
                candidates.append((i, j))
    if not candidates:
        raise ValueError(
            "T-REX needs demonstrations of one task from at least two demonstrator_noise levels; "
            f"got noise levels {sorted(set(noise.tolist()))}"
        )
    rng = np.random.default_rng(seed)
    L = int(segment_length)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "next_obs", "done", "mask")}
    sides: dict[str, dict[str, list[np.ndarray]]] = {"a": {k: [] for k in out}, "b": {k: [] for k in out}}
    labels, tasks = [], []
    for k in rng.integers(len(candidates), size=int(n_pairs)):
        better, worse = candidates[k]
        length = min(L, len(steps[better]), len(steps[worse]))
        snippets = []
        for e in (better, worse):
            start = int(rng.integers(len(steps[e]) - length + 1))
            idx = steps[e][start : start + length]
            pad = np.full(L - length, idx[-1])
            full = np.concatenate([idx, pad])
            mask = np.concatenate([np.ones(length, np.float32), np.zeros(L - length, np.float32)])
            snippets.append({"obs": obs[full], "action": action[full], "next_obs": next_obs[full],
                             "done": done[full], "mask": mask})
        a_first = bool(rng.integers(2))
        first, second = (snippets[0], snippets[1]) if a_first else (snippets[1], snippets[0])
        for key in out:
            sides["a"][key].append(first[key])
            sides["b"][key].append(second[key])
        labels.append(1.0 if a_first else 0.0)
        tasks.append(ep_task[better])
    result = {f"{key}_{side}": np.stack(sides[side][key]) for side in ("a", "b") for key in out}
    result["label"] = np.asarray(labels, dtype=np.float32)
    result["task_id"] = np.asarray(tasks)
    return result
