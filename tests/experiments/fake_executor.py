"""A stand-in unit executor for testing the sweep machinery without training anything.

Run units get a step-function success curve that reaches 1.0 at a method-specific timestep, so every metric of the
report is known exactly: scratch solves at 8 evaluations, ``transfer`` at 4 (speedup 2), oracles at 2. Runs that
*collapse* (:func:`collapses`: plain ``latent`` always, ``latent+mean`` on seed 0) reach 1.0 at evaluation 2 and fall to
0.0 from evaluation 6 on; every other run keeps its success once reached.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rewardshare.experiments.config import BenchConfig
from rewardshare.experiments.store import ResultStore

SOLVE_AT_EVAL = {"scratch": 8, "transfer": 4, "true": 2, "teacher": 2}
FAIL_ENV = "RS_FAKE_FAIL_UNIT"


def solve_step(config: BenchConfig, method: str) -> int:
    """The timestep at which the fake curve of ``method`` first reaches success 1.0."""
    return SOLVE_AT_EVAL.get(method, 6) * config.eval_every


def collapses(method: str, uncertainty: str, seed: int) -> bool:
    """Whether the fake run of ``method`` under reward variant ``uncertainty`` collapses."""
    return method == "latent" and (uncertainty == "none" or (uncertainty == "mean" and seed == 0))


def execute(root: str, config: dict[str, Any], unit: dict[str, Any]) -> None:
    """Write the unit's output like the real executor would, with synthetic content."""
    cfg = BenchConfig.from_dict(config)
    store = ResultStore(root, cfg)
    if unit["id"] == os.environ.get(FAIL_ENV):
        raise RuntimeError(f"injected failure in {unit['id']}")
    p = unit["params"]
    out = Path(unit["output"])
    if unit["stage"] == "run":
        t = list(range(cfg.eval_every, cfg.total_timesteps + 1, cfg.eval_every))
        solve = solve_step(cfg, p["method"])
        success = [1.0 if x >= solve else 0.0 for x in t]
        if collapses(p["method"], p.get("uncertainty", "none"), p["seed"]):
            success = [1.0 if 2 * cfg.eval_every <= x < 6 * cfg.eval_every else 0.0 for x in t]
        store.write(out, {**p, "curve": {"timesteps": t, "success": success}, "epic": 0.1, "wall_s": 0.01})
    elif unit["stage"] == "prep":
        m = p["method"]
        for t in p["targets"]:
            epic = 0.5 / t["k"] if m != "scratch" else 0.5
            store.write(store.target_path(m, t["k"], t["task_id"], t["seed"]),
                        {**t, "method": m, "epic": epic, "epic_unadapted": 0.6})
        store.write(out, {"method": m})
    else:
        store.write(out, {**p, "stage": unit["stage"]})
