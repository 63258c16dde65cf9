"""Env speed, side by side: our GridGoal env against MiniGrid and FrozenLake, our vector env against SyncVectorEnv.

Every contestant runs in the same process, in interleaved repeats (A B C D E, A B C D E, ...), each repeat a block
of about ``--block-seconds`` of stepping with pre-drawn random actions (a single env resets when an episode ends;
vector envs autoreset). Rates are medians over repeats; ratios are medians of the per-repeat ratios, so slow
phases of a shared machine hit both sides of a ratio alike.

Contestants:

- ``gridgoal``: ``gym.make("rewardshare/GridGoal-v0")`` (open 8x8, coords), env steps/s.
- ``minigrid``: ``gym.make("MiniGrid-Empty-8x8-v0")``, env steps/s.
- ``frozenlake``: ``gym.make("FrozenLake-v1")``, env steps/s.
- ``gridgoal_vector``: ``gym.make_vec("rewardshare/GridGoal-v0", num_envs=N, vectorization_mode="vector_entry_point")``,
  sub-env steps/s (N = ``--num-envs``, default 1024).
- ``gridgoal_vector_multigoal``: the same for ``rewardshare/GridGoal-MultiGoal-v0`` (random goal and start drawn per
  sub-env reset), sub-env steps/s. For information: no target.
- ``gridgoal_sync``: ``gym.make_vec("rewardshare/GridGoal-v0", num_envs=M, vectorization_mode="sync")``, gymnasium's
  SyncVectorEnv of our single env (M = ``--sync-envs``, default 8), sub-env steps/s.

Targets (issue 2, 2-core machine): gridgoal >= 50x minigrid; gridgoal_vector >= 50x gridgoal and >= 30M sub-env
steps/s.

Usage::

    python benchmarks/env_speed.py            # full run, writes benchmarks/results/env_speed.json
    python benchmarks/env_speed.py --quick --out /tmp/env_speed.json   # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import rewardshare
from rewardshare._atomic import atomic_write_json

FORMAT_VERSION = 1
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "env_speed.json"
TARGETS = {"single_vs_minigrid": 50.0, "vector_vs_single": 50.0, "vector_sub_env_steps_per_s": 30e6}


@dataclass
class Config:
    """Benchmark settings.

    Attributes:
        repeats: Interleaved repeats per contestant (the medians are over these).
        block_seconds: Target duration of one timed block (the step count per block is calibrated once).
        num_envs: Sub-envs of our native vector env.
        sync_envs: Sub-envs of gymnasium's SyncVectorEnv of our single env.
        seed: Seed of the pre-drawn actions and of the env resets.
        quick: Tiny settings for the smoke test.
    """

    repeats: int = 7
    block_seconds: float = 0.4
    num_envs: int = 1024
    sync_envs: int = 8
    seed: int = 0
    quick: bool = False


# A runner is built once per contestant; calling it with a step count runs that many steps and returns the seconds.
Runner = Callable[[int], float]


def single_env_runner(env_id: str, seed: int, max_steps: int) -> Runner:
    """Step ``gym.make(env_id)`` with pre-drawn random actions, resetting when an episode ends."""
    if env_id.startswith("MiniGrid"):
        import minigrid  # noqa: F401  (registers the MiniGrid IDs)
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    actions = rng.integers(env.action_space.n, size=max_steps).tolist()
    env.reset(seed=seed)

    def run(steps: int) -> float:
        todo = actions[:steps]
        step, reset = env.step, env.reset
        start = time.perf_counter()
        for a in todo:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                reset()
        return time.perf_counter() - start

    return run


def vector_env_runner(env_id: str, num_envs: int, mode: str, seed: int) -> Runner:
    """Step ``gym.make_vec(env_id, num_envs, vectorization_mode=mode)`` with a cycled pool of pre-drawn actions."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    pool = np.random.default_rng(seed).integers(4, size=(256, num_envs))
    rows = [pool[i] for i in range(len(pool))]  # views made up front, so the timed loop only steps
    env.reset(seed=seed)

    def run(steps: int) -> float:
        step = env.step
        n_rows = len(rows)
        start = time.perf_counter()
        for i in range(steps):
            step(rows[i % n_rows])
        return time.perf_counter() - start

    return run


