"""Interactive vs offline feedback at equal budget: does asking about the agent's own behaviour during training beat
asking about uniformly drawn transitions before it?

On the open 8x8 room (the few-shot benchmark's split, :func:`rewardshare.experiments.fewshot.family_split`, so the
held-out goals are the same), for every held-out goal (up to ``max_held_out``), agent seed and budget ``k`` of reward
labels from the dense noiseless teacher, PPO is trained twice per reward method (``scratch``, and ``latent``
pre-trained on the split's source goals with the few-shot benchmark's settings, as ``benchmarks/active_queries.py``
does):

- ``offline`` (today's path): ``k`` uniform labels (every (cell, action) pair equally often) are collected, the method
  adapts to them (``method.adapt``), and PPO trains on the adapted model;
- ``interactive``: PPO starts on the method's start model, and every ``every`` env steps
  (:class:`rewardshare.agents.InteractiveFeedback`) the teacher labels transitions drawn uniformly from the agent's
  last ``every`` steps, ``k`` in all spread evenly over the rounds; each round the method adapts to all labels so far.

Adaptation budgets (steps, lr) are chosen per method and per number of labels on the split's validation goals with
uniform labels (:func:`~rewardshare.rewardmodels.reuse.select_budget`, scored by EPIC, "no adaptation" always a
candidate); an interactive round with ``n`` labels so far uses the budget chosen for ``n``. A ``teacher`` reference
(PPO on the teacher's noiseless dense reward: the best a learned reward can do) runs on the same goals and seeds.

Per run: the success curve on the true reward (eval episodes on separate envs), the env steps until success >= 0.9
(``inf`` if never), the normalised area under the success curve (AUC), and the EPIC distance of the final reward model
to the teacher. Reported: medians with hierarchical bootstrap CIs (goals, then seeds), and per method the paired
difference interactive - offline in AUC.

    python benchmarks/interactive_feedback.py            # -> benchmarks/results/interactive_feedback.json (+ units/)
    python benchmarks/interactive_feedback.py --quick --out /tmp/interactive.json   # about a minute

Finished units (method x k, both conditions) are written atomically under ``<out stem>_units/`` with a digest of
their settings, so an interrupted run resumes; pre-training is redone once per process for unfinished latent units.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardshare._atomic import atomic_write_json
from rewardshare.agents import InteractiveFeedback, LearningCurve, train_agent
from rewardshare.envs import GoalTask
from rewardshare.experiments.fewshot import FamilySplit, Scorer, family_split, stable_seed
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.experiments.stats import hierarchical_bootstrap, steps_to_threshold, success_auc
from rewardshare.feedback import Teacher, collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget, ReuseMethod, make_method, select_budget

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "interactive_feedback.json"
CONDITIONS: tuple[str, ...] = ("offline", "interactive")


@dataclass(frozen=True)
class Settings:
    """What a result means: fixed before any run and hashed into every unit."""

    family: str = "open:8"
    """The family as ``layout:size``, split by the few-shot benchmark's default config."""
    split_seed: int = 0
    """The pre-training seed of :func:`family_split` (source / validation goals; the held-out goals are fixed)."""
    max_held_out: int | None = 6
    """At most this many held-out goals (the few-shot benchmark's seeded pick)."""
    seeds: tuple[int, ...] = (0, 1)
    """Agent seeds per goal (also seed the feedback draws)."""
    ks: tuple[int, ...] = (8, 32)
    """Label budgets."""
    methods: tuple[str, ...] = ("scratch", "latent")
    """Reward methods (registry names)."""
    total_timesteps: int = 10240
    """PPO env steps per run (10 rollouts of 8 x 128)."""
    every: int = 2048
    """Env steps between interactive rounds (2 PPO rollouts): rounds at 2048, 4096, 6144, 8192."""
    eval_every: int = 1024
    """Env steps between evaluations."""
    eval_episodes: int = 10
    """Episodes per evaluation (the same starts at every evaluation; evaluation dominates a run's time)."""
    success: float = 0.9
    """Success rate that counts as solved."""
    hidden_sizes: tuple[int, ...] = (128, 128, 128)
    """Reward-network widths of both methods (the few-shot benchmark's)."""
    latent: dict[str, Any] = field(default_factory=lambda: {"steps": 6000, "lr": 2e-3, "items_per_task": 64,
                                                            "embedding_dim": 8})
    """Pre-training settings of the latent method (the few-shot benchmark's)."""
    select_steps: tuple[int, ...] = (0, 10, 30, 100, 300)
    """Step counts budget selection tries."""
    selection_seeds: tuple[int, ...] = (0,)
    """Feedback draws per validation goal in budget selection."""
    max_widen: int = 1
    """Widenings of the step / lr grid when the winner is on its edge (see ``select_budget``)."""
    teacher_reference: bool = True
    """Also train on the teacher's noiseless dense reward."""
    n_boot: int = 2000
    """Bootstrap resamples."""

    def digest(self, part: str) -> str:
        """A hash of everything unit ``part`` depends on."""
        return hashlib.sha256(json.dumps([part, asdict(self)], sort_keys=True).encode()).hexdigest()[:16]


