"""The figures of a learning-curve report: learning curves, speedup over scratch, reward-model EPIC vs k.

Each function draws from what :mod:`~rewardshare.experiments.report` computed (the run records or the aggregate) and
writes one PNG; matplotlib is imported inside them (Agg backend), so reading results never needs it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare.experiments import stats
from rewardshare.experiments.config import BenchConfig
from rewardshare.experiments.names import ORACLE_METHODS, split_label

#: Line style of a run label's reward variant (oracles are dashed).
VARIANT_STYLE = {"none": "-", "mean": "-.", "pessimistic": ":", "potential": (0, (5, 1)),
                 "mean+potential": (0, (3, 1, 1, 1, 1, 1)), "pessimistic+potential": (0, (1, 2))}


def _curves(rows_records: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Common evaluation grid and per-task ``(n_seeds, T)`` success curves (interpolated onto the grid)."""
    grid = np.asarray(rows_records[0]["curve"]["timesteps"], dtype=float)
    by_task: dict[str, list[np.ndarray]] = defaultdict(list)
    for r in rows_records:
        t = np.asarray(r["curve"]["timesteps"], dtype=float)
        s = np.asarray(r["curve"]["success"], dtype=float)
        by_task[r["task_id"]].append(s if t.shape == grid.shape and np.allclose(t, grid) else np.interp(grid, t, s))
    return grid, [np.stack(v) for _, v in sorted(by_task.items())]


def plot_learning_curves(records: list[dict[str, Any]], config: BenchConfig, path: Path, n_boot: int = 1000) -> Path:
    """Success-rate learning curves, IQM with 95% stratified bootstrap bands; a panel per algorithm and agent k, a
    colour per method and a line style per reward variant (plain solid, posterior mean dash-dot, pessimistic
    dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(config.rl_ks) or [0]
    algos = list(config.algos)
    width, height = max(5.2 * len(algos), 7.0), 3.8 * len(ks)
    fig, axes = plt.subplots(len(ks), len(algos), figsize=(width, height), squeeze=False,
                             sharey=True)
    colors = plt.get_cmap("tab10")
    for i, k in enumerate(ks):
        for j, algo in enumerate(algos):
            ax = axes[i][j]
            for label in config.run_labels():
                method, variant = split_label(label)
                want_k = 0 if method in ORACLE_METHODS else k
                rs = [r for r in records if r["algo"] == algo and r.get("label", r["method"]) == label
                      and int(r["k"]) == want_k]
                if not rs:
                    continue
                grid, curves = _curves(rs)
                mid, lo, hi = stats.iqm_curve_ci(curves, n_boot=n_boot)
                style = "--" if method in ORACLE_METHODS else VARIANT_STYLE[variant]
                color = colors(config.methods.index(method) % 10)
                ax.plot(grid, mid, color=color, label=label, lw=1.6, ls=style)
                ax.fill_between(grid, lo, hi, color=color, alpha=0.15 if variant == "none" else 0.07, lw=0)
            ax.axhline(config.success_threshold, color="grey", lw=0.8, ls=":")
            zero = " (zero-shot)" if k == 0 else ""
            ax.set_title(f"{algo.upper()}, k = {k} target items{zero}" if config.reuse_methods else algo.upper())
            ax.set_xlabel("env steps")
            ax.set_ylim(-0.02, 1.02)
            if j == 0:
                ax.set_ylabel("true success rate (IQM, 95% CI)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    # as many legend columns as fit the width (a label like "scratch+pessimistic" needs about 2 inches)
    ncol = max(1, min(len(labels), 5, int(width / 2.0))) if handles else 1
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False)
    rows = -(-len(labels) // ncol) if handles else 0
    fig.tight_layout(rect=(0, min(0.3 * rows / height + 0.01, 0.4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_speedup(agg: dict[str, Any], config: BenchConfig, path: Path) -> Path:
    """Speedup over scratch (steps-to-threshold ratio, IQM, 95% CI) per method; a panel per algorithm, a colour per
    scratch budget k (a method at k is compared with scratch at k; oracles and zero-shot runs with every k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    algos = list(config.algos)
    ks = [k for k in config.rl_ks if k > 0]  # the scratch budgets compared with (scratch has no k = 0 runs)
    # one row per method, and one more per pre-trained method run zero-shot (k = 0 among the agent ks)
    rows = [(m, False) for m in config.run_labels()
            if m != "scratch" and (split_label(m)[0] not in config.reuse_methods or ks)]
    if 0 in config.rl_ks:
        rows += [(m, True) for m in config.pretrained_methods]
    names = [f"{m} (zero-shot)" if zero else m for m, zero in rows]
    fig, axes = plt.subplots(1, len(algos), figsize=(6.4 * len(algos), max(3.6, 1.6 + 0.3 * len(rows))),
                             squeeze=False)
    for j, algo in enumerate(algos):
        ax = axes[0][j]
        labelled: set[int] = set()
        for ki, k in enumerate(ks):
            color = plt.get_cmap("tab10")(ki % 10)
            for mi, (m, zero) in enumerate(rows):
                e = next((e for e in agg["runs"] if e["algo"] == algo and e["method"] == m and e["scratch_k"] == k
                          and (e["k"] == 0 and m not in ORACLE_METHODS) == zero and e["speedup"]), None)
                if e is None:
                    continue
                sp = e["speedup"]
                y = mi + (ki - (len(ks) - 1) / 2) * 0.25
                # hollow: some runs (of the method or of scratch) never reached the threshold, so it is a bound
                exact = e["reached"] == 1.0 and e["scratch_reached"] == 1.0
                err = [[max(sp["value"] - sp["low"], 0)], [max(sp["high"] - sp["value"], 0)]]
                ax.errorbar([sp["value"]], [y], xerr=err, fmt="o", capsize=3, color=color,
                            mfc=color if exact else "white", label=None if k in labelled else f"scratch k = {k}")
                labelled.add(k)
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.set_title(f"{algo.upper()}: speedup over scratch")
        ax.set_xlabel(f"scratch steps / method steps to {config.success_threshold:g} success\n"
                      "(hollow: some runs never got there, so the ratio is a bound)", fontsize=9)
        if len(ks) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_epic_vs_k(agg: dict[str, Any], config: BenchConfig, path: Path) -> Path:
    """Reward-model EPIC distance to the teacher vs the target budget k (IQM, 95% CI), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    colors = plt.get_cmap("tab10")
    for mi, m in enumerate(config.methods):
        es = [e for e in agg["epic"] if e["method"] == m and e["epic"]]
        if not es:
            continue
        ks = [e["k"] for e in es]
        v = [e["epic"]["value"] for e in es]
        ax.plot(ks, v, "o-", color=colors(mi % 10), label=m)
        ax.fill_between(ks, [e["epic"]["low"] for e in es], [e["epic"]["high"] for e in es], color=colors(mi % 10),
                        alpha=0.15, lw=0)
    if 0 in config.ks:  # zero-shot sits at k = 0, which a log axis cannot show: linear up to 1, log beyond
        ax.set_xscale("symlog", base=2, linthresh=1)
    else:
        ax.set_xscale("log", base=2)
    ax.set_xticks(list(config.ks), [str(k) for k in config.ks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("target feedback items k")
    ax.set_ylabel("EPIC distance to teacher (IQM, 95% CI)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("Reward-model quality on held-out tasks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["plot_epic_vs_k", "plot_learning_curves", "plot_speedup"]
