"""Labelled transitions per second: the vector-env collector vs a plain per-step Python loop.

Both paths produce the same thing — random-policy transitions of every train task of a task family, each labelled by
the task's :class:`~rewardshare.feedback.Teacher`, gathered into a :class:`~rewardshare.feedback.Transitions`:

- ``vector``: :func:`rewardshare.feedback.collect_transitions` with ``coverage="random"`` (one
  ``GridGoalVectorEnv`` holding every task, cells recorded per step, labels and observations looked up in batches);
- ``loop``: one ``gym.make`` env per task, stepped one transition at a time in Python, each transition labelled by
  ``teacher.label`` as it is collected (what a straightforward collector would do).

The two run interleaved (``--repeats`` rounds of vector then loop) in one process; the ratio of the median rates is
reported. Run ``python benchmarks/collect_speed.py`` (defaults) or ``--quick`` for a smoke run. Both paths are
single-threaded numpy / Python; torch is not imported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import rewardshare
from rewardshare._atomic import atomic_write_json
from rewardshare.envs import TaskFamily
from rewardshare.feedback import Teacher, Transitions, collect_transitions

TARGET_RATIO = 20.0
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "collect_speed.json"


def vector_collect(family: TaskFamily, n: int, seed: int) -> Transitions:
    """The library path."""
    return collect_transitions(family.train, n, coverage="random", seed=seed)


def loop_collect(family: TaskFamily, env_id: str, n: int, seed: int) -> Transitions:
    """The plain path: per-step ``env.step`` and ``teacher.label`` over ``gym.make`` envs, round-robin over tasks."""
    tasks = family.train
    envs = [gym.make(env_id, goal=t.goal, start="random") for t in tasks]
    teachers = [Teacher(t, seed=seed + k) for k, t in enumerate(tasks)]
    rng = np.random.default_rng(seed)
    state = []
    for k, env in enumerate(envs):
        obs, info = env.reset(seed=seed + k)
        state.append((obs, info["agent_pos"]))
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "next_obs", "done", "label", "task_id",
                                                  "agent_pos", "next_agent_pos")}
    k = 0
    for _ in range(n):
        env, teacher = envs[k], teachers[k]
        obs, pos = state[k]
        action = int(rng.integers(4))
        next_obs, _, terminated, truncated, info = env.step(action)
        next_pos = info["agent_pos"]
        label = teacher.label(pos[None], np.array([action]), next_pos[None])[0]
        for key, value in (("obs", obs), ("action", action), ("next_obs", next_obs), ("done", terminated),
                           ("label", label), ("task_id", teacher.task.id), ("agent_pos", pos),
                           ("next_agent_pos", next_pos)):
            rows[key].append(value)
        if terminated or truncated:
            next_obs, info = env.reset()
        state[k] = (next_obs, info["agent_pos"])
        k = (k + 1) % len(envs)
    return Transitions(**{key: np.array(v) for key, v in rows.items()}, metadata={"collector": "loop"})


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    from importlib.metadata import version

    return {
        "platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0], "numpy": np.__version__, "gymnasium": gym.__version__,
        "torch": version("torch"), "rewardshare": rewardshare.__version__,
    }


def run(env_id: str, n_vector: int, n_loop: int, repeats: int, seed: int) -> dict[str, Any]:
    """Interleaved repeats of both collectors; returns the JSON-ready result."""
    spec = gym.spec(env_id).kwargs
    family = TaskFamily(spec.get("layout", "open"), spec.get("size", 8), layout_seed=spec.get("layout_seed", 0))
    vector_collect(family, min(n_vector, 1000), seed)  # warm-up: imports, table building
    loop_collect(family, env_id, min(n_loop, 200), seed)
    vec_rates, loop_rates = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        data = vector_collect(family, n_vector, seed + r)
        vec_rates.append(len(data) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        data = loop_collect(family, env_id, n_loop, seed + r)
        loop_rates.append(len(data) / (time.perf_counter() - t0))
    vec_med, loop_med = statistics.median(vec_rates), statistics.median(loop_rates)
    return {
        "benchmark": "collect_speed",
        "what": "labelled random-policy transitions per second over every train task of the family",
        "env_id": env_id, "family": family.name, "n_tasks": len(family.train),
        "n_vector": n_vector, "n_loop": n_loop, "repeats": repeats, "seed": seed,
        "vector_rates": vec_rates, "loop_rates": loop_rates,
        "vector_median": vec_med, "loop_median": loop_med, "ratio": vec_med / loop_med,
        "target_ratio": TARGET_RATIO, "meets_target": vec_med / loop_med >= TARGET_RATIO,
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, print a table and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="rewardshare/GridGoal-FourRooms-v0")
    parser.add_argument("--n-vector", type=int, default=100_000, help="transitions per vector run")
    parser.add_argument("--n-loop", type=int, default=20_000, help="transitions per loop run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_vector, args.n_loop, args.repeats = 2000, 300, 1
    # no torch here (so no torch.set_num_threads): both collectors are numpy and pure Python, single-threaded
    result = run(args.env_id, args.n_vector, args.n_loop, args.repeats, args.seed)
    result["command"] = " ".join(["python benchmarks/collect_speed.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"{'collector':<10} {'median transitions/s':>22}   per repeat")
    for name in ("vector", "loop"):
        rates = ", ".join(f"{r:,.0f}" for r in result[f"{name}_rates"])
        print(f"{name:<10} {result[f'{name}_median']:>22,.0f}   {rates}")
    verdict = "met" if result["meets_target"] else "NOT met"
    print(f"ratio {result['ratio']:.1f}x (target >= {TARGET_RATIO:.0f}x): {verdict}")
    atomic_write_json(args.out, result, indent=2)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
