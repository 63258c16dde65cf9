"""Active queries: how many reward labels until a held-out goal's reward is learned, when the learner chooses them?

For each family (open 8x8, four rooms 9x9; the few-shot benchmark's split, :func:`rewardshare.experiments.fewshot.
family_split` with its default config, so the held-out goals are the same), every held-out goal and several seeds,
a learner asks the dense noiseless teacher (the few-shot benchmark's) one label at a time from the pool of every
(cell, action) pair of the grid, chosen by ``uniform`` / ``disagreement`` / ``information_gain``
(:mod:`rewardshare.rewardmodels.reuse.queries`), and conditions its posterior after each:

- ``bayes``: the exact posterior over goal cells (knows the teacher's reward family: the limit);
- ``latent`` (``--latent``): a :class:`~rewardshare.rewardmodels.reuse.LatentTask` pre-trained on the split's source
  goals with the few-shot benchmark's settings (one pre-training seed), its posterior = the modes of its inference.

Per run (goal x seed) it records the EPIC distance of the posterior-mean reward to the teacher after every label, the
labels until EPIC <= 0.2 and <= 0.1, and (bayes) the labels until the posterior gives the true goal probability
>= 0.95 (the MAP goal is then right with that probability). Reported: the median with a hierarchical bootstrap CI
(goals resampled, then seeds within goals) and the mean. A run that does not get there within ``max_labels`` counts
as ``inf`` (shown as ">max").

    python benchmarks/active_queries.py                 # -> benchmarks/results/active_queries.json (+ units/)
    python benchmarks/active_queries.py --latent        # also the latent model (pre-trains one model per family)
    python benchmarks/active_queries.py --quick --out /tmp/active.json   # seconds: the test suite's smoke run

Finished units (family x posterior) are written atomically under ``<out stem>_units/`` with a digest of their
settings, so an interrupted run resumes.
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
from rewardshare.envs import GoalTask
from rewardshare.experiments.fewshot import family_split
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.experiments.stats import first_reaching, hierarchical_bootstrap
from rewardshare.feedback import Teacher, collect_transitions
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, grid_mdp, reward_tensor
from rewardshare.rewardmodels.reuse import make_method
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior, TeacherModel
from rewardshare.rewardmodels.reuse.queries import (
    STRATEGIES,
    Belief,
    GoalBelief,
    LabelPool,
    LatentBelief,
    active_feedback,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "active_queries.json"


@dataclass(frozen=True)
class Settings:
    """What a result means: fixed before any run and hashed into every unit."""

    families: tuple[str, ...] = ("open:8", "four_rooms:9")
    """Families as ``layout:size`` (split by the few-shot benchmark's default config)."""
    split_seed: int = 0
    """The pre-training seed of :func:`family_split` (the held-out goals do not depend on it)."""
    max_held_out: int | None = None
    """At most this many held-out goals per family (None: all)."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds per goal for the exact posterior (tie-breaking and the uniform choice)."""
    max_labels: int = 64
    """Labels per run at most."""
    thresholds: tuple[float, ...] = (0.2, 0.1)
    """EPIC thresholds."""
    identify: float = 0.95
    """Posterior probability of the true goal that counts as identified."""
    teachers: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "noiseless": {"reward": "dense"}, "mistakes": {"reward": "dense", "flip_prob": 0.1}})
    """Teachers by name: the few-shot benchmark's dense noiseless one, and one that flips 10% of its labels (B-Pref's
    "mistake"); the exact posterior models each exactly. The latent model is run with the first."""
    latent_seeds: tuple[int, ...] = (0,)
    """Seeds per goal for the latent model."""
    latent_max_labels: int = 16
    """Labels per latent run at most (each label is one inference)."""
    latent: dict[str, Any] = field(default_factory=lambda: {
        "hidden_sizes": (128, 128, 128), "steps": 6000, "lr": 2e-3, "items_per_task": 64, "embedding_dim": 8})
    """Pre-training settings of the latent model (the few-shot benchmark's)."""
    n_boot: int = 2000
    """Bootstrap resamples."""

    def digest(self, part: str, teacher: str) -> str:
        """A hash of everything unit (``part``, ``teacher``) depends on (not the other parts or teachers)."""
        data = asdict(self)
        data["teachers"] = data["teachers"][teacher]
        if part == "bayes":
            for key in ("latent_seeds", "latent_max_labels", "latent"):
                data.pop(key)
        return hashlib.sha256(json.dumps([part, data], sort_keys=True).encode()).hexdigest()[:16]


QUICK = Settings(families=("open:5",), max_held_out=2, seeds=(0, 1), max_labels=24, latent_seeds=(0,),
                 latent_max_labels=3, latent={"hidden_sizes": (32, 32), "steps": 200, "lr": 5e-3,
                                              "items_per_task": 32, "embedding_dim": 4, "infer_steps": 20},
                 n_boot=100)


