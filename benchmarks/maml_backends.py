"""How fast is one MAML meta-iteration with each backend? ``torch.func`` (stacked tasks) against ``higher``.

One meta-iteration is what :meth:`rewardshare.rewardmodels.reuse.MAML.meta_train` repeats: the meta-loss of one
meta-batch (``K`` inner steps per task on its support items, the query loss of the adapted weights) and its gradient
with respect to the meta-parameters. Both backends compute the same thing on the same meta-batch (the script checks
that their meta-gradients agree); what differs is how: ``higher`` unrolls the inner loop task by task, ``func``
stacks the tasks' weights and runs every task in a few batched operations (see
:mod:`rewardshare.rewardmodels.reuse.maml_backends`).

Measured in one process on one thread, with interleaved repeats (``func`` and ``higher`` alternate, their order
flipping every repeat, so machine noise hits both alike), after one warm-up round. Each sample times ``--per-sample``
meta-iterations back to back (a sample of a few milliseconds is doubled by a single time slice another process takes
on a shared machine; a longer one averages those out). Reported per setting: the median milliseconds per
meta-iteration of each backend, the ratio of the medians, the median of the per-repeat ratios and the ratio of the
fastest samples (``higher / func``: how many times faster ``func`` is).

Settings (each with second-order and first-order MAML): the meta-batch of the few-shot benchmark (8 tasks of the
open 8x8 grid, ``K = 5`` inner steps, 16 support and 32 query labels per task) on the reward network the issue's
baseline figure was measured with (64, 64), and on the few-shot benchmark's network (128, 128, 128).

Run: ``python benchmarks/maml_backends.py`` (about 1 minute on a shared 2-core machine); ``--quick`` for a smoke
run. Writes ``benchmarks/results/maml_backends.json``.
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

import numpy as np
import torch

import rewardshare
from rewardshare._atomic import atomic_write_json
from rewardshare.envs import TaskFamily
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig, MetaBatchSampler

BACKENDS = ("func", "higher")


def machine_info() -> dict[str, Any]:
    """Machine and library versions for the results file."""
    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": np.__version__, "rewardshare": rewardshare.__version__,
    }


def time_setting(
    hidden: tuple[int, ...], first_order: bool, args: argparse.Namespace, family: TaskFamily
) -> dict[str, Any]:
    """Median ms per meta-iteration of each backend for one network and order; their gradients compared."""
    tasks = list(family.train[: max(args.meta_batch, 2)])
    env = tasks[0].make_env()
    per_task = 4 * (len(env.layout.free_cells) - 1)  # every (cell, action) pair once
    source = make_loss("mse", collect_transitions(tasks, per_task * len(tasks), seed=0))
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=hidden, seed=0)
    config = MAMLConfig(inner_steps=args.inner_steps, inner_lr=0.05, first_order=first_order,
                        meta_batch_size=args.meta_batch, support_size=args.support, query_size=args.query)
    maml = MAML(model, config)
    support, query = MetaBatchSampler(split_by_task(source), args.meta_batch, args.support, args.query).sample()
    params = list(maml.meta_parameters())

    def iteration(backend: str) -> list[torch.Tensor]:
        loss = maml.meta_loss(support, query, source.loss, source.shared, backend=backend)
        return list(torch.autograd.grad(loss, params))

    grads = {b: iteration(b) for b in BACKENDS}  # the warm-up round, and the gradients compared
    max_diff = max(float((a - b).abs().max()) for a, b in zip(grads["func"], grads["higher"], strict=True))
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for rep in range(args.repeats):
        for backend in (BACKENDS if rep % 2 == 0 else BACKENDS[::-1]):
            start = time.perf_counter()
            for _ in range(args.per_sample):
                iteration(backend)
            times[backend].append(1000 * (time.perf_counter() - start) / args.per_sample)
    med = {b: statistics.median(v) for b, v in times.items()}
    ratios = [h / f for f, h in zip(times["func"], times["higher"], strict=True)]
    return {
        "hidden_sizes": list(hidden),
        "first_order": first_order,
        "func_ms": round(med["func"], 3),
        "higher_ms": round(med["higher"], 3),
        "higher_over_func": round(med["higher"] / med["func"], 3),
        "median_paired_ratio": round(statistics.median(ratios), 3),
        "fastest_ratio": round(min(times["higher"]) / min(times["func"]), 3),
        "max_abs_gradient_difference": max_diff,
        "raw_ms": {b: [round(t, 3) for t in v] for b, v in times.items()},
    }


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Every setting, in one process."""
    family = TaskFamily("open", args.size)
    start = time.perf_counter()
    results = [time_setting(tuple(h), fo, args, family) for h in args.hidden for fo in (False, True)]
    return {
        "benchmark": "maml_backends",
        "command": command,
        "machine": machine_info(),
        "settings": {"layout": f"open:{args.size}", "meta_batch": args.meta_batch, "inner_steps": args.inner_steps,
                     "support": args.support, "query": args.query, "repeats": args.repeats,
                     "meta_iterations_per_sample": args.per_sample,
                     "meta_sgd": False, "inner_lr": 0.05},
        "results": results,
        "seconds": round(time.perf_counter() - start, 1),
        "note": "higher_over_func: how many times faster one torch.func meta-iteration (meta-loss and its gradient) "
                "is than higher's, same meta-batch, interleaved repeats, medians; the machine is shared, so compare "
                "the ratios, not the milliseconds, across runs",
    }


def print_table(res: dict[str, Any]) -> None:
    """One line per setting."""
    print(f"{'hidden':>16s} {'order':>6s} {'func ms':>9s} {'higher ms':>10s} {'ratio':>6s} {'paired':>7s} "
          f"{'fastest':>8s} {'|dg|':>8s}")
    for r in res["results"]:
        print(f"{str(tuple(r['hidden_sizes'])):>16s} {'first' if r['first_order'] else 'second':>6s} "
              f"{r['func_ms']:9.2f} {r['higher_ms']:10.2f} {r['higher_over_func']:6.2f} "
              f"{r['median_paired_ratio']:7.2f} {r['fastest_ratio']:8.2f} {r['max_abs_gradient_difference']:8.1e}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, print, write the JSON atomically."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="Tiny settings for a smoke test (seconds).")
    p.add_argument("--repeats", type=int, default=15, help="Interleaved repeats per backend and setting.")
    p.add_argument("--per-sample", type=int, default=10, help="Meta-iterations timed together in one sample.")
    p.add_argument("--size", type=int, default=8, help="Side of the open grid.")
    p.add_argument("--meta-batch", type=int, default=8, help="Tasks per meta-batch.")
    p.add_argument("--inner-steps", type=int, default=5, help="Inner steps K.")
    p.add_argument("--support", type=int, default=16, help="Support labels per task.")
    p.add_argument("--query", type=int, default=32, help="Query labels per task.")
    p.add_argument("--hidden", type=lambda s: tuple(int(v) for v in s.split(",")), nargs="+",
                   default=[(64, 64), (128, 128, 128)], help="Reward-network widths, e.g. 64,64 128,128,128.")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "maml_backends.json"),
                   help="Output JSON path.")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.per_sample, args.size, args.meta_batch, args.inner_steps = 2, 1, 5, 2, 1
        args.support, args.query, args.hidden = 4, 4, [(8,)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs are fastest on one thread, and the machine is shared
    try:
        res = run(args, " ".join(["python", "benchmarks/maml_backends.py", *argv]))
    finally:
        torch.set_num_threads(threads)
    print_table(res)
    out = atomic_write_json(args.out, res)
    print(f"\nwrote {out}")
    return res


if __name__ == "__main__":
    main()
