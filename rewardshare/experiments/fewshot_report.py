"""The few-shot benchmark's report: per family and feedback kind, each method's EPIC-vs-k curve, the feedback it needs
to reach each threshold, its source-task fit, and how far it is from the Bayes reference.

Every statistic is computed per *run* (held-out goal x pre-training seed x draw) and summarised by its median with a
hierarchical bootstrap CI (:func:`~.stats.hierarchical_bootstrap`: goals resampled, then runs within goals).
Feedback-to-threshold of a run is the first ``k`` of the grid from which its EPIC stays at or below the threshold for
every larger ``k`` (``inf`` if none: the run did not get there within the grid); a curve that dips below the
threshold and rises again has not reached it at the dip.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare._atomic import atomic_open, atomic_write_json, atomic_write_text
from rewardshare.experiments.fewshot_config import BAYES, FewShotConfig
from rewardshare.experiments.stats import first_reaching, hierarchical_bootstrap

UNIT_NAMES = {"labels": "labels", "preferences": "preference pairs", "demonstrations": "demonstrations"}


def _by_goal(units: list[dict[str, Any]], kind: str, pick: Any) -> dict[str, list[float]]:
    """Per held-out goal, the value ``pick(epic_by_k, run_index)`` of every run of ``units`` (all seeds)."""
    out: dict[str, list[float]] = defaultdict(list)
    for unit in units:
        curves = unit["kinds"][kind]["epic"]
        for i, (goal, _) in enumerate(unit["runs"]):
            out[goal].append(pick(curves, i))
    return out


def _est(groups: dict[str, list[float]], n_boot: int, seed: int) -> dict[str, float | None]:
    est = hierarchical_bootstrap(list(groups.values()), n_boot=n_boot, seed=seed)

    def num(x: float) -> float | None:
        return x if math.isfinite(x) else None  # JSON has no inf: None reads "beyond the grid"

    return {"median": num(est.value), "low": num(est.low), "high": num(est.high), "n": est.n}


def aggregate(cfg: FewShotConfig, units: list[dict[str, Any]]) -> dict[str, Any]:
    """Summaries per family, kind and method (see the module docstring)."""
    # a family's table compares its methods on the same runs: only the pre-training seeds every method of the family
    # has finished (a partial run, e.g. --report-only while units are missing, stays a paired comparison)
    seeds: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for unit in units:
        seeds[unit["family"]][unit["method"]].add(unit["seed"])
    common = {family: set.intersection(*by_method.values()) for family, by_method in seeds.items()}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for unit in units:
        if unit["seed"] in common[unit["family"]]:
            grouped[(unit["family"], unit["method"])].append(unit)
    families: dict[str, Any] = {}
    for (family, method), fam_units in grouped.items():
        for kind in cfg.feedback:
            if kind not in fam_units[0]["kinds"]:
                continue
            ks = list(cfg.ks_for(kind))
            entry: dict[str, Any] = {"epic": {}, "to_threshold": {}}
            for k in ks:
                g = _by_goal(fam_units, kind, lambda c, i, k=k: math.inf if c[str(k)][i] is None else c[str(k)][i])
                entry["epic"][str(k)] = _est(g, cfg.n_boot, 0)
            for thr in cfg.thresholds:
                g = _by_goal(fam_units, kind, lambda c, i, thr=thr, ks=ks: first_reaching(
                    ks, [c[str(k)][i] for k in ks], thr, stay=True))
                est = _est(g, cfg.n_boot, 1)
                values = [v for runs in g.values() for v in runs]
                est["reached"] = float(np.mean(np.isfinite(values)))
                entry["to_threshold"][str(thr)] = est
            fits = [v for u in fam_units for v in (u.get("source_fit") or []) if v is not None]
            entry["source_fit"] = {"mean": float(np.mean(fits)), "max": float(np.max(fits))} if fits else None
            entry["seeds"] = sorted({u["seed"] for u in fam_units})
            families.setdefault(family, {}).setdefault(kind, {})[method] = entry
    for kinds in families.values():
        for methods in kinds.values():
            ref = methods.get(BAYES)
            for entry in methods.values():
                entry["over_bayes"] = {}
                for thr in map(str, cfg.thresholds):
                    mine = entry["to_threshold"][thr]["median"]
                    theirs = None if ref is None else ref["to_threshold"][thr]["median"]
                    ok = mine is not None and theirs not in (None, 0)
                    entry["over_bayes"][thr] = mine / theirs if ok else None  # type: ignore[operator]
    return {"config": cfg.to_dict(), "families": families}


def _k(x: float | None) -> str:
    return ">max" if x is None else f"{x:g}"


def table_rows(summary: dict[str, Any], family: str, kind: str) -> list[list[str]]:
    """One table's rows: method, source-fit EPIC, median EPIC at a few k, feedback to each threshold [CI], x Bayes."""
    cfg = summary["config"]
    ks = {"labels": cfg["ks"], "preferences": cfg["preference_ks"], "demonstrations": cfg["demo_ks"]}[kind]
    shown = [k for k in ks if k in (0, 1, 2, 4, 8, 16, 32, 64, 256)]
    rows = [["method", "source fit", *[f"k={k}" for k in shown],
             *[f"to {t} [95% CI]" for t in cfg["thresholds"]], *[f"x Bayes ({t})" for t in cfg["thresholds"]]]]
    methods = summary["families"][family][kind]
    for name, e in methods.items():
        fit = "-" if e["source_fit"] is None else f"{e['source_fit']['mean']:.3f}"
        epics = [f"{e['epic'][str(k)]['median']:.3f}" if e["epic"][str(k)]["median"] is not None else "inf"
                 for k in shown]
        reach = []
        for t in map(str, cfg["thresholds"]):
            r = e["to_threshold"][t]
            reach.append(f"{_k(r['median'])} [{_k(r['low'])}, {_k(r['high'])}] ({100 * r['reached']:.0f}%)")
        ratios = ["-" if e["over_bayes"][str(t)] is None else f"{e['over_bayes'][str(t)]:.1f}"
                  for t in cfg["thresholds"]]
        rows.append([name, fit, *epics, *reach, *ratios])
    return rows