NOTES = [
    "teachers: dense reward; 'noiseless' is the few-shot benchmark's teacher, 'mistakes' flips 10% of labels "
    "(B-Pref's mistake) without Gaussian noise; beta, myopia, equal and skip are at their defaults (they only act on "
    "preferences). The exact posterior models each teacher exactly.",
    "pool: every (free cell, action) pair of the grid, each asked at most once; the terminating env's done flag comes "
    "with each label (for the dense teacher it is implied by the +6 label).",
    "a run stops once EPIC <= min(thresholds) and (bayes) p(true goal) >= 0.99; median_epic_by_k holds a stopped run "
    "at its last value. inf (null in JSON, '>cap' in the table): not reached within the run's label cap.",
    "latent: one pre-training seed (the split's seed), the few-shot benchmark's settings; its hypotheses are the modes "
    "of its inference (before any label: the source latents), its label noise the source residual variance.",
]


# ------------------------------------------------------------------------------------------------------ runs
class Scorer:
    """EPIC of a belief's posterior-mean reward against one goal's teacher on every transition of the grid."""

    def __init__(self, task: GoalTask) -> None:
        self.mdp = grid_mdp(task)
        self.teacher = reward_tensor(Teacher(task).true_reward, self.mdp)
        self.pos = np.repeat(self.mdp.cells, 4, axis=0)
        self.action = np.tile(np.arange(4), len(self.mdp.cells))

    def __call__(self, belief: Belief) -> float:
        table = np.asarray(belief.reward(self.pos, self.action), dtype=np.float64).reshape(-1, 4)
        full = np.broadcast_to(table[:, :, None], (*table.shape, len(table)))  # a state-action reward ignores s'
        return float(epic_from_tensors(full, self.teacher, self.mdp))


def run_one(belief: Belief, task: GoalTask, teacher_kwargs: dict[str, Any], strategy: str, seed: int,
            max_labels: int, stop: float, goal_index: int | None) -> dict[str, list[float]]:
    """One active run: EPIC (and the true goal's probability) after 0..max_labels labels; stops early once EPIC
    <= ``stop`` and the goal is identified (the later labels change nothing the report reads)."""
    scorer = Scorer(task)
    pool = LabelPool.grid(task.resolve_layout())
    epic, p_goal = [scorer(belief)], []
    if goal_index is not None:
        p_goal.append(float(belief.weights[goal_index]))

    class Done(Exception):
        pass

    def on_query(k: int, b: Belief) -> None:
        epic.append(scorer(b))
        if goal_index is not None:
            p_goal.append(float(b.weights[goal_index]))
        identified = goal_index is None or p_goal[-1] >= 0.99
        if epic[-1] <= stop and identified:
            raise Done

    try:
        active_feedback(belief, Teacher(task, seed=seed, **teacher_kwargs), pool, max_labels, strategy, seed=seed,
                        on_query=on_query)
    except Done:
        pass
    return {"epic": [round(e, 5) for e in epic], "p_goal": [round(p, 6) for p in p_goal]}


def bayes_unit(settings: Settings, spec: str, teacher: dict[str, Any]) -> dict[str, Any]:
    """Every held-out goal x strategy x seed with the exact posterior (which models ``teacher`` exactly)."""
    split = family_split(FewShotConfig(max_held_out=settings.max_held_out), spec, settings.split_seed)
    layout = split.held_out[0].resolve_layout()
    model = TeacherModel(**teacher)
    runs: dict[str, Any] = {s: [] for s in STRATEGIES}
    for task in split.held_out:
        for strategy in STRATEGIES:
            for seed in settings.seeds:
                post = GoalPosterior(layout, model)
                goal = post.candidates.tolist().index(list(task.goal))
                run = run_one(GoalBelief(post), task, teacher, strategy, seed, settings.max_labels,
                              min(settings.thresholds), goal)
                runs[strategy].append({"goal": task.id, "seed": seed, **run})
        print(f"  [{spec} bayes] {task.id} done", flush=True)
    return {"runs": runs, "held_out": [t.id for t in split.held_out]}


def latent_unit(settings: Settings, spec: str, teacher: dict[str, Any]) -> dict[str, Any]:
    """The latent model pre-trained on the split's source goals, then every held-out goal x strategy x seed."""
    torch.set_num_threads(1)
    seed = settings.split_seed
    split = family_split(FewShotConfig(max_held_out=settings.max_held_out), spec, seed)
    env = split.source[0].make_env()
    pairs = 4 * (len(env.layout.free_cells) - 1)
    source = make_loss("mse", collect_transitions(list(split.source), pairs * len(split.source), coverage="uniform",
                                                  seed=seed))
    t0 = time.perf_counter()
    method = make_method("latent", env.observation_space, env.action_space, seed=seed, **settings.latent)
    method.pretrain(source, list(split.source), seed=seed)
    pretrain_seconds = time.perf_counter() - t0
    runs: dict[str, Any] = {s: [] for s in STRATEGIES}
    for task in split.held_out:
        for strategy in STRATEGIES:
            for run_seed in settings.latent_seeds:
                belief = LatentBelief(method, task, seed=run_seed)
                run = run_one(belief, task, teacher, strategy, run_seed, settings.latent_max_labels,
                              min(settings.thresholds), None)
                runs[strategy].append({"goal": task.id, "seed": run_seed, **run})
        print(f"  [{spec} latent] {task.id} done", flush=True)
    return {"runs": runs, "held_out": [t.id for t in split.held_out], "pretrain_seconds": round(pretrain_seconds, 1),
            "noise_variance": method.noise_variance}


