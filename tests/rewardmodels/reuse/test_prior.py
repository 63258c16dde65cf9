"""MAP adaptation's Gaussian prior: the quadratic form (diagonal and low-rank, against an explicit covariance), the
estimators (no weight that never moved dominates, the prior is not flat), and the per-run 1/n scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import FAMILY, loss_of

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse import AdaptationBudget
from rewardshare.rewardmodels.reuse.adapt import finetune
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.prior import (
    PRIOR_KINDS,
    GaussianPrior,
    MAPAdaptation,
    fit_gaussian_prior,
    scaled_penalty,
    source_deltas,
)


def test_gaussian_prior_penalty_is_the_weighted_squared_distance():
    prior = GaussianPrior({"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([1.0, 4.0])})
    assert float(prior.penalty({"w": torch.tensor([2.0, 0.0])}, 0.5)) == pytest.approx(0.5 * (1 * 1 + 4 * 4))
    stacked = prior.quadratic({"w": torch.tensor([[2.0, 0.0], [1.0, 2.0]])})  # two runs
    assert stacked.tolist() == pytest.approx([17.0, 0.0])
    with pytest.raises(KeyError, match="'v' has no prior"):
        prior.penalty({"v": torch.zeros(1)}, 1.0)


def test_the_low_rank_quadratic_form_is_that_of_the_explicit_covariance_and_of_its_marginals():
    gen = torch.Generator().manual_seed(0)
    mean = {"a": torch.randn(3, 2, generator=gen), "b": torch.randn(4, generator=gen)}
    precision = {"a": torch.rand(3, 2, generator=gen) + 0.5, "b": torch.rand(4, generator=gen) + 0.5}
    factors = {"a": torch.randn(2, 3, 2, generator=gen), "b": torch.randn(2, 4, generator=gen)}
    prior = GaussianPrior(mean, precision, 2, factors, "lowrank")
    u = torch.cat([factors["a"].reshape(2, -1), factors["b"]], dim=1).double()
    sigma = torch.diag(1.0 / torch.cat([precision["a"].reshape(-1), precision["b"]]).double()) + u.T @ u
    theta = {"a": torch.randn(5, 3, 2, generator=gen), "b": torch.randn(5, 4, generator=gen)}  # 5 runs
    d = torch.cat([(theta["a"] - mean["a"]).reshape(5, -1), theta["b"] - mean["b"]], dim=1).double()
    explicit = torch.einsum("ri,ij,rj->r", d, torch.linalg.inv(sigma), d)
    torch.testing.assert_close(prior.quadratic(theta).double(), explicit, rtol=1e-4, atol=1e-5)
    # a subset of the parameters: the quadratic form of their marginal prior
    sub = torch.linalg.inv(sigma[6:, 6:])
    db = d[:, 6:]
    torch.testing.assert_close(prior.quadratic({"b": theta["b"]}).double(), torch.einsum("ri,ij,rj->r", db, sub, db),
                               rtol=1e-4, atol=1e-5)
    var = prior.variances()
    torch.testing.assert_close(torch.cat([var["a"].reshape(-1), var["b"]]).double(), sigma.diagonal(), rtol=1e-5,
                               atol=1e-6)


def _dead_unit_model(spaces_):
    # a hidden unit whose ReLU never fires: its input weights never move on any source task
    mu = RewardModel(*spaces_, hidden_sizes=(8,), seed=0)
    with torch.no_grad():
        mu.trunk[0].weight[0].zero_()
        mu.trunk[0].bias[0] = -100.0
    return mu


def test_weights_that_never_moved_do_not_dominate_and_the_prior_is_not_flat(spaces_, labels):
    mu = _dead_unit_model(spaces_)
    deltas, ids = source_deltas(mu, labels, steps=30, lr=1e-2, max_tasks=6)
    dead = deltas["trunk.0.weight"][:, 0]
    assert float(dead.abs().max()) == 0.0  # the dead unit's weights really never move
    # the first version: normalise 1 / s^2 by its mean, clip to [1e-3, 1e3]: almost every moving weight on the floor
    inv = torch.cat([(1.0 / ((d**2).mean(0) + 1e-8)).reshape(-1) for d in deltas.values()])
    assert float(((inv / inv.mean()).clamp(1e-3, 1e3) <= 1e-3).float().mean()) > 0.5
    for kind in ("diagonal", "tensor", "lowrank"):
        prior = fit_gaussian_prior(mu, labels, kind=kind, shrinkage=0.5, deltas=(deltas, ids))
        var = torch.cat([v.reshape(-1) for v in prior.variances().values()])
        moving = torch.cat([((d**2).mean(0) > 0).reshape(-1) for d in deltas.values()])
        # a weight that never moved is held more firmly than the typical moving one, but boundedly (<= 1 / rho)
        assert float(var[~moving].min()) >= 0.5 * float(var[moving].median()) / 1e2, kind
        # and the moving weights are not all treated alike: those that moved more across the source tasks are
        # cheaper to move (the first version's floor made them all alike)
        if kind != "tensor":
            spread = (deltas["trunk.0.weight"] ** 2).mean(0).reshape(-1)
            own = prior.variances()["trunk.0.weight"].reshape(-1)
            assert float(torch.corrcoef(torch.stack([spread, own]))[0, 1]) > 0.99, kind
            assert float(own.max() / own.min()) > 2, kind
    iso = fit_gaussian_prior(mu, labels, kind="isotropic", deltas=(deltas, ids))
    flat = torch.cat([v.reshape(-1) for v in iso.precision.values()])
    assert torch.allclose(flat, flat[0].expand_as(flat))
    with pytest.raises(ValueError, match="kind='full' is not allowed"):
        fit_gaussian_prior(mu, labels, kind="full", deltas=(deltas, ids))
    with pytest.raises(ValueError, match="shrinkage=0 is not allowed"):
        fit_gaussian_prior(mu, labels, kind="lowrank", shrinkage=0, deltas=(deltas, ids))
    with pytest.raises(ValueError, match="at least 2 source tasks"):
        source_deltas(mu, split_by_task(labels)[FAMILY.train[0].id])


def test_a_strong_prior_holds_the_weights(spaces_, labels, pools):
    mu = RewardModel(*spaces_, hidden_sizes=(8,), seed=0)
    _, pool = pools[0]
    for kind in PRIOR_KINDS:
        prior = fit_gaussian_prior(mu, labels, kind=kind, steps=5, lr=1e-2, max_tasks=4)
        assert prior.n_tasks == 4 and prior.kind == kind
        moved = []
        for weight in (0.0, 100.0):
            out = finetune(mu, pool, steps=30, lr=1e-2, penalty=lambda p, w=weight, pr=prior: pr.penalty(p, w))
            with torch.no_grad():
                moved.append(float(prior.quadratic(dict(out.named_parameters()))))
        assert moved[1] < 0.1 * moved[0], kind


def test_map_adaptation_divides_the_prior_by_each_run_s_number_of_items(pretrained, pools):
    method = pretrained["map_prior"]
    assert method.kind == "lowrank" and method.prior.factors is not None
    prior = method.prior
    start = method.start_model()
    theta = {n: torch.stack([p.detach() + 0.01, p.detach() - 0.02]) for n, p in start.named_parameters()}
    q = prior.quadratic(theta)
    assert float(scaled_penalty(prior, 2.0, [4, 16])(theta)) == pytest.approx(float(2.0 / 4 * q[0] + 2.0 / 16 * q[1]))
    # the same lambda pulls harder with fewer items
    task, pool = pools[0]
    budget = AdaptationBudget(100, 1e-2, "all", 1e-2)
    few, many = (method.adapt(pool.subset(np.arange(n)), budget, task) for n in (4, 64))
    dist = [float(prior.quadratic({n: p.detach() for n, p in m.named_parameters()})) for m in (few, many)]
    assert dist[0] < dist[1]
    assert loss_of(pool, many) < loss_of(pool, start)


def test_map_adaptation_settings_are_checked(pretrained):
    with pytest.raises(ValueError, match="kind='wide' is not allowed"):
        MAPAdaptation(pretrained["meta_sgd"], kind="wide")
    assert MAPAdaptation(pretrained["meta_sgd"], isotropic=True).kind == "isotropic"