def _seeds(summary: dict[str, Any], family: str, kind: str) -> list[int]:
    return sorted({s for e in summary["families"][family][kind].values() for s in e["seeds"]})


def markdown(summary: dict[str, Any]) -> str:
    """Every table as Markdown."""
    lines = ["# Few-shot reward learning on held-out goals", ""]
    cfg = summary["config"]
    lines += [
        f"Runs: every held-out goal x the pre-training seeds in each table's title (those of {cfg['pretrain_seeds']} "
        f"that every method of the family has finished) x {cfg['draws']} draw(s); median over "
        "runs [95% hierarchical bootstrap CI: goals, then runs within goals]; '>max' = not reached within the grid; "
        "a run reaches a threshold at the first k from which its EPIC stays at or below it; (n%) = runs that "
        "reached the threshold. `bayes_oracle` is the exact posterior over goal cells (it knows the teacher's reward "
        "family): the reference, not a competitor.", ""]
    for family, kinds in summary["families"].items():
        for kind in kinds:
            rows = table_rows(summary, family, kind)
            lines += [f"## {family}: {UNIT_NAMES[kind]} (pre-training seeds {_seeds(summary, family, kind)})", "",
                      "| " + " | ".join(rows[0]) + " |",
                      "|" + " --- |" * len(rows[0])]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            lines.append("")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> Path:
    """Median EPIC vs k with 95% CI bands, one panel per family (rows) and feedback kind (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = summary["config"]
    families = list(summary["families"])
    kinds = [k for k in cfg["feedback"] if any(k in summary["families"][f] for f in families)]
    fig, axes = plt.subplots(len(families), len(kinds), figsize=(5.2 * len(kinds), 3.8 * len(families)),
                             squeeze=False, sharey=True)
    methods = sorted({m for f in families for k in kinds for m in summary["families"][f].get(k, {})})
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(m for m in methods if m != BAYES)}
    colors[BAYES] = "black"
    for i, family in enumerate(families):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            ks = {"labels": cfg["ks"], "preferences": cfg["preference_ks"], "demonstrations": cfg["demo_ks"]}[kind]
            x = [max(k, 0.5) for k in ks]  # k = 0 drawn at 0.5 on the log axis
            for name, e in summary["families"][family].get(kind, {}).items():
                med = [e["epic"][str(k)]["median"] for k in ks]
                lo = [e["epic"][str(k)]["low"] for k in ks]
                hi = [e["epic"][str(k)]["high"] for k in ks]
                style = {"ls": "--", "lw": 2} if name == BAYES else {"lw": 1.3}
                ax.plot(x, med, marker="o", ms=2.5, color=colors[name], label=name, **style)
                ax.fill_between(x, lo, hi, color=colors[name], alpha=0.12)
            for t in cfg["thresholds"]:
                ax.axhline(t, color="grey", ls=":", lw=1)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{family}: {UNIT_NAMES[kind]}", fontsize=9)
            ax.set_xlabel(f"{UNIT_NAMES[kind]} k (k=0 at 0.5)")
            if j == 0:
                ax.set_ylabel("median EPIC to teacher")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def write_report(
    cfg: FewShotConfig, units: list[dict[str, Any]], out: str | Path, plots: bool = True
) -> dict[str, Any]:
    """Aggregate ``units`` and write ``summary.json``, ``report.md`` (and ``fewshot.png``) under ``out``."""
    out = Path(out)
    summary = aggregate(cfg, units)
    atomic_write_json(out / "summary.json", summary, allow_nan=False)
    atomic_write_text(out / "report.md", markdown(summary))
    if plots:
        plot(summary, out / "fewshot.png")
    return summary


def print_tables(summary: dict[str, Any]) -> None:
    """The tables as aligned text."""
    for family, kinds in summary["families"].items():
        for kind in kinds:
            rows = table_rows(summary, family, kind)
            widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
            print(f"\n{family}: {UNIT_NAMES[kind]} (pre-training seeds {_seeds(summary, family, kind)})")
            for r in rows:
                print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
