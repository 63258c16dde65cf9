"""Few-shot reward learning on held-out goals: how many target labels does each reuse method need?

For each task family (default: open 8x8 and four rooms 9x9, every free cell a goal, 25% of goals held out):

1. The ``train`` goals are split (seeded) into *source* tasks and *validation* tasks. Every reuse method of
   :mod:`rewardshare.rewardmodels` is pre-trained on the source tasks (every (cell, action) pair of every source task
   labelled once by the dense teacher: +1 closer, -1 farther or bump, +5 bonus on reaching the goal).
2. For every ``k`` in ``--ks`` the adaptation budget (steps, learning rate, what is frozen, prior weight) of every
   method is chosen on the *validation* tasks with ``k`` labels (:func:`~rewardshare.rewardmodels.reuse.
   select_budget`; "no adaptation" is always a candidate). ``held_out`` tasks are never used for training or tuning.
3. On every evaluated ``held_out`` task and seed, ``k`` fresh labels are collected and the method adapts with its
   chosen budget; the result is scored against the teacher on every transition of the grid: EPIC distance
   (canonicalised, shaping-invariant; Gleave et al. 2021) and MSE.

Reported per (family, coverage, method, k): mean EPIC and MSE with 95% bootstrap CIs over the task x seed runs
(``scipy.stats.bootstrap``, percentile), the median, and *labels-to-threshold*: the smallest ``k`` whose mean EPIC
is <= ``--threshold`` (0.2, fixed before any run; ``0`` when the zero-shot model already is), with
scratch / method ratios of labels-to-threshold and of EPIC at each ``k``. Label coverage is compared: ``uniform``
(every (cell, action) pair equally likely) against ``expert`` (labels on the transitions of epsilon-greedy expert
demonstrations, epsilon 0.2). The MAML ``func`` and ``higher`` backends are timed per meta-iteration on one thread
(interleaved repeats, medians).

Run ``python benchmarks/fewshot_reward.py`` (defaults: about 11 minutes on one shared core) or ``--quick`` (a smoke
run).
Writes ``benchmarks/results/fewshot_reward.json`` and ``fewshot_reward.png``; each finished family is stored
atomically in ``fewshot_reward_parts/`` first, so an interrupted run resumes with the families it has not finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rewardshare
from rewardshare._atomic import atomic_open, atomic_write_json
from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.feedback import Teacher, collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, grid_mdp, reward_tensor, transition_rewards
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse import ReuseMethod, make_method, select_budget, split_by_task
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig, MetaBatchSampler

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fewshot_reward.json"
METHODS: tuple[str, ...] = (
    "scratch",
    "transfer",
    "task_embedding",
    "trunk_heads",
    "goal_conditioned",
    "maml",
    "meta_sgd",
    "map_prior",
)
COVERAGE_ARGS: dict[str, dict[str, Any]] = {
    "uniform": {"coverage": "uniform"},
    "expert": {"coverage": "expert", "expert_epsilon": 0.2},
}


@dataclass
class Config:
    """Settings of one benchmark run (every field is a command-line option)."""

    families: tuple[str, ...] = ("open:8", "four_rooms:9")
    """Task families as ``layout:size``; every free cell is a goal, 25% held out (split seed ``split_seed``)."""
    ks: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
    """Numbers of target labels."""
    seeds: int = 5
    """Label draws per held-out task and k."""
    max_held_out: int = 8
    """Evaluate on at most this many held-out tasks (the first of a seeded permutation; a time cut, see README)."""
    n_validation: int = 6
    """Train-split tasks kept out of pre-training to choose adaptation budgets."""
    validation_seeds: int = 2
    """Label draws per validation task and k."""
    threshold: float = 0.2
    """EPIC threshold of labels-to-threshold (fixed before running)."""
    methods: tuple[str, ...] = METHODS
    """Reuse methods to run."""
    coverages: tuple[str, ...] = ("uniform", "expert")
    """Label coverages; the first is the main comparison."""
    coverage_methods: tuple[str, ...] = ("scratch", "transfer", "goal_conditioned", "meta_sgd")
    """Methods also run on the coverages after the first (a time cut)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Reward model trunk widths (all methods)."""
    pretrain_steps: int = 3000
    """Pre-training steps of transfer, multi-task and goal conditioning."""
    pretrain_lr: float = 1e-3
    """Their learning rate."""
    items_per_task: int = 32
    """Labels per source task per pre-training step."""
    embedding_dim: int = 8
    """Task-embedding size of the multi-task model."""
    maml_iterations: int = 1500
    """MAML / Meta-SGD meta-iterations."""
    maml_inner_steps: int = 5
    """Inner steps in meta-training."""
    maml_inner_lr: float = 0.05
    """Inner learning rate (Meta-SGD's initial per-parameter rate)."""
    maml_meta_batch: int = 8
    """Tasks per meta-iteration."""
    maml_support: int = 16
    """Support labels per task in meta-training."""
    maml_query: int = 32
    """Query labels per task in meta-training."""
    maml_outer_lr: float = 1e-3
    """Meta learning rate."""
    prior_steps: int = 100
    """Adam steps per source task when estimating the MAP prior's precision."""
    max_prior_tasks: int = 24
    """Source tasks used for the precision."""
    select_steps: tuple[int, ...] = ()
    """Step counts tried by budget selection for every method; empty: each method's own candidates."""
    n_boot: int = 2000
    """Bootstrap resamples of each confidence interval."""
    timing_repeats: int = 15
    """Interleaved repeats of each MAML backend timing."""
    split_seed: int = 0
    """Seed of the families' train / held-out split."""
    seed: int = 0
    """Seed of everything else (source split, initialisations, label draws)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def digest(self) -> str:
        """A short hash of the settings (a stored family result is reused only under the same settings)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


QUICK = {
    "families": ("open:5",),
    "ks": (4, 16),
    "seeds": 2,
    "max_held_out": 2,
    "n_validation": 2,
    "validation_seeds": 1,
    "coverage_methods": ("scratch", "goal_conditioned"),
    "hidden_sizes": (16, 16),
    "pretrain_steps": 30,
    "items_per_task": 8,
    "embedding_dim": 2,
    "maml_iterations": 5,
    "maml_inner_steps": 2,
    "maml_meta_batch": 2,
    "maml_support": 4,
    "maml_query": 4,
    "prior_steps": 3,
    "max_prior_tasks": 3,
    "n_boot": 100,
    "timing_repeats": 2,
    "select_steps": (0, 5),
    "methods": ("scratch", "transfer", "goal_conditioned", "meta_sgd", "map_prior"),
}


# ------------------------------------------------------------------------------------------------ scoring
class Scorer:
    """EPIC and MSE of a reward model against a task's teacher on every transition of its grid (cached teacher)."""

    def __init__(self, task: GoalTask, model: RewardModel) -> None:
        self.task = task
        self.mdp = grid_mdp(task, model)
        teacher = Teacher(task)
        self.full_teacher = reward_tensor(teacher.true_reward, self.mdp)
        self.teacher_sa = transition_rewards(self.full_teacher, self.mdp)

    def __call__(self, model: RewardModel) -> tuple[float, float]:
        """``(epic, mse)``."""
        full = reward_tensor(model, self.mdp)
        sa = transition_rewards(full, self.mdp)
        return epic_from_tensors(full, self.full_teacher, self.mdp), float(np.mean((sa - self.teacher_sa) ** 2))


def no_bonus_reference(task: GoalTask, scorer: Scorer) -> float:
    """EPIC of the teacher *without* its goal bonus against the full teacher (a model must locate the goal to beat
    it)."""
    teacher = Teacher(task)
    goal = np.asarray(task.goal)

    def reward(pos: np.ndarray, action: np.ndarray, next_pos: np.ndarray) -> np.ndarray:
        r = teacher.true_reward(pos, action, next_pos)
        into_goal = (next_pos == goal).all(axis=1) & ~(pos == goal).all(axis=1)
        return np.where(into_goal, r - 5.0, r)

    full = reward_tensor(reward, scorer.mdp)
    return epic_from_tensors(full, scorer.full_teacher, scorer.mdp)


def bootstrap_mean(values: Sequence[float], n_boot: int, seed: int) -> dict[str, float]:
    """Mean, median and a 95% percentile-bootstrap CI of the mean."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=np.float64)
    out = {"mean": float(x.mean()), "median": float(np.median(x)), "n": int(x.size)}
    if x.size < 2 or np.all(x == x[0]):
        out["ci_low"] = out["ci_high"] = out["mean"]
        return out
    res = bootstrap(
        (x,),
        np.mean,
        n_resamples=n_boot,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    out["ci_low"], out["ci_high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return out


# ------------------------------------------------------------------------------------------------ methods
def build_methods(cfg: Config, spaces: tuple[Any, Any], height: int, width: int) -> dict[str, ReuseMethod]:
    """Every method of ``cfg.methods`` built by the registry with the benchmark's settings (``map_prior`` reuses
    ``meta_sgd``'s, or ``maml``'s, pre-trained mean)."""
    common = {"seed": cfg.seed, "hidden_sizes": tuple(cfg.hidden_sizes)}
    pre = {**common, "steps": cfg.pretrain_steps, "lr": cfg.pretrain_lr, "items_per_task": cfg.items_per_task}
    maml = {
        **common,
        "inner_steps": cfg.maml_inner_steps,
        "inner_lr": cfg.maml_inner_lr,
        "meta_batch_size": cfg.maml_meta_batch,
        "support_size": cfg.maml_support,
        "query_size": cfg.maml_query,
        "outer_lr": cfg.maml_outer_lr,
        "iterations": cfg.maml_iterations,
    }
    out: dict[str, ReuseMethod] = {}
    for name in cfg.methods:
        if name == "scratch":
            settings: dict[str, Any] = common
        elif name in ("maml", "meta_sgd"):
            settings = maml
        elif name == "map_prior":
            base = out.get("meta_sgd") or out.get("maml")
            if base is None:
                raise ValueError("map_prior needs 'meta_sgd' or 'maml' listed before it in methods (its prior mean)")
            settings = {"base": base, "prior_steps": cfg.prior_steps, "max_prior_tasks": cfg.max_prior_tasks,
                        "seed": cfg.seed}
        elif name == "task_embedding":
            settings = {**pre, "embedding_dim": cfg.embedding_dim}
        elif name == "goal_conditioned":
            settings = {**pre, "height": height, "width": width}
        else:
            settings = pre
        out[name] = make_method(name, *spaces, **settings)
    return out


def time_maml_backends(cfg: Config, spaces: tuple[Any, Any], source: Objective) -> dict[str, Any]:
    """Milliseconds per meta-iteration (meta-loss + backward) of each backend, interleaved repeats, medians."""
    sampler = MetaBatchSampler(
        split_by_task(source), cfg.maml_meta_batch, cfg.maml_support, cfg.maml_query, seed=cfg.seed
    )
    support, query = sampler.sample()
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "meta_batch": cfg.maml_meta_batch,
        "inner_steps": cfg.maml_inner_steps,
        "support": cfg.maml_support,
        "query": cfg.maml_query,
    }
    for order in ("second_order", "first_order"):
        maml = MAML(
            RewardModel(*spaces, hidden_sizes=tuple(cfg.hidden_sizes), seed=cfg.seed),
            MAMLConfig(
                inner_steps=cfg.maml_inner_steps,
                inner_lr=cfg.maml_inner_lr,
                first_order=order == "first_order",
                meta_sgd=True,
            ),
        )
        params = list(maml.meta_parameters())
        times: dict[str, list[float]] = {"func": [], "higher": []}
        for rep in range(cfg.timing_repeats + 1):
            for backend in ("func", "higher"):
                start = time.perf_counter()
                loss = maml.meta_loss(support, query, source.loss, source.shared, backend=backend)
                torch.autograd.grad(loss, params)
                if rep:  # the first round warms up
                    times[backend].append(1000 * (time.perf_counter() - start))
        med = {b: statistics.median(v) for b, v in times.items()}
        out[order] = {
            "func_ms": med["func"],
            "higher_ms": med["higher"],
            "higher_over_func": med["higher"] / med["func"],
        }
    return out


# ------------------------------------------------------------------------------------------------ one family
def _log(msg: str) -> None:
    print(msg, flush=True)


def run_family(cfg: Config, spec: str) -> dict[str, Any]:
    """Pre-train, select budgets and evaluate every method on one family."""
    layout, size = spec.split(":")
    family = TaskFamily(layout, int(size), split_seed=cfg.split_seed)
    rng = np.random.default_rng([cfg.seed, 11])
    order = rng.permutation(len(family.train))
    validation = [family.train[i] for i in order[: cfg.n_validation]]
    source_tasks = [family.train[i] for i in sorted(order[cfg.n_validation :])]
    held = [family.held_out[i] for i in sorted(rng.permutation(len(family.held_out))[: cfg.max_held_out])]
    env = source_tasks[0].make_env()
    spaces = (env.observation_space, env.action_space)
    lay = env.layout
    pairs = 4 * (len(lay.free_cells) - 1)  # every (cell, action) pair off the goal
    t0 = time.perf_counter()
    source = make_loss(
        "mse", collect_transitions(source_tasks, pairs * len(source_tasks), coverage="uniform", seed=cfg.seed)
    )
    _log(
        f"[{family.name}] {len(source_tasks)} source, {len(validation)} validation, {len(held)}/"
        f"{len(family.held_out)} held-out tasks; {len(source)} source labels"
    )
    result: dict[str, Any] = {
        "family": family.name,
        "source_tasks": [t.id for t in source_tasks],
        "validation_tasks": [t.id for t in validation],
        "held_out_tasks": [t.id for t in held],
        "n_held_out_total": len(family.held_out),
        "n_source_labels": len(source),
        "methods": {},
        "pretrain": {},
    }
    result["maml_backend_timing"] = time_maml_backends(cfg, spaces, source)
    _log(f"[{family.name}] MAML backends: {json.dumps(result['maml_backend_timing'])}")

    methods = build_methods(cfg, spaces, lay.height, lay.width)
    for name, method in methods.items():
        start = time.perf_counter()
        method.pretrain(source, source_tasks, seed=cfg.seed)
        hist = getattr(method, "history", [])
        result["pretrain"][name] = {
            "seconds": time.perf_counter() - start,
            "config": method.config(),
            "final_loss": float(np.mean(hist[-20:])) if hist else None,
        }
        _log(f"[{family.name}] pretrained {name} in {time.perf_counter() - start:.1f}s")

    probe = RewardModel(*spaces, hidden_sizes=tuple(cfg.hidden_sizes))
    scorers = {t.id: Scorer(t, probe) for t in [*validation, *held]}
    result["reference_epic_no_goal_bonus"] = {t.id: no_bonus_reference(t, scorers[t.id]) for t in held}

    draws: dict[tuple[str, str, int, int], Objective] = {}

    def draw(task: GoalTask, coverage: str, k: int, seed: int) -> Objective:
        key = (task.id, coverage, k, seed)
        if key not in draws:
            data = collect_transitions(task, k, seed=seed, **COVERAGE_ARGS[coverage])
            draws[key] = make_loss("mse", data)
        return draws[key]

    for c_index, coverage in enumerate(cfg.coverages):
        names = [n for n in methods if c_index == 0 or n in cfg.coverage_methods]
        for name in names:
            method = methods[name]
            entry: dict[str, Any] = {"zero_shot": None, "k": {}}
            zero = [scorers[t.id](method.start_model(t)) for t in held]
            entry["zero_shot"] = {
                "epic": bootstrap_mean([e for e, _ in zero], cfg.n_boot, cfg.seed),
                "mse": bootstrap_mean([m for _, m in zero], cfg.n_boot, cfg.seed),
            }
            for k in cfg.ks:
                start = time.perf_counter()
                val_seed = 50_000 + 1000 * c_index
                sel = select_budget(
                    method,
                    [(t, t) for t in validation],
                    k,
                    lambda model, task: scorers[task.id](model)[0],
                    seeds=[val_seed + s for s in range(cfg.validation_seeds)],
                    steps=list(cfg.select_steps) or None,
                    draw=lambda task, kk, seed, cov=coverage: draw(task, cov, kk, seed),
                )
                runs = [(t, s) for t in held for s in range(cfg.seeds)]
                targets = [draw(t, coverage, k, 1000 * s + 7) for t, s in runs]
                # a run whose loss diverges keeps its last finite weights (counted in "stopped_runs")
                models = method.adapt_many(targets, sel.budget, [t for t, _ in runs], on_divergence="stop")
                scores = [scorers[t.id](m) for m, (t, _) in zip(models, runs, strict=True)]
                epic = [e for e, _ in scores]
                entry["k"][str(k)] = {
                    "epic": bootstrap_mean(epic, cfg.n_boot, cfg.seed),
                    "mse": bootstrap_mean([m for _, m in scores], cfg.n_boot, cfg.seed),
                    "epic_runs": [round(e, 5) for e in epic],
                    "stopped_runs": sum("adaptation_stopped_at_step" in m.metadata for m in models),
                    "budget": sel.budget.to_dict(),
                    "validation_score": sel.score,
                    "validation_no_adapt_score": sel.no_adapt_score,
                    "seconds": time.perf_counter() - start,
                }
                _log(
                    f"[{family.name}] {coverage:7s} {name:20s} k={k:4d} EPIC {np.mean(epic):.3f} "
                    f"budget {sel.budget.steps}x{sel.budget.lr:g} {sel.budget.params} w={sel.budget.prior_weight:g} "
                    f"({time.perf_counter() - start:.1f}s)"
                )
            result["methods"].setdefault(coverage, {})[name] = entry
    summarize_family(cfg, result)
    result["seconds"] = time.perf_counter() - t0
    return result


def labels_to_threshold(entry: dict[str, Any], ks: Sequence[int], threshold: float) -> int | None:
    """Smallest k with mean EPIC <= threshold (0 if the zero-shot model meets it); None if no k does."""
    if entry["zero_shot"]["epic"]["mean"] <= threshold:
        return 0
    for k in sorted(ks):
        if entry["k"][str(k)]["epic"]["mean"] <= threshold:
            return int(k)
    return None


def summarize_family(cfg: Config, result: dict[str, Any]) -> None:
    """Add labels-to-threshold and scratch / method ratios to a family result."""
    summary: dict[str, Any] = {}
    for coverage, methods in result["methods"].items():
        l2t = {name: labels_to_threshold(e, cfg.ks, cfg.threshold) for name, e in methods.items()}
        scratch = methods.get("scratch")
        ratios: dict[str, Any] = {}
        for name, e in methods.items():
            row: dict[str, Any] = {"labels_to_threshold": l2t[name]}
            if scratch is not None:
                s, m = l2t.get("scratch"), l2t[name]
                if s is not None and m is not None:
                    row["scratch_over_method_labels"] = "inf (zero-shot)" if m == 0 else s / m
                elif s is None and m is not None:
                    # scratch never reached the threshold within max(ks): the ratio is at least this
                    row["scratch_over_method_labels_at_least"] = "inf (zero-shot)" if m == 0 else 2 * max(cfg.ks) / m
                row["scratch_over_method_epic"] = {
                    str(k): scratch["k"][str(k)]["epic"]["mean"] / max(e["k"][str(k)]["epic"]["mean"], 1e-12)
                    for k in cfg.ks
                }
            ratios[name] = row
        summary[coverage] = ratios
    result["summary"] = summary


# ------------------------------------------------------------------------------------------------ output
def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    import scipy

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rewardshare": rewardshare.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _atomic_json(path: Path, data: Any) -> None:
    # NaN is refused: a result file must be valid JSON for any reader
    atomic_write_json(path, data, allow_nan=False)


def plot(result: dict[str, Any], path: Path) -> None:
    """EPIC vs k per family (rows) and coverage (columns), one line per method with its 95% CI band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = result["families"]
    coverages = result["config"]["coverages"]
    colors = plt.get_cmap("tab10")
    ks = result["config"]["ks"]
    fig, axes = plt.subplots(
        len(families), len(coverages), figsize=(5.5 * len(coverages), 4 * len(families)), squeeze=False, sharey=True
    )
    for i, fam in enumerate(families):
        for j, cov in enumerate(coverages):
            ax = axes[i][j]
            for name, e in fam["methods"].get(cov, {}).items():
                mean = [e["k"][str(k)]["epic"]["mean"] for k in ks]
                lo = [e["k"][str(k)]["epic"]["ci_low"] for k in ks]
                hi = [e["k"][str(k)]["epic"]["ci_high"] for k in ks]
                color = colors(METHODS.index(name) if name in METHODS else len(METHODS))
                ax.plot(ks, mean, marker="o", ms=3, label=name, color=color)
                ax.fill_between(ks, lo, hi, color=color, alpha=0.15)
            ax.axhline(result["config"]["threshold"], color="k", ls=":", lw=1, label="threshold")
            ref = float(np.mean(list(fam["reference_epic_no_goal_bonus"].values())))
            ax.axhline(ref, color="grey", ls="--", lw=1, label="teacher without goal bonus")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{fam['family']} - {cov} labels")
            ax.set_xlabel("target labels k")
            if j == 0:
                ax.set_ylabel("EPIC to teacher (lower is better)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def print_table(result: dict[str, Any]) -> None:
    """Mean EPIC per method and k, labels-to-threshold and the scratch / method label ratio."""
    ks = result["config"]["ks"]
    for fam in result["families"]:
        for cov, methods in fam["methods"].items():
            print(
                f"\n{fam['family']}  coverage={cov}  (mean EPIC over {len(fam['held_out_tasks'])} held-out tasks x "
                f"{result['config']['seeds']} seeds; threshold {result['config']['threshold']})"
            )
            refs = list(fam.get("reference_epic_no_goal_bonus", {}).values())
            if refs:
                print(f"reference: the teacher without its goal bonus scores EPIC {np.mean(refs):.3f}")
            head = f"{'method':22s}{'k=0':>7s}" + "".join(f"{'k=' + str(k):>7s}" for k in ks) + "  L2T  scratch/L2T"
            print(head)
            for name, e in methods.items():
                row = f"{name:22s}{e['zero_shot']['epic']['mean']:7.3f}"
                row += "".join(f"{e['k'][str(k)]['epic']['mean']:7.3f}" for k in ks)
                s = fam["summary"][cov][name]
                ratio = s.get("scratch_over_method_labels", s.get("scratch_over_method_labels_at_least"))
                prefix = ">=" if "scratch_over_method_labels_at_least" in s else ""
                l2t = s["labels_to_threshold"]
                row += f"  {'>' + str(max(ks)) if l2t is None else l2t!s:>4}  "
                row += "-" if ratio is None else (f"{prefix}{ratio:.1f}" if isinstance(ratio, float) else str(ratio))
                print(row)


def parse_args(argv: list[str] | None) -> tuple[Config, Path, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Config()
    for f in dataclasses.fields(Config):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, tuple):
            kind = int if value and isinstance(value[0], int) else str
            parser.add_argument(flag, nargs="+", type=kind, default=None)
        else:
            parser.add_argument(flag, type=type(value), default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    parser.add_argument("--fresh", action="store_true", help="ignore stored family results")
    args = parser.parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for f in dataclasses.fields(Config):
        given = getattr(args, f.name)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(given, list) else given
    return Config(**values), args.out, args.fresh


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the result written to ``--out``."""
    torch.set_num_threads(1)
    cfg, out, fresh = parse_args(argv)
    parts = out.parent / (out.stem + "_parts")
    start = time.perf_counter()
    families = []
    for spec in cfg.families:
        part = parts / (spec.replace(":", "_") + ".json")
        if part.is_file() and not fresh:
            stored = json.loads(part.read_text())
            if stored.get("config_digest") == cfg.digest():
                _log(f"[{spec}] reusing the stored result {part}")
                families.append(stored["result"])
                continue
        res = run_family(cfg, spec)
        _atomic_json(part, {"config_digest": cfg.digest(), "result": res})
        families.append(res)
    result = {
        "benchmark": "fewshot_reward",
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "config": cfg.to_dict(),
        "machine": machine_info(),
        "families": families,
        "seconds": time.perf_counter() - start,
        "note": "seconds of a resumed run count only the families computed in it",
    }
    _atomic_json(out, result)
    plot(result, out.with_suffix(".png"))
    shutil.rmtree(parts, ignore_errors=True)
    print_table(result)
    print(f"\nwrote {out} and {out.with_suffix('.png')} in {result['seconds']:.0f}s")
    return result


if __name__ == "__main__":
    main()
