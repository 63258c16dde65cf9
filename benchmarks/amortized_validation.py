"""Latent MAP vs amortized inference on validation goals: does a set encoder pick the right goal from k labels?

For each family and pre-training seed, pre-trains the latent-task model (``latent``) and the amortized model
(``amortized``: the same decoder trained jointly with a set encoder on random subsets of the source goals' labels)
with the few-shot benchmark's settings, then, on the *validation* goals of the train split (never held-out goals:
:func:`~rewardshare.experiments.fewshot.family_split`), infers each goal's latent from its first ``k`` labels of a
uniformly drawn sequence and scores the network at that latent (no weight fine-tuning) by EPIC to the teacher:

- ``latent``: the latent model's multi-start MAP;
- ``amortized/encoder``: the encoder's latent in one pass;
- ``amortized/refine``: then a few MAP steps from it;
- ``amortized/map_start``: the encoder's latent as one more start of the multi-start MAP;
- ``amortized/map``: the amortized model's decoder with the plain multi-start MAP (no encoder);
- ``bayes``: the exact posterior over the family's goal cells on the same draws (the reference; its posterior-mean
  reward, the best a hedged prediction can do).

With ``--source-goals N`` the same is measured on the first ``N`` *source* goals too (goals the models were
pre-trained on): an encoder that is poor there as well underfits, rather than failing to generalise.

Run: ``python benchmarks/amortized_validation.py`` (four rooms 9x9, seed 0; about 10 minutes on one core);
``--quick`` for a smoke run. Writes ``benchmarks/results/amortized_validation.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardshare._atomic import atomic_write_json
from rewardshare.experiments.fewshot import Scorer, family_split, source_labels, stable_seed
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.reuse import AmortizedLatent, GoalPosterior, LatentTask, TeacherModel, make_method

VARIANTS = ("bayes", "latent", "amortized/encoder", "amortized/refine", "amortized/map_start", "amortized/map")



def _infer(method: LatentTask, target: Any, mode: str | None) -> torch.Tensor:
    if mode is None:
        return method.infer([target], seed=method.seed)[0].map
    assert isinstance(method, AmortizedLatent)
    if mode == "map":  # the amortized decoder with the parent's plain multi-start MAP
        return LatentTask.infer(method, [target], seed=method.seed)[0].map
    saved = method.inference
    method.inference = mode
    try:
        return method.infer([target], seed=method.seed)[0].map
    finally:
        method.inference = saved


def evaluate(methods: dict[str, LatentTask], goals: list[Any], ks: list[int], draws: int,
             goal_set: str = "validation") -> list[dict[str, Any]]:
    """One row per (goal, draw, k, variant) with the EPIC of the network at the inferred latent."""
    rows = []
    for goal in goals:
        scorers = {name: Scorer(goal, m.model) for name, m in methods.items()}
        layout = goal.resolve_layout()
        for d in range(draws):
            s = stable_seed("diagnosis", goal.id, d)  # latent_diagnosis.py's draws
            pool = collect_transitions(goal, max(ks), coverage="uniform", seed=s)
            pool = pool.select(np.random.default_rng(s).permutation(len(pool)))
            for k in ks:
                target = make_loss("mse", pool.select(np.arange(k))) if k else None
                for variant in VARIANTS:
                    name, _, mode = variant.partition("/")
                    if name == "bayes":
                        post = GoalPosterior(layout, TeacherModel.from_metadata(pool.metadata))
                        if k:
                            post.update(pool.select(np.arange(k)))
                        epic = next(iter(scorers.values()))(post.reward)
                        rows.append({"set": goal_set, "goal": goal.id, "draw": d, "k": k, "variant": variant,
                                     "epic": round(epic, 4)})
                        continue
                    if name not in methods:
                        continue
                    m = methods[name]
                    if k == 0:
                        epic = scorers[name](m.start_model(goal))
                    else:
                        epic = scorers[name](m.model_at(_infer(m, target, mode or None)))
                    rows.append({"set": goal_set, "goal": goal.id, "draw": d, "k": k, "variant": variant,
                                 "epic": round(epic, 4)})
    return rows


def summarise(rows: list[dict[str, Any]], ks: list[int], goal_set: str = "validation") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        per: dict[str, Any] = {}
        for k in ks:
            e = [r["epic"] for r in rows if r["variant"] == variant and r["k"] == k and r.get("set") == goal_set]
            if e:
                per[str(k)] = {"runs": len(e), "median": round(float(np.median(e)), 4),
                               "mean": round(float(np.mean(e)), 4), "below_0.2": int(sum(x <= 0.2 for x in e))}
        if per:
            out[variant] = per
    return out


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Pre-train both models per family and seed and evaluate every variant on the validation goals."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    cfg = FewShotConfig()
    base = {"hidden_sizes": tuple(args.hidden), **cfg.settings["latent"]}
    extra = dict(cfg.settings.get("amortized", {}))
    amortized_settings = {**base, **extra, **{k: v for k, v in vars(args).items()
                                             if k in ("encoder_hidden", "encoder_pooling", "max_context",
                                                      "embedding_loss_weight", "refine_steps") and v is not None}}
    if args.quick:
        base.update(steps=60, infer_steps=20)
        amortized_settings.update(steps=60, infer_steps=20)
    results: dict[str, Any] = {}
    for spec in args.families:
        for seed in args.seeds:
            t0 = time.perf_counter()
            split = family_split(cfg, spec, seed)
            env = split.source[0].make_env()
            source = source_labels(split, seed)
            methods: dict[str, LatentTask] = {}
            for name, settings in (("latent", base), ("amortized", amortized_settings)):
                if name not in args.methods:
                    continue
                t1 = time.perf_counter()
                m = make_method(name, env.observation_space, env.action_space, seed=seed, **settings)
                m.pretrain(source, list(split.source), seed=seed)
                methods[name] = m  # type: ignore[assignment]
                print(f"{spec} s{seed}: {name} pre-trained in {time.perf_counter() - t1:.0f}s", flush=True)
            rows = evaluate(methods, list(split.validation), list(args.ks), args.draws)
            sets = ["validation"]
            if args.source_goals:
                rows += evaluate(methods, list(split.source[: args.source_goals]), list(args.ks), args.draws,
                                 goal_set="source")
                sets.append("source")
            summary = {gs: summarise(rows, list(args.ks), gs) for gs in sets}
            for gs in sets:
                for variant, per in summary[gs].items():
                    print(f"{spec} s{seed} {gs:10s} {variant:22s} " + "  ".join(
                        f"k={k}: {v['median']:.3f}/{v['mean']:.3f}" for k, v in per.items()), flush=True)
            results[f"{spec}/s{seed}"] = {
                "validation_goals": [t.id for t in split.validation], "held_out_goals_used": 0,
                "source_goals": [t.id for t in split.source[: args.source_goals]],
                "summary": summary["validation"], "summary_source": summary.get("source"), "runs": rows,
                "seconds": round(time.perf_counter() - t0, 1),
                "encoder_loss_tail": (round(float(np.mean(methods["amortized"].encoder_history[-300:])), 4)
                                      if "amortized" in methods else None),  # type: ignore[attr-defined]
            }
    return {
        "benchmark": "amortized_validation", "command": command,
        "settings": {"families": list(args.families), "seeds": list(args.seeds), "ks": list(args.ks),
                     "draws": args.draws,
                     "latent": {k: list(v) if isinstance(v, tuple) else v for k, v in base.items()},
                     "amortized": {k: list(v) if isinstance(v, tuple) else v for k, v in amortized_settings.items()}},
        "results": results, "seconds": round(time.perf_counter() - start, 1),
        "note": "validation goals of the train split only (and source goals with --source-goals; never held-out "
                "goals); EPIC of the network at the "
                "inferred latent, no weight fine-tuning; summary: median / mean over (goal, draw); k=0: start_model",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--families", nargs="+", default=["four_rooms:9"], help="Task families, layout:size.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="Pre-training seeds.")
    p.add_argument("--methods", nargs="+", default=["latent", "amortized"], help="latent and/or amortized.")
    p.add_argument("--ks", type=int, nargs="+", default=[0, 8, 16, 32], help="Label counts.")
    p.add_argument("--draws", type=int, default=2, help="Label draws per validation goal.")
    p.add_argument("--source-goals", type=int, default=0, help="Also evaluate on this many source goals.")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128, 128], help="Reward-network widths.")
    p.add_argument("--encoder-hidden", type=int, default=None, help="Override the encoder's width.")
    p.add_argument("--encoder-pooling", default=None, help="Override the encoder's pooling (mean, mean_sum).")
    p.add_argument("--max-context", type=int, default=None, help="Override the largest context set.")
    p.add_argument("--embedding-loss-weight", type=float, default=None, help="Override w.")
    p.add_argument("--refine-steps", type=int, default=None, help="Override the refine steps.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "amortized_validation.json"),
                   help="Output JSON.")
    args = p.parse_args(argv)
    if args.quick:
        args.families, args.ks, args.draws, args.hidden = ["open:5"], [0, 4], 1, [16]
    command = " ".join(["python benchmarks/amortized_validation.py", *(sys.argv[1:] if argv is None else argv)])
    res = run(args, command)
    atomic_write_json(args.out, res)
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
