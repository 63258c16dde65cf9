"""Turn a sweep's run files into metrics, aggregate tables, plots and a markdown report.

Per run: steps to reach the success threshold (censored at the budget when never reached), the normalised area
under the success curve, the final and the peak success rate, whether the run collapsed (fell by ``collapse_drop``
after its peak, see :mod:`~rewardshare.experiments.collapse`) and the reward model's EPIC distance to the teacher.
A run is grouped under its label: the method, or ``method+variant`` for an uncertainty-aware reward.
Across runs (grouped by algorithm, method and k): IQM with stratified bootstrap 95% CIs over tasks x seeds, the
speedup over scratch (ratio of IQM steps-to-threshold, runs paired by task and seed) and the probability that a
run of the method has a larger success AUC than the scratch run of the same task; the collapse rate with a
hierarchical bootstrap CI (goals, then seeds) and, for an uncertainty-aware reward, its paired difference to the
plain reward of the same method. The figures are drawn by
:mod:`~rewardshare.experiments.report_plots` (re-exported here).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare._atomic import atomic_open, atomic_write_text
from rewardshare.experiments import stats
from rewardshare.experiments.collapse import collapse_of, collapse_section, collapse_stats
from rewardshare.experiments.config import LEGACY_METHOD_NAMES, ORACLE_METHODS, BenchConfig
from rewardshare.experiments.names import run_label
from rewardshare.experiments.report_plots import plot_epic_vs_k, plot_learning_curves, plot_speedup
from rewardshare.experiments.store import ResultStore, atomic_write_json

RUNS_CSV = "runs.csv"
EPIC_CSV = "epic.csv"
AGGREGATE_JSON = "aggregate.json"
REPORT_MD = "report.md"
FIGURES = {"curves": "learning_curves.png", "speedup": "speedup.png", "epic": "epic_vs_k.png"}
RUN_COLUMNS = ("algo", "method", "k", "task_id", "seed", "steps_to_threshold", "reached", "auc", "final_success",
               "peak_success", "collapsed", "epic", "wall_s")


def load_runs(root: str | os.PathLike[str]) -> tuple[BenchConfig, list[dict[str, Any]]]:
    """The config and every finished run record of a results directory.

    Raises:
        FileNotFoundError: If ``root`` is not a results directory.
        ConfigMismatchError: If a run file was written by another config.
    """
    config = ResultStore.load_config(root)
    store = ResultStore(root, config)
    return config, [_canonical(store.read(p)) for p in store.run_files()]


def _canonical(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its method under today's name (results written before the method registry used others) and
    its ``label``: the method, or ``method+variant`` for an uncertainty-aware reward (older records: the method)."""
    method = LEGACY_METHOD_NAMES.get(record["method"], record["method"])
    return {**record, "method": method, "label": run_label(method, record.get("uncertainty", "none"))}


def load_epics(root: str | os.PathLike[str], config: BenchConfig) -> list[dict[str, Any]]:
    """Every adapted model's EPIC record (``targets/*/k*/*.json``), one per method x k x task x seed."""
    store = ResultStore(root, config)
    out = []
    for p in sorted(Path(root).glob("targets/*/k*/*.json")):
        d = _canonical(store.read(p))
        out.append({"method": d["method"], "k": int(d["k"]), "task_id": d["task_id"], "seed": int(d["seed"]),
                    "epic": float(d["epic"]), "epic_unadapted": _float_or_nan(d.get("epic_unadapted"))})
    return out