QUICK = Settings(family="open:5", max_held_out=2, seeds=(0,), ks=(6,), total_timesteps=2048, every=512,
                 eval_every=512, eval_episodes=4, hidden_sizes=(32, 32),
                 latent={"steps": 200, "lr": 5e-3, "items_per_task": 32, "embedding_dim": 4, "infer_steps": 20},
                 select_steps=(0, 30), n_boot=100)

NOTES = [
    "teacher: dense, noiseless (the few-shot benchmark's). offline labels: uniform coverage (every (cell, action) "
    "pair equally often, the rest distinct random pairs); interactive labels: drawn uniformly from the agent's last "
    "`every` env steps (its own transitions, one-hot policy observations, the reward model reads coords).",
    "the interactive agent trains on the method's start model until the first round (scratch: a random network; "
    "latent: its zero-shot model); the offline agent has all k labels from step 0.",
    "budgets: chosen per method and label count on the validation goals with uniform labels (an interactive round "
    "uses the budget of its label count so far); ties go to fewer steps.",
    "steps_to_success: inf (null in JSON) when the success threshold is not reached within total_timesteps.",
]


# ------------------------------------------------------------------------------------------------------ runs
def round_counts(settings: Settings, k: int) -> list[int]:
    """Labels held after each interactive round (the callback's even split, extra labels first)."""
    n = len(InteractiveFeedback(every=settings.every, budget=k).planned_rounds(settings.total_timesteps))
    held, left = [], k
    for r in range(n):
        left -= math.ceil(left / (n - r))
        held.append(k - left)
    return held


def build(settings: Settings, name: str, split: FamilySplit) -> ReuseMethod:
    """Method ``name``, pre-trained on the split's source goals (uniform labels, as the few-shot benchmark does)."""
    env = split.source[0].make_env()
    extra = settings.latent if name == "latent" else {}
    method = make_method(name, env.observation_space, env.action_space, seed=settings.split_seed,
                         hidden_sizes=tuple(settings.hidden_sizes), **extra)
    if name != "scratch":
        pairs = 4 * (len(env.layout.free_cells) - 1)
        source = make_loss("mse", collect_transitions(list(split.source), pairs * len(split.source),
                                                      coverage="uniform", seed=settings.split_seed))
        method.pretrain(source, list(split.source), seed=settings.split_seed)
    return method


def choose_budgets(settings: Settings, method: ReuseMethod, split: FamilySplit, ks: list[int],
                   scorers: dict[str, Scorer], known: dict[int, AdaptationBudget]) -> dict[int, AdaptationBudget]:
    """The adaptation budget for each label count, chosen on the validation goals with uniform labels (``known``:
    the counts already chosen for this method, updated)."""
    for k in ks:
        if k in known:
            continue
        sel = select_budget(
            method, [(t, t) for t in split.validation], k, lambda m, task: scorers[task.id](m),
            steps=list(settings.select_steps), seeds=list(settings.selection_seeds), max_widen=settings.max_widen,
            draw=lambda task, kk, s: make_loss("mse", collect_transitions(task, kk, coverage="uniform",
                                                                          seed=stable_seed("val", task.id, s))),
        )
        known[k] = sel.budget
    return {k: known[k] for k in ks}


