"""Settings and small datasets the reuse tests share (imported as ``from reuse_data import ...``)."""

from __future__ import annotations

import numpy as np

from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget

#: The reward model size of the reuse tests.
SMALL = {"hidden_sizes": (32, 32)}
_QUICK = {"steps": 300, "lr": 3e-3, **SMALL}

#: Registry settings of the pre-trained methods (fixture ``pretrained``): enough training to learn the 5x5 family.
SETTINGS: dict[str, dict] = {
    "scratch": SMALL,
    "transfer": _QUICK,
    "task_embedding": {"embedding_dim": 4, **_QUICK},
    "trunk_heads": _QUICK,
    "goal_conditioned": _QUICK,
    "meta_sgd": {
        "inner_steps": 3, "meta_batch_size": 4, "support_size": 16, "query_size": 16, "outer_lr": 3e-3,
        "iterations": 60, **SMALL,
    },
    "map_prior": {"prior_steps": 20, "max_prior_tasks": 6},  # its base: the pre-trained meta_sgd
}

#: An adaptation budget per pre-trained method that learns a held-out task from 16 labels.
BUDGETS = {
    "scratch": AdaptationBudget(100, 1e-2),
    "transfer": AdaptationBudget(50, 3e-3),
    "task_embedding": AdaptationBudget(100, 3e-2, ("context",)),
    "trunk_heads": AdaptationBudget(100, 1e-2, ("head",)),
    "goal_conditioned": AdaptationBudget(30, 1e-3),
    "meta_sgd": AdaptationBudget(3, 1.0),
    "map_prior": AdaptationBudget(100, 1e-2, prior_weight=0.01),
}


def constant_tasks(values: dict[str, float], n: int = 40) -> object:
    """Tasks that share their states and actions but not their (constant) reward labels."""
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 5, size=(n, 2)).astype(np.float32)
    action = rng.integers(0, 4, size=n)
    data = {
        "obs": np.concatenate([obs] * len(values)),
        "action": np.concatenate([action] * len(values)),
        "label": np.repeat(np.array(list(values.values()), np.float32), n),
        "task_id": np.repeat(list(values), n),
    }
    return make_loss("mse", data)
