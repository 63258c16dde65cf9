"""Does the fitted MAP prior beat isotropic L2 around the same mean? Measured on validation goals of the train split.

MAP adaptation (:mod:`rewardshare.rewardmodels.reuse.prior`) minimises ``L(theta; D) + (lambda / k) (theta - mu)^T
Sigma^{-1} (theta - mu)`` from ``mu`` = Meta-SGD's meta-learned start. This script holds everything fixed (the
pre-trained ``mu``, the source fits the covariance is estimated from, the goals and label draws, the budget grid)
and varies only ``Sigma``'s estimator:

- ``isotropic``: ``v I`` (plain L2 at the mean spread, the baseline);
- ``legacy``: the first version's estimator, per-weight precisions normalised by their mean and clipped to
  ``[1e-3, 1e3]`` (rescaled to the isotropic prior's units; its diagnostics show why it is almost flat);
- ``tensor``, ``diagonal``, ``lowrank``: the estimators of :func:`~rewardshare.rewardmodels.reuse.prior.
  fit_gaussian_prior`.

Goals: the open 8x8 family's *train* split only (held-out goals are never touched): ``--n-validation`` train goals
are kept out of pre-training and split in two halves, one to choose each estimator's budget (steps, lr, lambda) per
``k`` (:func:`~rewardshare.rewardmodels.reuse.select_budget`, grid widened at its edges), the other to evaluate the
chosen budget (EPIC to the teacher on every transition). The rest are the source goals. Reported per estimator and
``k``: mean EPIC on the evaluation goals, the paired difference to isotropic (same goals and label draws) with a
bootstrap 95% CI, and the chosen budget; plus each estimator's spread diagnostics (how many weights never moved,
how many legacy precisions sit on the clip floor).

Run: ``python benchmarks/map_prior.py`` (6-13 minutes on a shared 2-core machine; one process, one thread);
``--quick`` for a smoke run. Writes ``benchmarks/results/map_prior.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rewardshare
from rewardshare._atomic import atomic_write_json
from rewardshare.envs import TaskFamily
from rewardshare.experiments.fewshot import Scorer
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import make_method, select_budget
from rewardshare.rewardmodels.reuse.prior import GaussianPrior, MAPAdaptation, fit_gaussian_prior, source_deltas

KINDS = ("isotropic", "legacy", "tensor", "diagonal", "lowrank")


def machine_info() -> dict[str, Any]:
    """Machine and library versions for the results file."""
    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": np.__version__, "rewardshare": rewardshare.__version__,
    }


def legacy_prior(mu: RewardModel, deltas: dict[str, torch.Tensor], scale: float) -> GaussianPrior:
    """The first version's estimator: ``w = (1/s^2) / mean(1/s^2)`` clipped to ``[1e-3, 1e3]``, times ``scale``."""
    inv = {n: 1.0 / ((d.double() ** 2).mean(0) + 1e-8) for n, d in deltas.items()}
    mean_inv = torch.cat([v.reshape(-1) for v in inv.values()]).mean()
    mean = {n: p.detach().clone() for n, p in mu.named_parameters()}
    precision = {n: ((v / mean_inv).clamp(1e-3, 1e3) * scale).float() for n, v in inv.items()}
    return GaussianPrior(mean, precision, len(next(iter(deltas.values()))), None, "legacy")


def diagnostics(deltas: dict[str, torch.Tensor], legacy: GaussianPrior, priors: dict[str, GaussianPrior]) -> dict:
    """How many weights never moved, where the legacy precisions sit, and each prior's spread of variances."""
    spread = torch.cat([(d.double() ** 2).mean(0).reshape(-1) for d in deltas.values()])
    raw = torch.cat([(1.0 / (s + 1e-8)).reshape(-1) for s in [spread]])
    normalised = raw / raw.mean()
    out: dict[str, Any] = {
        "n_weights": int(spread.numel()),
        "never_moved_fraction": float((spread < 1e-12).float().mean()),
        "legacy_at_floor_fraction": float((normalised <= 1e-3).float().mean()),
        "legacy_at_ceiling_fraction": float((normalised >= 1e3).float().mean()),
        "variance_quantiles": {},
    }
    for name, prior in {**priors, "legacy": legacy}.items():
        var = torch.cat([v.reshape(-1).double() for v in prior.variances().values()])
        q = torch.quantile(var, torch.tensor([0.05, 0.5, 0.95], dtype=var.dtype)).tolist()
        out["variance_quantiles"][name] = {"p05": q[0], "p50": q[1], "p95": q[2], "max_over_min": float(var.max() /
                                                                                                    var.min())}
    return out


