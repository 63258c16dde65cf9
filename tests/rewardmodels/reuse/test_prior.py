"""MAP adaptation's Gaussian prior: the penalty, and an estimated precision that holds shared weights."""

from __future__ import annotations

import pytest
import torch
from rm_data import FAMILY

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.adapt import finetune
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.prior import GaussianPrior, fit_gaussian_prior


def test_gaussian_prior_penalty_is_the_weighted_squared_distance():
    prior = GaussianPrior({"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([1.0, 4.0])})
    assert float(prior.penalty({"w": torch.tensor([2.0, 0.0])}, 0.5)) == pytest.approx(0.5 * (1 * 1 + 4 * 4))
    with pytest.raises(KeyError, match="'v' has no prior"):
        prior.penalty({"v": torch.zeros(1)}, 1.0)


def test_fitted_prior_has_unit_mean_precision_and_a_strong_prior_holds_the_weights(spaces_, labels, pools):
    mu = RewardModel(*spaces_, hidden_sizes=(8,), seed=0)
    prior = fit_gaussian_prior(mu, labels, steps=5, lr=1e-2, max_tasks=4)
    flat = torch.cat([v.reshape(-1) for v in prior.precision.values()])
    assert prior.n_tasks == 4 and float(flat.min()) >= 1e-3 and float(flat.max()) <= 1e3
    assert float(flat.mean()) == pytest.approx(1.0, rel=0.2)  # 1 before clipping
    _, pool = pools[0]
    moved = []
    for weight in (0.0, 100.0):
        out = finetune(mu, pool, steps=30, lr=1e-2, penalty=lambda p, w=weight: prior.penalty(p, w))
        with torch.no_grad():
            moved.append(float(prior.penalty(dict(out.named_parameters()), 1.0)))  # the prior's own distance to mu
    assert moved[1] < 0.1 * moved[0]
    with pytest.raises(ValueError, match="at least 2 source tasks"):
        fit_gaussian_prior(mu, split_by_task(labels)[FAMILY.train[0].id])
