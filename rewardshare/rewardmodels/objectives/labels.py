"""``"mse"``: reward labels, the squared error between the model's reward and a teacher's label.

``loss = mean_i (R(s_i, a_i, s'_i) - y_i)^2`` over labelled transitions ``(s_i, a_i, s'_i, y_i)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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


class LabelObjective(Objective):
    """``"mse"``: squared error between the model's reward and reward labels.

    Items: ``obs (n, *obs)``, ``action (n,)``, ``next_obs (n, *obs)``, ``done (n,)``, ``label (n,)``.
    """

    kind = "mse"

    @classmethod
    def from_data(cls, data: Any) -> LabelObjective:
        """Build from a ``Transitions`` dataset (or a mapping with the same fields).

        Raises:
            ValueError: On a missing field, mismatched lengths, or NaN/inf in the labels or observations.
        """
        label = np.asarray(get_field(data, "label"), dtype=np.float32)
        obs = np.asarray(get_field(data, "obs"))
        n = len(label)
        if len(obs) != n:
            raise ValueError(f"data has {len(obs)} observations but {n} labels")
        check_finite("label", label)
        check_finite("obs", obs)
        action = np.asarray(get_field(data, "action"))
        next_obs = get_field(data, "next_obs", required=False)
        done = get_field(data, "done", required=False)
        task_index, task_ids = task_indices(get_field(data, "task_id", required=False), n)
        items = {
            "obs": as_tensor(obs),
            "action": as_tensor(action),
            "next_obs": as_tensor(obs if next_obs is None else next_obs),
            "done": torch.as_tensor(np.zeros(n, bool) if done is None else np.asarray(done, dtype=bool)),
            "label": torch.as_tensor(label),
            "task_index": task_index,
        }
        return cls(items, task_ids)

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """Mean squared error of the model's reward against the labels of ``batch``."""
        pred = call_reward(model, batch["obs"], batch["action"], batch["next_obs"], batch["done"], batch.get("context"))
        return torch.mean((pred - batch["label"].to(pred.dtype)) ** 2)
