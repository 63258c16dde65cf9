"""Which pre-training change lets the latent-task model fit its own source goals, and lowers its representation cap?

The few-shot benchmark asks every reuse method to fit its *source* goals to EPIC <= 0.05 on every layout. The latent
model (:class:`~rewardshare.rewardmodels.reuse.LatentTask`, the few-shot ``full`` profile's ``latent`` settings)
does so on the open room but not on four rooms or the maze, and on the maze even the network at the *oracle latent*
(the one inferred from a validation goal's whole label table) is far from the goal, so the representation caps what
any inference can reach (``benchmarks/latent_diagnosis.py``). This script changes one pre-training setting at a time
(more steps, a cosine learning-rate decay, a larger latent, more items per step, wider or deeper networks), then
combinations, and measures for each:

- **source fit**: EPIC of the method's own model of each of the first ``n_source_fit`` source goals against its
  teacher, exactly as the few-shot benchmark's ``_source_fit`` does (median over the goals);
- **oracle EPIC**: EPIC of the network at the oracle latent on each validation goal of the train split, exactly as
  ``latent_diagnosis.py`` does (median over the goals). Held-out goals are never used;
- **pre-training seconds** on one thread (the cost; ``seconds_ratio`` divides by the ``baseline`` configuration's
  seconds on the same family and seed);
- both EPICs again with the model's rewards of the four transitions *out of the goal cell* replaced by the
  teacher's (``*_goal_row_fixed``). The source labels (every (cell, action) pair of a goal, episodes ending at the
  goal) never contain those transitions (the teacher's reward there is 0, the goal absorbs), yet EPIC scores every
  transition of the grid and its canonicalisation reads the goal cell's mean reward on every transition into the
  goal: an extrapolation no label constrains. The gap between the two columns is that extrapolation's share.

One configuration changes the data instead of the optimisation: ``goal_rows`` adds to every source goal's labels
the four transitions out of its goal cell (labelled 0 by the teacher, collected with an absorbing goal, ``done``
false), so the network learns what the teacher says there.

Every (configuration, family, seed) measurement is written as soon as it finishes and is reused by a later run with
``--resume`` when its settings are unchanged, so configurations can be added one at a time and the final command
lists them all.

Run: ``python benchmarks/latent_capacity.py --resume`` (the default configurations on four rooms 9x9 and the maze
9x9, pre-training seed 0, and ``--more-seeds 1 --more-seeds-configs ...`` for the chosen ones; about 1-5 minutes
per configuration and family on one core); ``--quick`` for a smoke run
(seconds). Writes ``benchmarks/results/latent_capacity.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rewardshare._atomic import atomic_write_json
from rewardshare.experiments.fewshot import FamilySplit, Scorer, family_split, source_labels, stable_seed
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, reward_tensor
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse import LatentTask
from rewardshare.rewardmodels.reuse.pretraining import LR_SCHEDULES, train_per_task

#: Pre-training changes measured, each a set of overrides of the few-shot ``latent`` settings (``hidden_sizes`` and
#: ``lr_schedule`` included). The first block changes one factor; the last ones combine the useful ones.
CONFIGS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "steps12k": {"steps": 12000},
    "steps24k": {"steps": 24000},
    "cosine": {"lr_schedule": "cosine"},
    "emb16": {"embedding_dim": 16},
    "items128": {"items_per_task": 128},
    "wide256": {"hidden_sizes": [256, 256, 256]},
    "deep4": {"hidden_sizes": [128, 128, 128, 128]},
    "steps12k_cosine": {"steps": 12000, "lr_schedule": "cosine"},
    "steps24k_cosine": {"steps": 24000, "lr_schedule": "cosine"},
    "goal_rows": {"goal_rows": True},
    "goal_rows_cosine": {"goal_rows": True, "lr_schedule": "cosine"},
    "goal_rows_emb16": {"goal_rows": True, "embedding_dim": 16},
    "goal_rows_deep4": {"goal_rows": True, "hidden_sizes": [128, 128, 128, 128]},
}


class ScheduledLatentTask(LatentTask):
    """:class:`LatentTask` whose pre-training takes a learning-rate schedule (``lr_schedule`` of
    :func:`train_per_task`); with ``"constant"`` it pre-trains exactly as :class:`LatentTask`."""

    def __init__(self, *args: Any, lr_schedule: str = "constant", **kwargs: Any) -> None:
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={lr_schedule!r} is not allowed: use one of {LR_SCHEDULES}")
        super().__init__(*args, **kwargs)
        self.lr_schedule = lr_schedule

    def _train(self, model: RewardModel, source: Objective, task_ids: Sequence[str], seed: int,
               overrides: Mapping[str, Tensor], extra_params: Iterable[nn.Parameter] = ()) -> list[float]:
        self.history = train_per_task(model, source, task_ids, overrides=overrides, extra_params=extra_params,
                                      steps=self.steps, lr=self.lr, items_per_task=self.items_per_task,
                                      tasks_per_step=self.tasks_per_step, seed=seed, lr_schedule=self.lr_schedule)
        return self.history


def _jsonable(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}))


def _scores(model: RewardModel, scorer: Scorer, goal: tuple[int, int]) -> tuple[float, float]:
    """EPIC of ``model`` against the scorer's teacher, as is and with the goal cell's row set to the teacher's."""
    tensor = np.array(reward_tensor(model, scorer.mdp))
    plain = float(epic_from_tensors(tensor, scorer.teacher, scorer.mdp))
    row = [i for i, c in enumerate(scorer.mdp.cells) if tuple(int(x) for x in c) == tuple(goal)]
    tensor[row] = np.asarray(scorer.teacher)[row]
    return plain, float(epic_from_tensors(tensor, scorer.teacher, scorer.mdp))