@dataclass
class Contestant:
    name: str
    description: str
    unit: str
    steps_per_call: int  # env steps one call advances (num_envs for a vector env)
    runner: Runner
    calls_per_block: int = 0


def build_contestants(cfg: Config) -> list[Contestant]:
    # single envs pre-draw enough actions for the longest block any of them may need
    max_single = 5_000 if cfg.quick else 3_000_000
    return [
        Contestant("gridgoal", "gym.make('rewardshare/GridGoal-v0')", "env steps/s", 1,
                   single_env_runner("rewardshare/GridGoal-v0", cfg.seed, max_single)),
        Contestant("minigrid", "gym.make('MiniGrid-Empty-8x8-v0')", "env steps/s", 1,
                   single_env_runner("MiniGrid-Empty-8x8-v0", cfg.seed, max_single)),
        Contestant("frozenlake", "gym.make('FrozenLake-v1')", "env steps/s", 1,
                   single_env_runner("FrozenLake-v1", cfg.seed, max_single)),
        Contestant("gridgoal_vector", f"GridGoalVectorEnv, rewardshare/GridGoal-v0, N={cfg.num_envs}",
                   "sub-env steps/s", cfg.num_envs,
                   vector_env_runner("rewardshare/GridGoal-v0", cfg.num_envs, "vector_entry_point", cfg.seed)),
        Contestant("gridgoal_vector_multigoal",
                   f"GridGoalVectorEnv, rewardshare/GridGoal-MultiGoal-v0 (random goal+start), N={cfg.num_envs}",
                   "sub-env steps/s", cfg.num_envs,
                   vector_env_runner("rewardshare/GridGoal-MultiGoal-v0", cfg.num_envs, "vector_entry_point",
                                     cfg.seed)),
        Contestant("gridgoal_sync",
                   f"gymnasium SyncVectorEnv of gym.make('rewardshare/GridGoal-v0'), N={cfg.sync_envs}",
                   "sub-env steps/s", cfg.sync_envs,
                   vector_env_runner("rewardshare/GridGoal-v0", cfg.sync_envs, "sync", cfg.seed)),
    ]


def calibrate(contestant: Contestant, block_seconds: float, max_calls: int | None) -> None:
    """Pick the calls per block so that one block lasts about ``block_seconds``."""
    calls = 16
    while True:
        seconds = contestant.runner(calls)
        if seconds >= 0.05 * block_seconds or (max_calls is not None and calls >= max_calls):
            break
        calls *= 4
    wanted = max(1, int(calls * block_seconds / max(seconds, 1e-9)))
    contestant.calls_per_block = wanted if max_calls is None else min(wanted, max_calls)