def bootstrap_ci(x: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """95% percentile CI of the mean of ``x``."""
    rng = np.random.default_rng(seed)
    means = x[rng.integers(len(x), size=(n_boot, len(x)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Pre-train once, fit every estimator from the same source fits, select and evaluate per k."""
    start = time.perf_counter()
    family = TaskFamily("open", args.size, held_out_fraction=0.25, split_seed=0)
    train = list(family.train)  # held-out goals are never used
    order = np.random.default_rng([args.seed, 11]).permutation(len(train))
    validation = [train[i] for i in order[: args.n_validation]]
    select_goals, eval_goals = validation[::2], validation[1::2]
    source_goals = [train[i] for i in sorted(order[args.n_validation:])]
    env = source_goals[0].make_env()
    spaces = (env.observation_space, env.action_space)
    pairs = 4 * (len(env.layout.free_cells) - 1)
    source = make_loss("mse", collect_transitions(source_goals, pairs * len(source_goals), coverage="uniform",
                                                  seed=args.seed))
    base = make_method("meta_sgd", *spaces, seed=args.seed, hidden_sizes=tuple(args.hidden), iterations=args.iterations,
                       inner_steps=5, inner_lr=0.05, meta_batch_size=8, support_size=16, query_size=32,
                       outer_lr=1e-3)
    base.pretrain(source, source_goals, seed=args.seed)
    pretrain_s = time.perf_counter() - start
    mu = base.start_model()
    deltas, ids = source_deltas(mu, source, steps=args.prior_steps, lr=1e-3, max_tasks=args.max_prior_tasks,
                                seed=args.seed)
    priors = {kind: fit_gaussian_prior(mu, source, kind=kind, shrinkage=args.shrinkage, deltas=(deltas, ids))
              for kind in ("isotropic", "tensor", "diagonal", "lowrank")}
    iso_precision = float(next(iter(priors["isotropic"].precision.values())).reshape(-1)[0])
    legacy = legacy_prior(mu, deltas, iso_precision)
    all_priors = {**priors, "legacy": legacy}
    scorers = {t.id: Scorer(t, mu) for t in validation}
    pools = {t.id: make_loss("mse", collect_transitions(t, max(args.ks), coverage="uniform", seed=args.seed + 7))
             for t in validation}
    runs = [(t, d) for t in eval_goals for d in range(args.draws)]

    def draw(task: Any, k: int, seed: int) -> Any:
        pool = pools[task.id]
        return pool.subset(np.sort(np.random.default_rng([seed, 3]).choice(len(pool), size=k, replace=False)))

    results: dict[str, Any] = {kind: {} for kind in KINDS}
    for k in args.ks:
        for kind in KINDS:
            t0 = time.perf_counter()
            method = MAPAdaptation(base, kind=kind if kind != "legacy" else "isotropic", pretrain_base=False)
            method.prior = all_priors[kind]
            sel = select_budget(method, [(t, t) for t in select_goals], k, lambda m, t: scorers[t.id](m),
                                steps=args.steps, lrs=args.lrs, seeds=list(range(args.draws)), draw=draw,
                                max_widen=args.max_widen)
            targets = [draw(t, k, d) for t, d in runs]
            models = method.adapt_many(targets, sel.budget, [t for t, _ in runs], on_divergence="stop")
            epic = [scorers[t.id](m) for m, (t, _) in zip(models, runs, strict=True)]
            results[kind][str(k)] = {
                "budget": sel.budget.to_dict(), "selection_score": sel.score, "widenings": sel.widenings,
                "eval_epic": [round(e, 5) for e in epic], "eval_mean": float(np.mean(epic)),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"k={k:4d} {kind:10s} eval EPIC {np.mean(epic):.4f}  budget {sel.budget.to_dict()} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    mean_only = [scorers[t.id](mu) for t, _ in runs]
    summary: dict[str, Any] = {}
    for kind in KINDS:
        summary[kind] = {}
        for k in args.ks:
            diff = np.array(results[kind][str(k)]["eval_epic"]) - np.array(results["isotropic"][str(k)]["eval_epic"])
            summary[kind][str(k)] = {
                "eval_mean": round(results[kind][str(k)]["eval_mean"], 4),
                "minus_isotropic": round(float(diff.mean()), 4),
                "minus_isotropic_ci95": [round(v, 4) for v in bootstrap_ci(diff, 2000, args.seed)],
            }
    return {
        "benchmark": "map_prior",
        "command": command,
        "machine": machine_info(),
        "settings": {
            "family": f"open:{args.size}", "held_out_goals_used": 0, "source_goals": len(source_goals),
            "select_goals": [t.id for t in select_goals], "eval_goals": [t.id for t in eval_goals],
            "draws": args.draws, "ks": list(args.ks), "base": "meta_sgd", "hidden_sizes": list(args.hidden),
            "iterations": args.iterations, "prior_steps": args.prior_steps, "prior_tasks": len(ids),
            "shrinkage": args.shrinkage, "steps": list(args.steps), "lrs": list(args.lrs),
            "prior_weights": MAPAdaptation(base).candidate_prior_weights(), "max_widen": args.max_widen,
            "seed": args.seed,
        },
        "diagnostics": diagnostics(deltas, legacy, priors),
        "mean_only_eval_epic": round(float(np.mean(mean_only)), 4),
        "summary": summary,
        "results": results,
        "pretrain_seconds": round(pretrain_s, 1),
        "seconds": round(time.perf_counter() - start, 1),
        "note": "EPIC on validation goals of the train split (never held-out goals); minus_isotropic < 0: the "
                "estimator beats isotropic L2 around the same mean (paired over goals and label draws)",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, print, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--size", type=int, default=8, help="Side of the open grid.")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128, 128], help="Reward-network widths.")
    p.add_argument("--iterations", type=int, default=1500, help="Meta-SGD meta-iterations (the prior mean).")
    p.add_argument("--prior-steps", type=int, default=100, help="Adam steps per source fit.")
    p.add_argument("--max-prior-tasks", type=int, default=24, help="Source tasks the covariance is fitted on.")
    p.add_argument("--shrinkage", type=float, default=0.5, help="rho of the diagonal and low-rank estimators.")
    p.add_argument("--n-validation", type=int, default=12, help="Train goals kept out (half select, half eval).")
    p.add_argument("--draws", type=int, default=2, help="Label draws per validation goal.")
    p.add_argument("--ks", type=int, nargs="+", default=[4, 16, 64], help="Labels per adaptation.")
    p.add_argument("--steps", type=int, nargs="+", default=[0, 10, 30, 100, 300], help="Candidate steps.")
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-2], help="Candidate Adam learning rates.")
    p.add_argument("--max-widen", type=int, default=1, help="Grid widening rounds of the budget selection.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the split, pre-training and draws.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "map_prior.json"), help="Output JSON.")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.hidden, args.iterations, args.prior_steps, args.max_prior_tasks = 5, [16], 5, 5, 4
        args.n_validation, args.draws, args.ks, args.steps, args.max_widen = 4, 1, [4], [0, 5], 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs are fastest on one thread, and the machine is shared
    try:
        res = run(args, " ".join(["python", "benchmarks/map_prior.py", *argv]))
    finally:
        torch.set_num_threads(threads)
    print({kind: {k: v["minus_isotropic"] for k, v in row.items()} for kind, row in res["summary"].items()})
    out = atomic_write_json(args.out, res)
    print(f"\nwrote {out}")
    return res


if __name__ == "__main__":
    main()