def _med(x: Sequence[float]) -> float:
    return round(float(np.median(x)), 4)


def measure(settings: Mapping[str, Any], split: FamilySplit, seed: int, n_source_fit: int) -> dict[str, Any]:
    """Pre-train the latent model with ``settings`` on the split's source goals; its source fit and oracle EPIC."""
    env = split.source[0].make_env()
    pairs = 4 * (len(env.layout.free_cells) - 1)
    kwargs = {k: tuple(v) if k == "hidden_sizes" else v for k, v in settings.items() if k != "goal_rows"}
    source = source_labels(split, seed, goal_rows=bool(settings.get("goal_rows")))
    method = ScheduledLatentTask(env.observation_space, env.action_space, seed=seed, **kwargs)
    t0 = time.perf_counter()
    method.pretrain(source, list(split.source), seed=seed)
    seconds = time.perf_counter() - t0
    probe = RewardModel(env.observation_space, env.action_space, hidden_sizes=(4,))
    tasks = split.source[:n_source_fit]
    source_fit = [_scores(method.task_model(t), Scorer(t, probe), t.goal) for t in tasks]
    oracle = []
    for goal in split.validation:  # one goal per inference call, as latent_diagnosis.py does
        full = make_loss("mse", collect_transitions(goal, pairs, coverage="uniform", seed=stable_seed("full", goal.id)))
        oracle.append(_scores(method.model_at(method.infer([full])[0].map), Scorer(goal, probe), goal.goal))
    tail = method.history[-max(1, len(method.history) // 20):]
    fit, fit_fixed = [e for e, _ in source_fit], [e for _, e in source_fit]
    orc, orc_fixed = [e for e, _ in oracle], [e for _, e in oracle]
    return {
        "pretrain_seconds": round(seconds, 1),
        "source_fit": [round(e, 4) for e in fit], "source_fit_median": _med(fit),
        "source_fit_max": round(float(np.max(fit)), 4),
        "source_fit_goal_row_fixed_median": _med(fit_fixed),
        "oracle_epic": [round(e, 4) for e in orc], "oracle_epic_median": _med(orc),
        "oracle_epic_goal_row_fixed_median": _med(orc_fixed),
        "final_loss": round(float(np.mean(tail)), 5), "noise_variance": round(method.noise_variance, 5),
        "source_goals": [t.id for t in tasks], "validation_goals": [t.id for t in split.validation],
        "held_out_goals_used": 0,
    }


def _summary(entries: Mapping[str, Any], plan: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """Per configuration and family: medians over its seeds of the per-seed medians, and the cost against the
    baseline's on the same family and seed."""
    out: dict[str, Any] = {}
    for name, spec in dict.fromkeys((c, f) for c, f, _ in plan):
        seeds = [s for c, f, s in plan if (c, f) == (name, spec)]
        runs = [entries[f"{name}|{spec}|s{s}"] for s in seeds]
        base = [entries.get(f"baseline|{spec}|s{s}") for s in seeds]
        ratio = [r["pretrain_seconds"] / b["pretrain_seconds"] for r, b in zip(runs, base, strict=True) if b]
        cols = ("source_fit_median", "source_fit_goal_row_fixed_median", "oracle_epic_median",
                "oracle_epic_goal_row_fixed_median")
        out.setdefault(name, {})[spec] = {
            **{c: _med([r[c] for r in runs]) for c in cols},
            "pretrain_seconds": round(float(np.median([r["pretrain_seconds"] for r in runs])), 1),
            "seconds_ratio": round(float(np.median(ratio)), 2) if ratio else None,
            "per_seed": {str(s): {c: r[c] for c in cols} for s, r in zip(seeds, runs, strict=True)},
        }
    return out


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Measure every (configuration, family, seed), writing the JSON after each; reuse stored ones with
    ``--resume``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    cfg = FewShotConfig()
    base = {**cfg.settings["latent"], "hidden_sizes": list(cfg.hidden_sizes), "lr_schedule": "constant"}
    if args.quick:
        base.update(steps=60, infer_steps=20, hidden_sizes=[16])
    configs = dict(CONFIGS)
    for spec in args.extra:
        name, _, text = spec.partition("=")
        configs[name] = json.loads(text)
    unknown = [c for c in args.configs if c not in configs]
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}: use names from {sorted(configs)} or --extra NAME=JSON")
    stored: dict[str, Any] = {}
    if args.resume and Path(args.out).is_file():
        stored = json.loads(Path(args.out).read_text()).get("entries", {})
    unknown = [c for c in args.more_seeds_configs if c not in args.configs]
    if unknown:
        raise SystemExit(f"--more-seeds-configs {unknown} are not in --configs")
    entries: dict[str, Any] = {}
    settings_of = {name: _jsonable({**base, **configs[name]}) for name in args.configs}
    # every configuration on every family and seed; the chosen ones also on the further seeds
    plan = [(c, f, s) for c in args.configs for f in args.families
            for s in [*args.seeds, *(args.more_seeds if c in args.more_seeds_configs else [])]]
    splits = {(spec, s): family_split(cfg, spec, s) for _, spec, s in plan}

    def result() -> dict[str, Any]:
        done = all(f"{c}|{f}|s{s}" in entries for c, f, s in plan)
        return {
            "benchmark": "latent_capacity", "command": command,
            "settings": {"families": list(args.families), "seeds": list(args.seeds), "configs": list(args.configs),
                         "more_seeds": list(args.more_seeds), "more_seeds_configs": list(args.more_seeds_configs),
                         "n_source_fit": cfg.n_source_fit, "base": _jsonable(base),
                         "overrides": {c: _jsonable(configs[c]) for c in args.configs}},
            "summary": _summary(entries, plan) if done else None,
            "entries": entries, "seconds": round(time.perf_counter() - start, 1),
            "note": "source fit: EPIC of the method's own model of each of the first n_source_fit source goals "
                    "(few-shot _source_fit); oracle: EPIC of the network at the latent inferred from a validation "
                    "goal's whole label table (latent_diagnosis.py); validation goals of the train split only, "
                    "never held-out goals; pretrain_seconds on one thread of a machine shared with other jobs",
        }

    for name, spec, s in plan:
        key = f"{name}|{spec}|s{s}"
        old = stored.get(key)
        if old is not None and old.get("settings") == settings_of[name]:
            entries[key] = old
            print(f"{key}: stored", flush=True)
            continue
        entry = measure(settings_of[name], splits[(spec, s)], s, cfg.n_source_fit)
        entries[key] = {"settings": settings_of[name], **entry}
        print(f"{key}: source fit {entry['source_fit_median']:.3f} (goal row fixed "
              f"{entry['source_fit_goal_row_fixed_median']:.3f})  oracle {entry['oracle_epic_median']:.3f} (goal row "
              f"fixed {entry['oracle_epic_goal_row_fixed_median']:.3f})  {entry['pretrain_seconds']:.0f}s", flush=True)
        atomic_write_json(args.out, result())
    res = result()
    atomic_write_json(args.out, res)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--families", nargs="+", default=["four_rooms:9", "maze:9"], help="Task families, layout:size.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="Pre-training seeds.")
    p.add_argument("--more-seeds", type=int, nargs="*", default=[], help="Further seeds of --more-seeds-configs.")
    p.add_argument("--more-seeds-configs", nargs="*", default=[], help="Configurations also run on --more-seeds.")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), help=f"Configurations, from {list(CONFIGS)}.")
    p.add_argument("--extra", nargs="*", default=[], metavar="NAME=JSON",
                   help="Further configurations: a name and the JSON overrides of the latent settings.")
    p.add_argument("--resume", action="store_true", help="Reuse stored measurements whose settings are unchanged.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "latent_capacity.json"),
                   help="Output JSON.")
    args = p.parse_args(argv)
    if args.quick:
        args.families, args.seeds, args.configs = ["open:5"], [0], ["baseline", "cosine", "goal_rows"]
        args.more_seeds, args.more_seeds_configs = [1], ["goal_rows"]
    command = " ".join(["python benchmarks/latent_capacity.py", *(sys.argv[1:] if argv is None else argv)])
    res = run(args, command)
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