def _curve_stats(settings: Settings, curve: LearningCurve) -> dict[str, Any]:
    steps, reached = steps_to_threshold(curve.timesteps, curve.success_rate, settings.success)
    return {"timesteps": curve.timesteps, "success": [round(s, 4) for s in curve.success_rate],
            "steps_to_success": steps if reached else None,
            "auc": round(success_auc(curve.timesteps, curve.success_rate), 5),
            "final_success": curve.success_rate[-1]}


def run_pair(settings: Settings, method: ReuseMethod, budgets: dict[int, AdaptationBudget], task: GoalTask,
             seed: int, k: int, scorer: Scorer) -> dict[str, Any]:
    """One goal and seed: the offline and the interactive run at budget ``k``."""
    draw = stable_seed("run", task.id, seed, k)
    common = dict(total_timesteps=settings.total_timesteps, seed=seed, eval_every=settings.eval_every,
                  eval_episodes=settings.eval_episodes)
    data = collect_transitions(task, k, coverage="uniform", seed=draw)
    model = method.adapt(make_loss("mse", data), budgets[k], task, on_divergence="stop")
    offline = {**_curve_stats(settings, train_agent("ppo", task, model, **common)), "epic": round(scorer(model), 5)}
    rounds: list[dict[str, Any]] = []

    def on_round(t: int, m: RewardModel, d: Any) -> None:
        rounds.append({"timesteps": t, "labels": len(d), "epic": round(scorer(m), 5)})

    opts = InteractiveFeedback(every=settings.every, budget=k, adaptation=budgets, method=method,
                               teacher=Teacher(task, seed=draw), on_round=on_round)
    curve = train_agent("ppo", task, method.start_model(task), **common, interactive=opts)
    inter = {**_curve_stats(settings, curve), "epic": rounds[-1]["epic"] if rounds else None, "rounds": rounds,
             "queries_used": curve.metadata["interactive"]["queries_used"]}
    return {"goal": task.id, "seed": seed, "offline": offline, "interactive": inter}


def method_unit(settings: Settings, name: str, k: int, cache: dict[str, Any]) -> dict[str, Any]:
    """Every held-out goal x seed, offline and interactive, for method ``name`` at budget ``k``."""
    split, scorers = cache["split"], cache["scorers"]
    if name not in cache:
        t0 = time.perf_counter()
        cache[name] = build(settings, name, split)
        cache[f"{name}_pretrain_seconds"] = round(time.perf_counter() - t0, 1)
    method = cache[name]
    counts = sorted({*round_counts(settings, k), k})
    budgets = choose_budgets(settings, method, split, counts, scorers, cache.setdefault(f"{name}_budgets", {}))
    runs = []
    for task in split.held_out:
        for seed in settings.seeds:
            runs.append(run_pair(settings, method, budgets, task, seed, k, scorers[task.id]))
        print(f"  [{name} k={k}] {task.id} done", flush=True)
    return {"runs": runs, "budgets": {str(n): b.to_dict() for n, b in budgets.items()},
            "pretrain_seconds": cache.get(f"{name}_pretrain_seconds")}


def teacher_unit(settings: Settings, name: str, k: int, cache: dict[str, Any]) -> dict[str, Any]:
    """The reference: PPO on the teacher's noiseless dense reward, same goals and seeds."""
    runs = []
    for task in cache["split"].held_out:
        for seed in settings.seeds:
            curve = train_agent("ppo", task, "teacher", total_timesteps=settings.total_timesteps, seed=seed,
                                eval_every=settings.eval_every, eval_episodes=settings.eval_episodes)
            runs.append({"goal": task.id, "seed": seed, "teacher": _curve_stats(settings, curve)})
    return {"runs": runs}


# ------------------------------------------------------------------------------------------------------ report
def _est(runs: list[dict[str, Any]], value: Any, n_boot: int) -> dict[str, Any]:
    groups: dict[str, list[float]] = {}
    for r in runs:
        v = value(r)
        groups.setdefault(r["goal"], []).append(math.inf if v is None else float(v))
    est = hierarchical_bootstrap(list(groups.values()), n_boot=n_boot, seed=0)
    fin = lambda x: x if math.isfinite(x) else None  # noqa: E731
    return {"median": fin(est.value), "low": fin(est.low), "high": fin(est.high), "n": est.n}


