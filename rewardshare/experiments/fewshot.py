"""The few-shot benchmark's pipeline: how much feedback does each reuse method need to learn a held-out goal's reward?

For every family ``layout:size`` and pre-training seed:

1. The ``train`` goals are split (seeded) into *source* goals and *validation* goals; ``held_out`` goals are never
   used for training or for choosing anything.
2. Every method is built from the registry (:func:`~rewardshare.rewardmodels.reuse.make_method`) and pre-trained on
   the source goals' reward labels (every (cell, action) pair of every source goal, labelled once by the dense
   teacher).
3. For each feedback kind and each ``k``: the method's adaptation budget is chosen on the validation goals with ``k``
   items (:func:`~rewardshare.rewardmodels.reuse.select_budget`, "no adaptation" always a candidate); then on every
   *run* (held-out goal x draw) the method adapts to the first ``k`` items of the run's feedback draw (the sets of a
   run are nested, so its EPIC-vs-k curve is one learner seeing more and more feedback) and is scored by EPIC
   against the teacher on every transition of the grid.
4. The exact Bayes posterior over goal cells (:class:`~rewardshare.rewardmodels.reuse.bayes.GoalPosterior`) sees the
   same draws: the ``bayes_oracle`` reference row.

One *unit* is (family, pre-training seed, method); each finished unit is written atomically to
``<out>/units/`` with a hash of the settings it depends on, so an interrupted run resumes where it stopped, and adding
a method reruns only that method. :mod:`.fewshot_report` turns the units into tables and plots.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardshare._atomic import atomic_write_json
from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.experiments.fewshot_config import BAYES, LOSS_OF_KIND, FewShotConfig
from rewardshare.feedback import (
    EnvOptions,
    Teacher,
    Transitions,
    collect_demonstrations,
    collect_preferences,
    collect_transitions,
)
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, grid_mdp, reward_tensor
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse import AdaptationBudget, ReuseMethod, make_method, select_budget
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior, TeacherModel

Dataset = Any  # Transitions | Preferences | Demonstrations


def _log(msg: str) -> None:
    print(msg, flush=True)


def stable_seed(*parts: Any) -> int:
    """A seed that depends only on ``parts`` (not on Python's hash randomisation)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


# ------------------------------------------------------------------------------------------------ the split
@dataclass(frozen=True)
class FamilySplit:
    """One family's goals for one pre-training seed.

    Attributes:
        family: The task family.
        source: Goals the methods pre-train on.
        validation: Train-split goals that choose adaptation budgets.
        held_out: The evaluated goals (the family's held-out split; the same for every seed).
    """

    family: TaskFamily
    source: tuple[GoalTask, ...]
    validation: tuple[GoalTask, ...]
    held_out: tuple[GoalTask, ...]


def family_split(cfg: FewShotConfig, spec: str, seed: int) -> FamilySplit:
    """The source / validation / held-out goals of family ``spec`` for pre-training seed ``seed``."""
    layout, size = spec.split(":")
    family = TaskFamily(layout, int(size), held_out_fraction=cfg.held_out_fraction, split_seed=cfg.split_seed)
    order = np.random.default_rng([seed, 11]).permutation(len(family.train))
    validation = tuple(family.train[i] for i in order[: cfg.n_validation])
    source = tuple(family.train[i] for i in sorted(order[cfg.n_validation:]))
    held = family.held_out
    if cfg.max_held_out is not None and cfg.max_held_out < len(held):
        pick = np.random.default_rng([cfg.split_seed, 13]).permutation(len(held))[: cfg.max_held_out]
        held = tuple(held[i] for i in sorted(pick))
    return FamilySplit(family, source, validation, held)


# ------------------------------------------------------------------------------------------------ feedback
def source_labels(split: FamilySplit, seed: int, goal_rows: bool = False) -> Objective:
    """What every method pre-trains on: per source goal, as many uniformly drawn reward labels as its grid has
    ``(cell, action)`` pairs, as one MSE objective (seeded by the pre-training seed); with ``goal_rows``, plus the
    four moves out of each source goal (:attr:`FewShotConfig.source_goal_rows`)."""
    env = split.source[0].make_env()
    pairs = 4 * (len(env.layout.free_cells) - 1)
    data = collect_transitions(list(split.source), pairs * len(split.source), coverage="uniform", seed=seed)
    if goal_rows:
        # every (cell, action) pair once on the absorbing-goal grid, of which the goal's own four moves
        every = collect_transitions(list(split.source), (pairs + 4) * len(split.source), coverage="uniform",
                                    seed=seed, env=EnvOptions(absorbing_goal=True))
        goal_of = {t.id: t.goal for t in split.source}
        goals = np.array([goal_of[str(t)] for t in every.task_id], dtype=np.int64)
        data = Transitions.concatenate([data, every.select(np.flatnonzero((every.agent_pos == goals).all(axis=1)))])
    return make_loss("mse", data)


def draw_feedback(cfg: FewShotConfig, kind: str, task: GoalTask, n: int, seed: int) -> Dataset:
    """``n`` items of feedback ``kind`` from the dense noiseless teacher, in a seeded random order (so prefixes are
    random subsets)."""
    if kind == "labels":
        data = collect_transitions(task, n, coverage="uniform", seed=seed)
    elif kind == "preferences":
        data = collect_preferences(task, n, segment_length=cfg.segment_length, seed=seed)
    else:
        data = collect_demonstrations(task, n_episodes=n, seed=seed)
    return data.select(np.random.default_rng(seed).permutation(len(data)))


class Pools:
    """Feedback draws, each collected once at its largest size; ``prefix(k)`` gives nested subsets."""

    def __init__(self, cfg: FewShotConfig) -> None:
        self.cfg = cfg
        self._pools: dict[tuple[str, str, int], Dataset] = {}

    def get(self, kind: str, task: GoalTask, seed: int) -> Dataset:
        """The whole draw of ``kind`` for ``task`` under ``seed`` (``max(ks)`` items)."""
        key = (kind, task.id, seed)
        if key not in self._pools:
            self._pools[key] = draw_feedback(self.cfg, kind, task, max(self.cfg.ks_for(kind)), seed)
        return self._pools[key]

    def prefix(self, kind: str, task: GoalTask, seed: int, k: int) -> Dataset:
        """The first ``k`` items of the draw."""
        return self.get(kind, task, seed).select(np.arange(k))


def objective_of(cfg: FewShotConfig, kind: str, data: Dataset) -> Objective:
    """The objective a method learns feedback ``kind`` with (see :data:`LOSS_OF_KIND`)."""
    if kind == "demonstrations":
        return make_loss(LOSS_OF_KIND[kind], data, iterations=cfg.irl_iterations)
    return make_loss(LOSS_OF_KIND[kind], data)


# ------------------------------------------------------------------------------------------------ scoring
class Scorer:
    """EPIC of a reward against one goal's teacher on every transition of its grid (the teacher's tensor cached)."""

    def __init__(self, task: GoalTask, probe: RewardModel) -> None:
        self.mdp = grid_mdp(task, probe)
        self.teacher = reward_tensor(Teacher(task).true_reward, self.mdp)

    def __call__(self, reward: RewardModel | Callable[..., np.ndarray]) -> float:
        return float(epic_from_tensors(reward_tensor(reward, self.mdp), self.teacher, self.mdp))


def _finite(x: float) -> float | None:
    return round(x, 5) if np.isfinite(x) else None


# ------------------------------------------------------------------------------------------------ units
def build_method(cfg: FewShotConfig, name: str, spaces: tuple[Any, Any], split: FamilySplit, seed: int) -> ReuseMethod:
    """Method ``name`` from the registry with the config's settings (and the grid size for goal conditioning)."""
    settings = dict(cfg.settings.get(name, {}))
    settings["hidden_sizes"] = tuple(settings.get("hidden_sizes", cfg.hidden_sizes))
    if name == "goal_conditioned":
        layout = split.source[0].resolve_layout()
        settings.update(height=layout.height, width=layout.width)
    return make_method(name, *spaces, seed=seed, **settings)


def _runs(cfg: FewShotConfig, split: FamilySplit, seed: int) -> list[tuple[GoalTask, int]]:
    """(held-out goal, draw seed) of every run; the draw seeds do not depend on the method (runs are paired)."""
    return [(g, stable_seed("run", g.id, seed, d)) for g in split.held_out for d in range(cfg.draws)]


def run_method_unit(cfg: FewShotConfig, spec: str, seed: int, name: str) -> dict[str, Any]:
    """Pre-train method ``name`` on family ``spec`` with ``seed`` and evaluate it on every run, kind and ``k``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    split = family_split(cfg, spec, seed)
    env = split.source[0].make_env()
    spaces = (env.observation_space, env.action_space)
    source = source_labels(split, seed, cfg.source_goal_rows)
    method = build_method(cfg, name, spaces, split, seed)
    method.pretrain(source, list(split.source), seed=seed)
    pretrain_seconds = time.perf_counter() - start
    probe = RewardModel(*spaces, hidden_sizes=(4,))
    scorers = {t.id: Scorer(t, probe) for t in (*split.validation, *split.held_out, *split.source)}
    pools = Pools(cfg)
    runs = _runs(cfg, split, seed)
    out: dict[str, Any] = {"method": name, "family": split.family.name, "seed": seed, "config": method.config(),
                           "runs": [[g.id, s] for g, s in runs], "kinds": {}, "pretrain_seconds": pretrain_seconds}
    kinds = [k for k in cfg.feedback if name in cfg.methods_for(k)]
    last_budget: AdaptationBudget | None = None
    for kind in kinds:
        entry: dict[str, Any] = {"epic": {}, "budget": {}}
        val_seeds = [stable_seed("validation", seed, i) for i in range(cfg.validation_draws)]
        for k in cfg.ks_for(kind):
            t0 = time.perf_counter()
            if k == 0:
                models = [method.start_model(g) for g, _ in runs]
            else:
                sel = select_budget(
                    method, [(t, t) for t in split.validation], k,
                    lambda model, task: scorers[task.id](model),
                    seeds=val_seeds, steps=list(cfg.select_steps) or None,
                    draw=lambda task, kk, s, kind=kind: objective_of(cfg, kind, pools.prefix(kind, task, s, kk)),
                )
                targets = [objective_of(cfg, kind, pools.prefix(kind, g, s, k)) for g, s in runs]
                models = method.adapt_many(targets, sel.budget, [g for g, _ in runs], on_divergence="stop")
                entry["budget"][str(k)] = sel.budget.to_dict()
                if kind == "labels":
                    last_budget = sel.budget
            epic = [scorers[g.id](m) for m, (g, _) in zip(models, runs, strict=True)]
            entry["epic"][str(k)] = [_finite(e) for e in epic]
            _log(f"[{split.family.name} s{seed}] {name:16s} {kind:14s} k={k:4d} median EPIC {np.median(epic):.3f} "
                 f"({time.perf_counter() - t0:.1f}s)")
        out["kinds"][kind] = entry
    out["source_fit"] = _source_fit(cfg, method, split, source, scorers, last_budget)
    out["seconds"] = time.perf_counter() - start
    return out


def _source_fit(
    cfg: FewShotConfig, method: ReuseMethod, split: FamilySplit, source: Objective, scorers: dict[str, Scorer],
    budget: AdaptationBudget | None,
) -> list[float | None]:
    """EPIC on source goals (capacity): a per-task method's own source model; else the method adapted to the whole
    label table of the source goal with its largest-k budget."""
    tasks = split.source[: cfg.n_source_fit]
    if hasattr(method, "task_model"):
        models = [method.task_model(t) for t in tasks]  # type: ignore[attr-defined]
    else:
        index = source.items["task_index"]
        targets = [source.subset(index == source.task_ids.index(t.id)) for t in tasks]
        models = method.adapt_many(targets, budget or AdaptationBudget(steps=300, lr=1e-3), list(tasks),
                                   on_divergence="stop")
    return [_finite(scorers[t.id](m)) for m, t in zip(models, tasks, strict=True)]


def run_bayes_unit(cfg: FewShotConfig, spec: str, seed: int) -> dict[str, Any]:
    """The exact posterior over the family's goal cells on the same runs and draws as the methods."""
    start = time.perf_counter()
    split = family_split(cfg, spec, seed)
    layout = split.source[0].resolve_layout()
    probe_env = split.source[0].make_env()
    probe = RewardModel(probe_env.observation_space, probe_env.action_space, hidden_sizes=(4,))
    scorers = {t.id: Scorer(t, probe) for t in split.held_out}
    pools = Pools(cfg)
    runs = _runs(cfg, split, seed)
    out: dict[str, Any] = {"method": BAYES, "family": split.family.name, "seed": seed,
                           "runs": [[g.id, s] for g, s in runs], "kinds": {}, "source_fit": None}
    for kind in cfg.feedback:
        entry: dict[str, Any] = {"epic": {}, "entropy": {}}
        posts = []
        for g, s in runs:
            data = pools.get(kind, g, s)
            posts.append(GoalPosterior(layout, TeacherModel.from_metadata(data.metadata)))
        for k in cfg.ks_for(kind):
            epic, ent = [], []
            for post, (g, s) in zip(posts, runs, strict=True):
                post.reset()
                if k:
                    post.update(pools.prefix(kind, g, s, k))
                epic.append(scorers[g.id](post.reward))
                ent.append(post.entropy())
            entry["epic"][str(k)] = [_finite(e) for e in epic]
            entry["entropy"][str(k)] = [round(h, 4) for h in ent]
        out["kinds"][kind] = entry
        _log(f"[{split.family.name} s{seed}] {BAYES:16s} {kind:14s} done")
    out["seconds"] = time.perf_counter() - start
    return out


def _unit_path(root: Path, spec: str, seed: int, method: str) -> Path:
    return root / "units" / f"{spec.replace(':', '_')}_s{seed}_{method}.json"


def _execute(cfg_dict: dict[str, Any], spec: str, seed: int, method: str, root: str) -> str:
    cfg = FewShotConfig.from_dict(cfg_dict)
    result = run_bayes_unit(cfg, spec, seed) if method == BAYES else run_method_unit(cfg, spec, seed, method)
    path = _unit_path(Path(root), spec, seed, method)
    atomic_write_json(path, {"digest": cfg.unit_digest(method), "result": result}, allow_nan=False)
    return str(path)


def load_unit(cfg: FewShotConfig, path: Path, method: str) -> dict[str, Any] | None:
    """A stored unit's result if it was produced under the current settings, else ``None``."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # an unreadable unit is recomputed (units are written atomically; this is a foreign file)
    return stored["result"] if stored.get("digest") == cfg.unit_digest(method) else None


def planned_units(cfg: FewShotConfig) -> list[tuple[str, int, str]]:
    """Every (family, seed, method) unit of the config, Bayes reference first (it is the cheapest)."""
    methods = [BAYES] + [m for m in dict.fromkeys(m for kind in cfg.feedback for m in cfg.methods_for(kind))
                         if m != BAYES]
    return [(spec, seed, m) for m in methods for spec in cfg.families for seed in cfg.pretrain_seeds]


def stored_units(cfg: FewShotConfig, out: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[tuple]]:
    """The units of ``cfg`` already stored under ``out`` (produced under the same settings) and the missing ones.

    Returns:
        ``(results, missing)``: the stored unit results, and the ``(family, seed, method)`` of every other unit.
    """
    results, missing = [], []
    for spec, seed, method in planned_units(cfg):
        stored = load_unit(cfg, _unit_path(Path(out), spec, seed, method), method)
        if stored is None:
            missing.append((spec, seed, method))
        else:
            results.append(stored)
    return results, missing


def run_fewshot(cfg: FewShotConfig, out: str | os.PathLike[str], fresh: bool = False) -> list[dict[str, Any]]:
    """Run (or resume) every unit of ``cfg`` under ``out``; returns the unit results.

    Args:
        cfg: The benchmark settings.
        out: Results directory (``units/`` holds one JSON per finished unit).
        fresh: Recompute units even when a stored one matches.
    """
    root = Path(out)
    todo, done = [], {}
    for spec, seed, method in planned_units(cfg):
        stored = None if fresh else load_unit(cfg, _unit_path(root, spec, seed, method), method)
        if stored is None:
            todo.append((spec, seed, method))
        else:
            done[(spec, seed, method)] = stored
    _log(f"few-shot: {len(done)} stored units reused, {len(todo)} to run with {cfg.workers} worker(s)")
    args = [(cfg.to_dict(), spec, seed, method, str(root)) for spec, seed, method in todo]
    if cfg.workers == 1 or len(args) <= 1:
        for a in args:
            _execute(*a)
    else:
        with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
            for f in [pool.submit(_execute, *a) for a in args]:
                f.result()
    results = []
    for spec, seed, method in planned_units(cfg):
        stored = done.get((spec, seed, method)) or load_unit(cfg, _unit_path(root, spec, seed, method), method)
        if stored is None:
            raise RuntimeError(f"unit {spec} seed {seed} {method} has no result after running")
        results.append(stored)
    return results


__all__: Sequence[str] = ("FamilySplit", "Pools", "Scorer", "build_method", "draw_feedback", "family_split",
                          "load_unit", "planned_units", "run_bayes_unit", "run_fewshot", "run_method_unit",
                          "source_labels", "stable_seed", "stored_units")
