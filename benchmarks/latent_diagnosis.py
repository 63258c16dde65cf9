"""Where do the latent model's labels go? A decomposition on validation goals of the train split.

The few-shot benchmark finds the latent-task model (:class:`~rewardshare.rewardmodels.reuse.LatentTask`) needing
more labels than the exact Bayes posterior on four rooms and the maze. This script separates the candidate causes
on goals the model never saw and that are never held-out goals (the family's train split minus the pre-training
goals, exactly as :func:`~rewardshare.experiments.fewshot.family_split` draws them):

- **representation**: EPIC of the network at the *oracle latent*, the one inferred from the goal's whole label table
  (every (cell, action) pair). No amount of feedback gets the latent model below it.
- **search**: whether the MAP latent found from ``k`` labels has a lower negative log posterior than the oracle latent
  (if not, the inference failed to find the better mode: a search failure).
- **the posterior itself**: when the search succeeds but the MAP latent is far from the goal (EPIC at the MAP much
  above the oracle's), the model's posterior prefers a wrong latent: a latent that fits the ``k`` labels better than
  the goal's own latent but is wrong elsewhere. Its cause is the model, not the search.
- **noise calibration**: the same with the label likelihood's variance ``sigma^2`` set to larger values than the
  fitted one (a sharper likelihood than the model's error on a new goal makes single mispredicted labels decisive).
- **mixture**: EPIC of the posterior-mean reward over the modes found (weighted by their posterior), next to the MAP.

The feedback is ``k`` uniformly drawn labels, or with ``--feedback demonstrations`` ``k`` whole demonstrations
(drawn and scored exactly as the few-shot benchmark does; the noise variance then plays no part, so only the fitted
one is run). ``--goal-rows`` pre-trains on the source labels with the moves out of every source goal
(``FewShotConfig.source_goal_rows``).

Run: ``python benchmarks/latent_diagnosis.py`` (about 5 minutes per family on one core; the defaults are the
few-shot ``full`` profile's latent settings on four rooms 9x9, pre-training seed 0); ``--quick`` for a smoke run.
Writes ``benchmarks/results/latent_diagnosis.json`` (``--out`` for another file).
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
from rewardshare.experiments.fewshot import (
    Scorer,
    draw_feedback,
    family_split,
    objective_of,
    source_labels,
    stable_seed,
)
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.evaluation import epic_from_tensors, reward_tensor
from rewardshare.rewardmodels.reuse import LatentTask, make_method


def diagnose(cfg: FewShotConfig, method: LatentTask, split: Any, ks: list[int], draws: int,
             noise_variances: list[float], pairs: int, feedback: str = "labels") -> dict[str, Any]:
    """Per noise variance and ``k``: medians over (validation goal, draw) of the oracle / MAP / mixture EPIC and the
    count of runs whose MAP latent beats the oracle latent's posterior (so no search failure); ``k`` items of
    ``feedback`` (``"labels"`` or ``"demonstrations"``)."""
    fitted = method.noise_variance
    out: dict[str, Any] = {}
    for nv in [fitted, *noise_variances]:
        method.noise_variance = nv
        rows = []
        for goal in split.validation:
            scorer = Scorer(goal, method.model)
            full = make_loss("mse", collect_transitions(goal, pairs, coverage="uniform",
                                                        seed=stable_seed("full", goal.id)))
            oracle_z = method.infer([full])[0].map
            oracle_epic = scorer(method.model_at(oracle_z))
            for d in range(draws):
                s = stable_seed("diagnosis", goal.id, d)
                pool = draw_feedback(cfg, feedback, goal, max(ks), s)
                for k in ks:
                    target = objective_of(cfg, feedback, pool.select(np.arange(k)))
                    post = method.infer([target])[0]
                    nlp_oracle = float(method.neg_log_posterior(target, oracle_z)[0])
                    tensors = [reward_tensor(method.model_at(z), scorer.mdp) for z in post.z]
                    mixture = sum(float(w) * t for w, t in zip(post.weights, tensors, strict=True))
                    rows.append({
                        "goal": goal.id, "draw": d, "k": k, "oracle_epic": round(oracle_epic, 4),
                        "map_epic": round(scorer(method.model_at(post.map)), 4),
                        "mixture_epic": round(float(epic_from_tensors(mixture, scorer.teacher, scorer.mdp)), 4),
                        "nlp_map": round(float(post.neg_log_posterior[0]), 3), "nlp_oracle": round(nlp_oracle, 3),
                    })
        summary = {}
        for k in ks:
            r = [x for x in rows if x["k"] == k]
            summary[str(k)] = {
                "runs": len(r),
                "oracle_epic": round(float(np.median([x["oracle_epic"] for x in r])), 4),
                "map_epic": round(float(np.median([x["map_epic"] for x in r])), 4),
                "mixture_epic": round(float(np.median([x["mixture_epic"] for x in r])), 4),
                "search_failures": sum(x["nlp_oracle"] < x["nlp_map"] - 1e-3 for x in r),
                "map_beats_oracle_posterior": sum(x["nlp_map"] <= x["nlp_oracle"] for x in r),
                "map_far_from_goal": sum(x["map_epic"] > 2 * x["oracle_epic"] + 0.05 for x in r),
            }
            row = summary[str(k)]
            print(f"sigma^2={nv:<6.3g} k={k:3d}  oracle {row['oracle_epic']:.3f}  MAP {row['map_epic']:.3f}  "
                  f"mixture {row['mixture_epic']:.3f}  search failures {row['search_failures']}/{len(r)}  "
                  f"MAP far from goal {row['map_far_from_goal']}/{len(r)}", flush=True)
        out[f"{nv:.4g}"] = {"noise_variance": nv, "fitted": nv == fitted, "summary": summary, "runs": rows}
    method.noise_variance = fitted
    return out


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Pre-train the latent model on each family's source goals and diagnose it on the validation goals."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    cfg = FewShotConfig()
    settings = {**cfg.settings["latent"], "hidden_sizes": tuple(args.hidden)}
    if args.quick:
        settings.update(steps=60, infer_steps=20)
    families: dict[str, Any] = {}
    for spec in args.families:
        t0 = time.perf_counter()
        split = family_split(cfg, spec, args.seed)
        env = split.source[0].make_env()
        pairs = 4 * (len(env.layout.free_cells) - 1)
        source = source_labels(split, args.seed, goal_rows=args.goal_rows)
        method = make_method("latent", env.observation_space, env.action_space, seed=args.seed, **settings)
        method.pretrain(source, list(split.source), seed=args.seed)
        print(f"{spec}: pre-trained in {time.perf_counter() - t0:.0f}s; fitted sigma^2 {method.noise_variance:.3g}",
              flush=True)
        families[spec] = {
            "source_goals": len(split.source), "validation_goals": [t.id for t in split.validation],
            "held_out_goals_used": 0,
            "results": diagnose(cfg, method, split, list(args.ks), args.draws, list(args.noise_variances), pairs,
                                args.feedback),
            "seconds": round(time.perf_counter() - t0, 1),
        }
    return {
        "benchmark": "latent_diagnosis", "command": command,
        "settings": {"families": list(args.families), "seed": args.seed, "feedback": args.feedback,
                     "goal_rows": args.goal_rows, "ks": list(args.ks), "draws": args.draws,
                     "latent": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                     "noise_variances": list(args.noise_variances)},
        "families": families, "seconds": round(time.perf_counter() - start, 1),
        "note": "validation goals of the train split only (never held-out goals); oracle = the latent inferred from "
                "the whole label table; search failure = the oracle latent has a lower negative log posterior "
                "than the MAP found; MAP far from goal = MAP EPIC > 2 x oracle EPIC + 0.05",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--families", nargs="+", default=["four_rooms:9"], help="Task families, layout:size.")
    p.add_argument("--seed", type=int, default=0, help="Pre-training seed (draws the validation goals).")
    p.add_argument("--feedback", choices=("labels", "demonstrations"), default="labels",
                   help="Feedback the latent is inferred from (default labels).")
    p.add_argument("--goal-rows", action="store_true", help="Pre-train with the source goals' own moves labelled.")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 32], help="Feedback amounts.")
    p.add_argument("--draws", type=int, default=2, help="Feedback draws per validation goal.")
    p.add_argument("--noise-variances", type=float, nargs="*", default=[0.1, 0.3, 1.0],
                   help="Label-noise variances tried besides the fitted one.")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128, 128], help="Reward-network widths.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "latent_diagnosis.json"),
                   help="Output JSON.")
    args = p.parse_args(argv)
    if args.feedback == "demonstrations":
        args.noise_variances = []  # the label likelihood's variance does not enter a demonstration's
    if args.quick:
        args.families, args.draws, args.hidden = ["open:5"], 1, [16]
        args.ks = [1 if args.feedback == "demonstrations" else 4]
        if args.noise_variances:
            args.noise_variances = [0.3]
    command = " ".join(["python benchmarks/latent_diagnosis.py", *(sys.argv[1:] if argv is None else argv)])
    res = run(args, command)
    atomic_write_json(args.out, res)
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