def measure(cfg: Config) -> dict[str, Any]:
    """Run the benchmark and return the result record (see the module docstring)."""
    contestants = build_contestants(cfg)
    max_single = 5_000 if cfg.quick else 3_000_000
    for c in contestants:
        c.runner(min(100, max_single))  # warm-up: first-call costs (imports, caches) stay out of the timings
        calibrate(c, cfg.block_seconds, max_single if c.steps_per_call == 1 else None)
    samples: dict[str, list[float]] = {c.name: [] for c in contestants}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one block but not another is noise, not speed
    try:
        for _ in range(cfg.repeats):
            for c in contestants:
                seconds = c.runner(c.calls_per_block)
                samples[c.name].append(c.calls_per_block * c.steps_per_call / seconds)
    finally:
        if gc_was_enabled:
            gc.enable()

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    results = {
        c.name: {
            "description": c.description,
            "unit": c.unit,
            "median": statistics.median(samples[c.name]),
            "max": max(samples[c.name]),
            "samples": samples[c.name],
            "steps_per_block": c.calls_per_block * c.steps_per_call,
        }
        for c in contestants
    }
    ratios = {
        "single_vs_minigrid": ratio("gridgoal", "minigrid"),
        "single_vs_frozenlake": ratio("gridgoal", "frozenlake"),
        "vector_vs_single": ratio("gridgoal_vector", "gridgoal"),
        "vector_vs_sync": ratio("gridgoal_vector", "gridgoal_sync"),
        "vector_multigoal_vs_single": ratio("gridgoal_vector_multigoal", "gridgoal"),
    }
    vector_rate = results["gridgoal_vector"]["median"]
    targets = {
        "single_vs_minigrid >= 50": ratios["single_vs_minigrid"] >= TARGETS["single_vs_minigrid"],
        "vector_vs_single >= 50": ratios["vector_vs_single"] >= TARGETS["vector_vs_single"],
        "vector sub-env steps/s >= 30M": vector_rate >= TARGETS["vector_sub_env_steps_per_s"],
    }
    return {"results": results, "ratios": ratios, "targets_met": targets}


def machine_info() -> dict[str, Any]:
    import minigrid

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "minigrid": getattr(minigrid, "__version__", "unknown"),
        "rewardshare": rewardshare.__version__,
    }


def format_table(record: dict[str, Any]) -> str:
    """A Markdown table of the medians and the ratios (ready for the README)."""
    lines = ["| contestant | median rate | best repeat | unit |", "| --- | ---: | ---: | --- |"]
    for res in record["results"].values():
        lines.append(f"| {res['description']} | {res['median']:,.0f} | {res['max']:,.0f} | {res['unit']} |")
    lines += ["", "| ratio (median of per-repeat ratios) | value |", "| --- | ---: |"]
    for name, value in record["ratios"].items():
        lines.append(f"| {name} | {value:,.1f}x |")
    lines += ["", "| target | met |", "| --- | --- |"]
    for name, ok in record["targets_met"].items():
        lines.append(f"| {name} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Config, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7; quick 2)")
    parser.add_argument("--block-seconds", type=float, default=None, help="seconds per timed block (default 0.4)")
    parser.add_argument("--num-envs", type=int, default=None, help="sub-envs of the native vector env (default 1024)")
    parser.add_argument("--sync-envs", type=int, default=None, help="sub-envs of the SyncVectorEnv (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    base = Config(repeats=2, block_seconds=0.01, num_envs=64, sync_envs=2, quick=True) if args.quick else Config()
    cfg = Config(
        repeats=args.repeats if args.repeats is not None else base.repeats,
        block_seconds=args.block_seconds if args.block_seconds is not None else base.block_seconds,
        num_envs=args.num_envs if args.num_envs is not None else base.num_envs,
        sync_envs=args.sync_envs if args.sync_envs is not None else base.sync_envs,
        seed=args.seed,
        quick=base.quick,
    )
    if cfg.repeats < 1 or cfg.block_seconds <= 0 or cfg.num_envs < 1 or cfg.sync_envs < 1:
        parser.error("--repeats, --block-seconds, --num-envs and --sync-envs must be positive")
    return cfg, args.out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON record, and return it."""
    cfg, out = parse_args(argv)
    info = machine_info()
    started = time.time()
    record = {
        "format_version": FORMAT_VERSION,
        "benchmark": "env_speed",
        "command": " ".join(["python benchmarks/env_speed.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": asdict(cfg),
        "machine": info,
        "targets": TARGETS,
        **measure(cfg),
        "wall_seconds": time.time() - started,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "note": "Shared 2-core machine: absolute rates are noisy, compare the ratios (measured side by side).",
    }
    print(format_table(record))
    atomic_write_json(out, record, indent=2)
    print(f"\nwrote {out}")
    return record


if __name__ == "__main__":
    main()
