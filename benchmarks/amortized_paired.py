"""Paired comparison of two few-shot methods on the same held-out runs, from the stored few-shot units.

Both methods see the same label draws on every run (goal, pre-training seed), so the per-run EPIC difference
``EPIC(method) - EPIC(baseline)`` at each ``k`` is a paired measurement. Reports its mean with a 95% bootstrap CI
over held-out goals (a goal's runs averaged first) and how many runs the method is better on.

Run: ``python benchmarks/amortized_paired.py`` (seconds; defaults: amortized vs latent on four rooms 9x9, seeds 0-2)
→ ``benchmarks/results/amortized_paired.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare._atomic import atomic_write_json

ROOT = Path(__file__).resolve().parent


def paired(units: Path, family: str, seeds: list[int], method: str, baseline: str, n_boot: int) -> dict[str, Any]:
    """Per ``k``: mean paired difference, its goal-bootstrap CI, wins and runs."""
    per_k: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        a = json.loads((units / f"{family}_s{seed}_{method}.json").read_text())["result"]
        b = json.loads((units / f"{family}_s{seed}_{baseline}.json").read_text())["result"]
        if a["runs"] != b["runs"]:
            raise ValueError(f"seed {seed}: the two units hold different runs")
        goals = [r[0] for r in a["runs"]]
        for k, ea in a["kinds"]["labels"]["epic"].items():
            eb = b["kinds"]["labels"]["epic"][k]
            for g, x, y in zip(goals, ea, eb, strict=True):
                if x is not None and y is not None:
                    per_k.setdefault(k, {}).setdefault(g, []).append(float(x) - float(y))
    rng = np.random.default_rng(0)
    out = {}
    for k, by_goal in per_k.items():
        means = np.array([np.mean(v) for v in by_goal.values()])
        boots = [float(np.mean(means[rng.integers(0, len(means), len(means))])) for _ in range(n_boot)]
        diffs = np.concatenate([np.asarray(v) for v in by_goal.values()])
        out[k] = {"mean_diff": round(float(np.mean(diffs)), 4),
                  "ci95": [round(float(np.percentile(boots, 2.5)), 4), round(float(np.percentile(boots, 97.5)), 4)],
                  "wins": int(np.sum(diffs < 0)), "runs": int(len(diffs)), "goals": len(by_goal)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, compare, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", default=str(ROOT / "results" / "fewshot" / "units"), help="Few-shot unit directory.")
    p.add_argument("--family", default="four_rooms_9", help="Unit file prefix of the family.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Pre-training seeds.")
    p.add_argument("--method", default="amortized")
    p.add_argument("--baseline", default="latent")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--out", default=str(ROOT / "results" / "amortized_paired.json"), help="Output JSON.")
    args = p.parse_args(argv)
    command = " ".join(["python benchmarks/amortized_paired.py", *(sys.argv[1:] if argv is None else argv)])
    res = {"benchmark": "amortized_paired", "command": command, "family": args.family, "seeds": args.seeds,
           "method": args.method, "baseline": args.baseline,
           "note": "EPIC(method) - EPIC(baseline) per held-out run (same label draws); CI: bootstrap over goals",
           "by_k": paired(Path(args.units), args.family, args.seeds, args.method, args.baseline, args.n_boot)}
    atomic_write_json(args.out, res)
    for k, row in res["by_k"].items():
        print(f"k={k:>4}: {row['mean_diff']:+.3f} [{row['ci95'][0]:+.3f}, {row['ci95'][1]:+.3f}] "
              f"better on {row['wins']}/{row['runs']}")
    return res


if __name__ == "__main__":
    main()