def _float_or_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def run_metrics(record: dict[str, Any], config: BenchConfig) -> dict[str, Any]:
    """The per-run metrics of one run record.

    Args:
        record: A run file's content (``curve`` with ``timesteps`` and ``success`` lists).
        config: The sweep's config (threshold and budget).

    Returns:
        A row with the columns of :data:`RUN_COLUMNS` (``method`` is the run's label, e.g. ``latent+pessimistic``)
        plus ``base_method`` and ``uncertainty``.
    """
    curve = record["curve"]
    t, s = curve["timesteps"], curve["success"]
    steps, reached = stats.steps_to_threshold(t, s, config.success_threshold, budget=config.total_timesteps)
    peak, collapsed = collapse_of(s, config.collapse_drop)
    uncertainty = record.get("uncertainty", "none")
    return {
        "algo": record["algo"], "method": run_label(record["method"], uncertainty), "base_method": record["method"],
        "uncertainty": uncertainty, "k": int(record["k"]), "task_id": record["task_id"],
        "seed": int(record["seed"]), "steps_to_threshold": steps, "reached": bool(reached),
        "auc": stats.success_auc(t, s), "final_success": float(s[-1]), "peak_success": peak,
        "collapsed": bool(collapsed),
        "epic": _float_or_nan(record.get("epic")), "wall_s": float(record.get("wall_s", float("nan"))),
    }


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str], columns: tuple[str, ...]) -> Path:
    """Write ``rows`` as CSV atomically (temp file + rename)."""
    path = Path(path)
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _group_by_task(rows: list[dict[str, Any]], key: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        out[r["task_id"]][r["seed"]] = float(r[key])
    return out


def _paired(
    a: dict[str, dict[int, float]], b: dict[str, dict[int, float]]
) -> tuple[list[list[float]], list[list[float]]]:
    """Scores of ``a`` and ``b`` on the (task, seed) pairs both have, grouped by task."""
    xa, xb = [], []
    for task in sorted(set(a) & set(b)):
        seeds = sorted(set(a[task]) & set(b[task]))
        if seeds:
            xa.append([a[task][s] for s in seeds])
            xb.append([b[task][s] for s in seeds])
    return xa, xb


def _est(groups: list[list[float]] | dict[str, dict[int, float]], n_boot: int, seed: int) -> dict[str, float] | None:
    if isinstance(groups, dict):
        groups = [list(v.values()) for _, v in sorted(groups.items())]
    groups = [g for g in groups if g and not any(math.isnan(x) for x in g)]
    if not groups:
        return None
    return stats.iqm_ci(groups, n_boot=n_boot, seed=seed).to_dict()


def aggregate(
    rows: list[dict[str, Any]],
    epics: list[dict[str, Any]],
    config: BenchConfig,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Aggregate per-run metrics and EPIC records.

    Args:
        rows: Per-run metrics (:func:`run_metrics`).
        epics: EPIC records (:func:`load_epics`).
        config: The sweep's config.
        n_boot: Bootstrap resamples for every CI.
        seed: Bootstrap seed.

    Returns:
        ``{"runs": [...], "epic": [...]}``: per (algo, method, k) the IQM [CI] of final success, AUC and
        steps-to-threshold, the fraction of runs that reached the threshold, the speedup over scratch and the
        probability of improvement over scratch (both ``None`` for scratch itself or without paired scratch runs);
        oracles and zero-shot runs (both ``k = 0``) are compared with scratch at every positive agent k
        (``scratch_k``); the collapse columns of :func:`~rewardshare.experiments.collapse.collapse_stats` (an
        uncertainty-aware reward paired with its method's plain reward). Per (method, k) the IQM [CI] of EPIC.
    """
    by: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["algo"], r["method"], r["k"])].append(r)
    order = {m: i for i, m in enumerate(config.run_labels())}
    aorder = {a: i for i, a in enumerate(config.algos)}
    agent_ks = tuple(k for k in config.rl_ks if k > 0)
    entries = []
    for (algo, method, k), rs in sorted(by.items(), key=lambda kv: (aorder.get(kv[0][0], 99), order.get(kv[0][1], 99),
                                                                    kv[0][2])):
        plain = by.get((algo, rs[0]["base_method"], k)) if rs[0]["uncertainty"] != "none" else None
        collapse = collapse_stats(rs, plain, config.collapse_drop, n_boot=n_boot, seed=seed)
        # rewards that need no target feedback (oracles, zero-shot models) are compared with scratch at every
        # agent k where scratch ran (scratch has no k = 0 runs)
        compare_ks = (agent_ks or (0,)) if method in ORACLE_METHODS or k == 0 else (k,)
        for ck in compare_ks:
            e: dict[str, Any] = {
                "algo": algo, "method": method, "k": k, "scratch_k": ck, "n": len(rs),
                "tasks": len({r["task_id"] for r in rs}),
                "final_success": _est(_group_by_task(rs, "final_success"), n_boot, seed),
                "auc": _est(_group_by_task(rs, "auc"), n_boot, seed),
                "steps_to_threshold": _est(_group_by_task(rs, "steps_to_threshold"), n_boot, seed),
                "reached": float(np.mean([r["reached"] for r in rs])),
                "epic": _est(_group_by_task(rs, "epic"), n_boot, seed) if method not in ORACLE_METHODS else None,
                "speedup": None, "p_improve": None, "scratch_reached": None, **collapse,
            }
            scratch = by.get((algo, "scratch", ck), [])
            if method != "scratch" and scratch:
                ms, ss = _paired(_group_by_task(rs, "steps_to_threshold"),
                                 _group_by_task(scratch, "steps_to_threshold"))
                if ms:
                    e["speedup"] = stats.speedup_ci(ms, ss, n_boot=n_boot, seed=seed).to_dict()
                    e["scratch_reached"] = float(np.mean([r["reached"] for r in scratch]))
                ma, sa = _paired(_group_by_task(rs, "auc"), _group_by_task(scratch, "auc"))
                if ma:
                    e["p_improve"] = stats.probability_of_improvement(ma, sa, n_boot=n_boot, seed=seed).to_dict()
            entries.append(e)
    eby: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in epics:
        eby[(r["method"], r["k"])].append(r)
    epic_entries = []
    for (method, k), rs in sorted(eby.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        epic_entries.append({
            "method": method, "k": k, "n": len(rs), "epic": _est(_group_by_task(rs, "epic"), n_boot, seed),
            "epic_unadapted": _est(_group_by_task(rs, "epic_unadapted"), n_boot, seed),
        })
    return {"runs": entries, "epic": epic_entries}


def _k_label(e: dict[str, Any]) -> str:
    """The report's k column: the method's budget, and for rewards that need no target feedback (oracles,
    zero-shot) the scratch budget they are compared with."""
    if e["method"] in ORACLE_METHODS:
        return f"– (vs scratch k={e['scratch_k']})"
    if e["k"] == 0:
        return f"0 (zero-shot, vs scratch k={e['scratch_k']})"
    return str(e["k"])


def _fmt(e: dict[str, float] | None, digits: int = 2, scale: float = 1.0) -> str:
    if e is None:
        return "–"
    v, lo, hi = e["value"] / scale, e["low"] / scale, e["high"] / scale
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _verdicts(agg: dict[str, Any]) -> list[str]:
    """One sentence per learned method whose speedup CI does not lie above 1 (it did not demonstrably help), with
    the facts that say why: whether its runs (and scratch's) reached the threshold, and its reward model's EPIC next
    to the best EPIC at the same k."""
    best_epic: dict[int, float] = {}
    for e in agg["runs"]:
        if e["epic"] is not None and e["method"] not in ORACLE_METHODS:
            best_epic[e["k"]] = min(best_epic.get(e["k"], math.inf), e["epic"]["value"])
    lines = []
    for e in agg["runs"]:
        sp = e["speedup"]
        if e["method"] in ORACLE_METHODS or sp is None or sp["low"] > 1.0:
            continue
        if e["reached"] == 0.0 and e["scratch_reached"] == 0.0:
            what = "neither its runs nor scratch's reached the threshold within the budget, so no speedup is measurable"
        elif sp["high"] < 1.0:
            what = "slower than scratch"
        else:
            what = f"not distinguishable from scratch ({e['reached']:.0%} of its runs reached the threshold)"
        why = ""
        if e["epic"] is not None and e["k"] in best_epic:
            why = (f"; its {'adapted' if e['k'] else 'zero-shot'} reward model is at EPIC {e['epic']['value']:.3f} "
                   f"from the teacher (best method at this k: {best_epic[e['k']]:.3f})")
        vs = f", zero-shot, vs scratch k = {e['scratch_k']}" if e["k"] == 0 else ""
        lines.append(f"- {e['algo'].upper()} {e['method']} (k = {e['k']}{vs}): speedup {_fmt(sp)} — {what}{why}.")
    return lines


def markdown_report(agg: dict[str, Any], config: BenchConfig, figures: dict[str, str], meta: dict[str, Any]) -> str:
    """The markdown report: setup, headline tables, EPIC vs k, figures, caveats."""
    from rewardshare.experiments.runner import task_split

    split = task_split(config)
    thr = config.success_threshold
    posterior = [m for m in config.methods if len(config.uncertainty_of(m)) > 1]
    lines = [
        f"# Learning-curve benchmark — profile `{config.profile}` (config `{config.config_hash()}`)",
        "",
        f"Task family: `{config.layout}` {config.size}x{config.size}, goals `{config.subset}`; "
        f"{len(split['source'])} source tasks, {len(split['validation'])} validation tasks (from the train split, used "
        f"only to choose adaptation settings), {len(split['eval'])} evaluated held-out tasks: "
        + ", ".join(f"`{t.id}`" for t in split["eval"]) + ".",
        f"Feedback: {config.feedback} from the {config.teacher_reward} teacher (noise {config.teacher_noise:g}); "
        f"{config.source_budget} items per source task; target budgets k = {list(config.ks)} (agents at "
        f"k = {list(config.rl_ks)}). Seeds {list(config.seeds)}; {config.total_timesteps} agent steps per run, "
        f"evaluated every {config.eval_every} steps on {config.eval_episodes} episodes with the true reward.",
        *([f"Rewards of the methods with a posterior ({', '.join(posterior)}): "
           f"{', '.join(config.reward_uncertainty)} (`method+variant` rows; pessimistic = posterior mean - "
           f"{config.pessimism_beta:g} std; scratch's posterior is a {config.ensemble_size}-network ensemble"
           + ("; `+potential` = only the potential-based part phi(s') - phi(s) of that reward, phi fitted by least "
              "squares over every move of the grid" if any(u.endswith("potential") for u in config.reward_uncertainty)
              else "") + ")."]
          if len(config.reward_uncertainty) > 1 else []),
        f"Success threshold {thr:g}. All of the above were fixed in the config before any result was seen.",
        "",
        f"Runs: {meta.get('n_runs', '?')}; epic records: {meta.get('n_epic', '?')}; rewardshare "
        f"{meta.get('version', '?')}; sweep wall time {meta.get('sweep_wall_s', 0.0) / 60:.1f} min over "
        f"{meta.get('sessions', 0)} session(s).",
        "",
        "## Agents (IQM over tasks x seeds, [95% stratified bootstrap CI])",
        "",
        f"Steps to {thr:g} success are censored at the budget ({config.total_timesteps}) for runs that never reach "
        "it (column *reached*); a speedup involving censored runs is a bound, not a measurement. "
        "*P(improve)* = probability that the method's success AUC beats scratch's on the same task.",
        *(["k = 0 is zero-shot: the pre-trained method's model with no target feedback and no adaptation, compared "
           "with scratch at every agent k; scratch cannot predict without feedback, so it has no k = 0 runs."]
          if 0 in config.ks else []),
        "",
        "| algo | method | k | final success | success AUC | steps to threshold | reached | speedup vs scratch "
        "| P(improve) | EPIC |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in agg["runs"]:
        k = _k_label(e)
        lines.append(
            f"| {e['algo']} | {e['method']} | {k} | {_fmt(e['final_success'])} | {_fmt(e['auc'])} | "
            f"{_fmt(e['steps_to_threshold'], 0)} | {e['reached']:.0%} | {_fmt(e['speedup'])} | "
            f"{_fmt(e['p_improve'])} | {_fmt(e['epic'], 3)} |"
        )
    lines += ["", "## Reward models: EPIC distance to the teacher on held-out tasks", "",
              "| method | k | EPIC after adaptation | EPIC before adaptation |", "| --- | --- | --- | --- |"]
    for e in agg["epic"]:
        lines.append(f"| {e['method']} | {e['k']} | {_fmt(e['epic'], 3)} | {_fmt(e['epic_unadapted'], 3)} |")
    lines += [""] + collapse_section(agg["runs"], config.collapse_drop, thr, config.total_timesteps)
    verdicts = _verdicts(agg)
    if verdicts:
        lines += ["", "## Methods that did not demonstrably speed learning up", ""] + verdicts
    lines += ["", "## Figures", ""]
    for title, key in (("Learning curves", "curves"), ("Speedup over scratch", "speedup"), ("EPIC vs k", "epic")):
        if key in figures:
            lines += [f"### {title}", "", f"![{title}]({figures[key]})", ""]
    return "\n".join(lines) + "\n"


def make_report(root: str | os.PathLike[str], n_boot: int = 2000, plots: bool = True) -> dict[str, Any]:
    """Write ``runs.csv``, ``epic.csv``, ``aggregate.json``, the PNG figures and ``report.md`` into ``root``.

    Args:
        root: A results directory (:func:`~rewardshare.experiments.runner.run_sweep` output); partial sweeps work.
        n_boot: Bootstrap resamples.
        plots: Also draw the figures.

    Returns:
        The aggregate (as written to ``aggregate.json``) plus ``"paths"``, the files written.

    Raises:
        FileNotFoundError: If ``root`` is not a results directory.
        ConfigMismatchError: If any result file belongs to another config.
    """
    from rewardshare._version import __version__

    root = Path(root)
    config, records = load_runs(root)
    rows = [run_metrics(r, config) for r in records]
    epics = load_epics(root, config)
    agg = aggregate(rows, epics, config, n_boot=n_boot)
    paths = {"runs_csv": str(write_csv(rows, root / RUNS_CSV, RUN_COLUMNS)),
             "epic_csv": str(write_csv(epics, root / EPIC_CSV, ("method", "k", "task_id", "seed", "epic",
                                                                 "epic_unadapted")))}
    figures: dict[str, str] = {}
    if plots and records:
        plot_learning_curves(records, config, root / FIGURES["curves"])
        figures["curves"] = FIGURES["curves"]
        if any(e["speedup"] for e in agg["runs"]):
            plot_speedup(agg, config, root / FIGURES["speedup"])
            figures["speedup"] = FIGURES["speedup"]
    if plots and agg["epic"]:
        plot_epic_vs_k(agg, config, root / FIGURES["epic"])
        figures["epic"] = FIGURES["epic"]
    store = ResultStore(root, config)
    sessions = store.read(store.sessions_path())["sessions"] if store.sessions_path().exists() else []
    meta = {"n_runs": len(records), "n_epic": len(epics), "version": __version__, "sessions": len(sessions),
            "sweep_wall_s": float(sum(x["wall_s"] for x in sessions)),
            "units_run": int(sum(x["ran"] for x in sessions))}
    md = markdown_report(agg, config, figures, meta)
    atomic_write_text(root / REPORT_MD, md)
    paths["report"] = str(root / REPORT_MD)
    paths.update({k: str(root / v) for k, v in figures.items()})
    out = {"config_hash": config.config_hash(), "profile": config.profile, **agg, "meta": meta}
    atomic_write_json(root / AGGREGATE_JSON, out)
    paths["aggregate"] = str(root / AGGREGATE_JSON)
    return {**out, "paths": paths}




def summary_rows(agg: dict[str, Any]) -> list[dict[str, str]]:
    """One short row per (algo, method, k) for a one-screen summary: IQMs, the speedup with its 95% CI."""
    def v(e: dict[str, float] | None, digits: int) -> str:
        return "-" if e is None else f"{e['value']:.{digits}f}"

    rows = []
    for e in agg["runs"]:
        sp = e["speedup"]
        rows.append({
            "algo": e["algo"], "method": e["method"],
            "k": "-" if e["method"] in ORACLE_METHODS else f"0 (vs {e['scratch_k']})" if e["k"] == 0 else str(e["k"]),
            "success": v(e["final_success"], 2), "steps": v(e["steps_to_threshold"], 0),
            "hit": f"{e['reached']:.0%}", "collapse": f"{e['collapse_rate']['value']:.2f}",
            "speedup [CI]": "-" if sp is None else f"{sp['value']:.2f} [{sp['low']:.2f},{sp['high']:.2f}]",
            "EPIC": v(e["epic"], 3),
        })
    return rows


__all__ = ["AGGREGATE_JSON", "FIGURES", "REPORT_MD", "RUNS_CSV", "aggregate", "load_epics", "load_runs",
           "make_report", "markdown_report", "plot_epic_vs_k", "plot_learning_curves", "plot_speedup", "run_metrics",
           "summary_rows"]
