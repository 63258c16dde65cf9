"""Does a reward model that reads the env's episode-end flag make a learned reward safe to train agents on?

The learning curves on four rooms collapse (`benchmarks/collapse_analysis.py --root .../agents_four_rooms`): every
learned reward table there has positive two-step cycles, so walking in circles beats reaching the goal. This script
measures, on *validation* goals of the few-shot split (never held-out goals) and before any agent run, what an
agent would do on the latent model's MAP reward in four settings: the model reads ``done`` or not
(``RewardModel(use_done=...)``), and the reward is served plain or potential-shaped (``RewardOptions(shaping=
"potential")``: only ``phi(s') - phi(s)`` of the table, phi fitted by least squares over every move).

Per (validation goal, feedback draw, k): EPIC of the MAP reward; the best two-step cycle of its table; and
``reaches``: the fraction of start cells from which the greedy policy of value iteration on the served table
(gamma 0.99, entering the true goal ends the episode, as in the env) reaches the goal within the 50-step horizon.

    python benchmarks/done_planning.py            # four rooms 9x9, pre-training seed 0: about 6 minutes on one core
    python benchmarks/done_planning.py --feedback demonstrations --ks 1 2 --out \
        benchmarks/results/done_planning_demos.json   # the MAP latent from 1-2 demonstrations instead of k labels
    python benchmarks/done_planning.py --quick    # seconds

Writes ``benchmarks/results/done_planning.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collapse_analysis import best_cycle2, potential_projection, rollout, value_iteration  # noqa: E402

from rewardshare._atomic import atomic_write_json  # noqa: E402
from rewardshare.experiments.fewshot import (  # noqa: E402
    Scorer,
    draw_feedback,
    family_split,
    objective_of,
    source_labels,
    stable_seed,
)
from rewardshare.experiments.fewshot_config import FewShotConfig  # noqa: E402
from rewardshare.feedback import collect_transitions  # noqa: E402
from rewardshare.rewardmodels import make_loss  # noqa: E402
from rewardshare.rewardmodels.evaluation import reward_tensor  # noqa: E402
from rewardshare.rewardmodels.reuse import make_method  # noqa: E402

HORIZON = 50  # the envs' max_steps in the learning-curve benchmark


def reaches(r: np.ndarray, mdp: Any) -> float:
    """Fraction of non-goal start cells from which value iteration's greedy policy on ``r`` reaches the goal."""
    _, policy = value_iteration(r, mdp)
    starts = [s for s in range(mdp.n_states) if s != mdp.goal_state]
    return float(np.mean([rollout(policy, mdp, r, s, HORIZON)["reached"] for s in starts]))


def run_family(spec: str, use_done: bool, args: argparse.Namespace, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Pre-train the latent model (reading ``done`` or not) and measure every validation run."""
    cfg = FewShotConfig()
    split = family_split(cfg, spec, args.seed)
    env = split.source[0].make_env()
    source = source_labels(split, args.seed)
    method = make_method("latent", env.observation_space, env.action_space, seed=args.seed, use_done=use_done,
                         **settings)
    t0 = time.perf_counter()
    method.pretrain(source, list(split.source), seed=args.seed)
    print(f"{spec} use_done={use_done}: pre-trained in {time.perf_counter() - t0:.0f}s", flush=True)
    rows = []
    for goal in split.validation:
        scorer = Scorer(goal, method.model)
        mdp = scorer.mdp
        for d in range(args.draws):
            s = stable_seed("diagnosis", goal.id, d)  # latent_diagnosis.py's draws
            if args.feedback == "labels":
                pool = collect_transitions(goal, max(args.ks), coverage="uniform", seed=s)
                pool = pool.select(np.random.default_rng(s).permutation(len(pool)))
            else:
                pool = draw_feedback(cfg, args.feedback, goal, max(args.ks), s)
            for k in args.ks:
                target = (make_loss("mse", pool.select(np.arange(k))) if args.feedback == "labels"
                          else objective_of(cfg, args.feedback, pool.select(np.arange(k))))
                post = method.infer([target])[0]
                model = method.model_at(post.map)
                full = reward_tensor(model, mdp)
                r = np.take_along_axis(full, mdp.next_state[:, :, None], axis=2)[:, :, 0]
                rows.append({"goal": goal.id, "draw": d, "k": k, "use_done": use_done,
                             "epic": round(scorer(model), 4), "cycle2": round(best_cycle2(r, mdp)[0], 3),
                             "reaches_plain": reaches(r, mdp),
                             "reaches_potential": reaches(potential_projection(r, mdp), mdp)})
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median EPIC, mean cycle and mean ``reaches`` per (use_done, k)."""
    out = []
    for use_done in (False, True):
        for k in sorted({r["k"] for r in rows}):
            sel = [r for r in rows if r["use_done"] == use_done and r["k"] == k]
            if sel:
                out.append({"use_done": use_done, "k": k, "runs": len(sel),
                            "median_epic": round(float(np.median([r["epic"] for r in sel])), 3),
                            "mean_cycle2": round(float(np.mean([r["cycle2"] for r in sel])), 2),
                            "reaches_plain": round(float(np.mean([r["reaches_plain"] for r in sel])), 2),
                            "reaches_potential": round(float(np.mean([r["reaches_potential"] for r in sel])), 2)})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, measure both settings, print the table, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--family", default="four_rooms:9", help="Task family, layout:size.")
    p.add_argument("--seed", type=int, default=0, help="Pre-training seed (draws the validation goals).")
    p.add_argument("--feedback", choices=["labels", "demonstrations"], default="labels",
                   help="What the latent is inferred from (the model pre-trains on labels either way).")
    p.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32], help="Feedback counts (labels or demonstrations).")
    p.add_argument("--draws", type=int, default=2, help="Feedback draws per validation goal.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "done_planning.json"), help="Output JSON.")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = {**FewShotConfig().settings["latent"], "hidden_sizes": (128, 128, 128)}
    if args.quick:
        args.family, args.ks, args.draws = "open:5", [4], 1
        settings.update(steps=60, infer_steps=20, hidden_sizes=(16,))
    start = time.perf_counter()
    rows = [r for use_done in (False, True) for r in run_family(args.family, use_done, args, settings)]
    summary = summarize(rows)
    print("use_done | k | runs | median EPIC | best 2-cycle | reaches (plain) | reaches (potential)")
    for s in summary:
        print(f"{s['use_done']} | {s['k']} | {s['runs']} | {s['median_epic']:.3f} | {s['mean_cycle2']:.2f} | "
              f"{s['reaches_plain']:.2f} | {s['reaches_potential']:.2f}")
    command = " ".join(["python benchmarks/done_planning.py", *(sys.argv[1:] if argv is None else argv)])
    out = {"benchmark": "done_planning", "command": command,
           "settings": {"family": args.family, "seed": args.seed, "feedback": args.feedback, "ks": args.ks,
                        "draws": args.draws,
                        "latent": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
                        "gamma": 0.99, "horizon": HORIZON},
           "note": "validation goals of the train split only (never held-out goals); reaches = fraction of start "
                   "cells whose value-iteration greedy policy on the served table reaches the goal within the horizon",
           "summary": summary, "runs": rows, "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