def summarize(unit: dict[str, Any], settings: Settings, conditions: tuple[str, ...]) -> dict[str, Any]:
    """Per condition: steps to success, AUC, final success, EPIC; and the paired AUC difference."""
    runs, n_boot = unit["runs"], settings.n_boot
    out: dict[str, Any] = {}
    for c in conditions:
        out[c] = {"steps_to_success": _est(runs, lambda r, c=c: r[c]["steps_to_success"], n_boot),
                  "auc": _est(runs, lambda r, c=c: r[c]["auc"], n_boot),
                  "reached": float(np.mean([r[c]["steps_to_success"] is not None for r in runs])),
                  "final_success_mean": float(np.mean([r[c]["final_success"] for r in runs]))}
        if "epic" in runs[0][c]:
            out[c]["epic"] = _est(runs, lambda r, c=c: r[c]["epic"], n_boot)
    if conditions == CONDITIONS:
        out["auc_interactive_minus_offline"] = _est(
            runs, lambda r: r["interactive"]["auc"] - r["offline"]["auc"], n_boot)
    return out


def _fmt(e: dict[str, Any] | None, digits: int = 3) -> str:
    if e is None:
        return "-"
    f = lambda x: "inf" if x is None else f"{x:.{digits}g}"  # noqa: E731
    return f"{f(e['median'])} [{f(e['low'])}, {f(e['high'])}]"


def print_table(summary: dict[str, Any]) -> None:
    head = ["k", "method", "condition", "steps to 0.9 success", "reached", "success AUC", "final EPIC"]
    rows = [head]
    for key, parts in summary.items():
        k, name = key.split("/")
        for cond, s in parts.items():
            if cond.startswith("auc_"):
                rows.append([k, name, "inter - off", "", "", _fmt(s), ""])
                continue
            rows.append([k, name, cond, _fmt(s["steps_to_success"], 4), f"{s['reached']:.2f}", _fmt(s["auc"]),
                         _fmt(s.get("epic"))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    print("median [95% hierarchical bootstrap CI over goals, then seeds]")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (open 5x5, 2 goals, k=6, tiny models)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the result JSON (units go next to it)")
    parser.add_argument("--fresh", action="store_true", help="ignore finished units")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    torch.set_num_threads(1)
    units_dir = args.out.with_name(args.out.stem + "_units")
    start = time.perf_counter()
    split = family_split(FewShotConfig(max_held_out=settings.max_held_out), settings.family, settings.split_seed)
    probe = RewardModel(*(lambda e: (e.observation_space, e.action_space))(split.source[0].make_env()),
                        hidden_sizes=(4,))
    cache: dict[str, Any] = {"split": split,
                             "scorers": {t.id: Scorer(t, probe) for t in (*split.validation, *split.held_out)}}
    plan = [(f"{k}/{name}", name, k, method_unit) for k in settings.ks for name in settings.methods]
    if settings.teacher_reference:
        plan.append(("-/teacher", "teacher", 0, teacher_unit))
    summary: dict[str, Any] = {}
    units: dict[str, Any] = {}
    for key, name, k, fn in plan:
        path = units_dir / f"{key.replace('/', '_').replace('-', 'ref')}.json"
        digest = settings.digest(key)
        unit = None
        if path.exists() and not args.fresh:
            stored = json.loads(path.read_text())
            unit = stored["result"] if stored.get("digest") == digest else None
        if unit is None:
            t0 = time.perf_counter()
            print(f"[{settings.family}] {key} ...", flush=True)
            unit = fn(settings, name, k, cache)
            unit["seconds"] = round(time.perf_counter() - t0, 1)
            atomic_write_json(path, {"digest": digest, "result": unit})
        units[key] = unit
        summary[key] = summarize(unit, settings, ("teacher",) if name == "teacher" else CONDITIONS)
    result = {"settings": asdict(settings), "notes": NOTES, "held_out": [t.id for t in split.held_out],
              "summary": summary, "budgets": {key: u.get("budgets") for key, u in units.items() if "budgets" in u},
              "unit_seconds": {key: u.get("seconds") for key, u in units.items()},
              "seconds": round(time.perf_counter() - start, 1),
              "command": "python benchmarks/interactive_feedback.py" + (" --quick" if args.quick else "")}
    atomic_write_json(args.out, result)
    print_table(summary)
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