# ------------------------------------------------------------------------------------------------------ report
def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def summarize(runs: list[dict[str, Any]], settings: Settings, identify: bool) -> dict[str, Any]:
    """Labels-to-threshold per run, summarised by a median with a hierarchical bootstrap CI and a mean."""
    metrics: dict[str, list[tuple[str, float]]] = {}
    for run in runs:
        ks = list(range(len(run["epic"])))
        for thr in settings.thresholds:
            metrics.setdefault(f"epic<={thr}", []).append((run["goal"], first_reaching(ks, run["epic"], thr)))
        if identify:
            k = first_reaching(ks, [-p for p in run["p_goal"]], -settings.identify)
            metrics.setdefault(f"p_goal>={settings.identify}", []).append((run["goal"], k))
    out = {}
    for name, values in metrics.items():
        groups: dict[str, list[float]] = {}
        for goal, v in values:
            groups.setdefault(goal, []).append(v)
        est = hierarchical_bootstrap(list(groups.values()), n_boot=settings.n_boot, seed=0)
        flat = np.array([v for _, v in values])
        out[name] = {"median": _num(est.value), "low": _num(est.low), "high": _num(est.high), "n": est.n,
                     "mean": _num(float(flat.mean())), "reached": float(np.isfinite(flat).mean())}
    longest = max(len(r["epic"]) for r in runs)
    padded = np.array([r["epic"] + [r["epic"][-1]] * (longest - len(r["epic"])) for r in runs])
    out["median_epic_by_k"] = {str(k): round(float(np.median(padded[:, k])), 4) for k in range(longest)}
    return out


def _fmt(est: dict[str, Any], cap: int) -> str:
    def k(x: float | None) -> str:
        return f">{cap}" if x is None else f"{x:g}"

    return f"{k(est['median'])} [{k(est['low'])}, {k(est['high'])}] mean {k(est['mean'])}"


def print_table(summary: dict[str, Any], settings: Settings) -> None:
    names = [f"epic<={t}" for t in settings.thresholds]
    head = ["family", "posterior/teacher", "strategy"] + [f"labels to EPIC<={t}" for t in settings.thresholds] + [
        f"labels to p(goal)>={settings.identify}"]
    rows = [head]
    for family, parts in summary.items():
        for part, by_strategy in parts.items():
            cap = settings.max_labels if part.startswith("bayes") else settings.latent_max_labels
            for strategy, entry in by_strategy.items():
                ident = entry.get(f"p_goal>={settings.identify}")
                rows.append([family, part, strategy] + [_fmt(entry[n], cap) for n in names] + [
                    _fmt(ident, cap) if ident else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    print("labels to EPIC / to identification: median [95% hierarchical bootstrap CI] mean")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (open 5x5, 2 goals, tiny latent model)")
    parser.add_argument("--latent", action="store_true", help="also the latent model (pre-trains one per family)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the result JSON (units go next to it)")
    parser.add_argument("--fresh", action="store_true", help="ignore finished units")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    latent = args.latent or args.quick
    units_dir = args.out.with_name(args.out.stem + "_units")
    start = time.perf_counter()
    summary: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    first = next(iter(settings.teachers))
    for spec in settings.families:
        units = [("bayes", name, bayes_unit) for name in settings.teachers]
        units += [("latent", first, latent_unit)] if latent else []
        for part, name, fn in units:
            path = units_dir / f"{spec.replace(':', '_')}_{part}_{name}.json"
            digest = settings.digest(part, name)
            unit = None
            if path.exists() and not args.fresh:
                stored = json.loads(path.read_text())
                unit = stored["result"] if stored.get("digest") == digest else None
            if unit is None:
                t0 = time.perf_counter()
                print(f"[{spec}] {part} / {name} teacher ...", flush=True)
                unit = fn(settings, spec, settings.teachers[name])
                unit["seconds"] = round(time.perf_counter() - t0, 1)
                atomic_write_json(path, {"digest": digest, "result": unit})
            key = f"{part}/{name}"
            raw.setdefault(spec, {})[key] = unit
            summary.setdefault(spec, {})[key] = {
                s: summarize(unit["runs"][s], settings, identify=part == "bayes") for s in STRATEGIES}
    result = {"settings": asdict(settings), "strategies": list(STRATEGIES), "notes": NOTES, "summary": summary,
              "held_out": {spec: next(iter(parts.values()))["held_out"] for spec, parts in raw.items()},
              "unit_seconds": {spec: {p: u.get("seconds") for p, u in parts.items()} for spec, parts in raw.items()},
              "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_json(args.out, result)
    print_table(summary, settings)
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
