"""Collapse: an agent that finds the goal, then learns to exploit the learned reward's error and loses it again.

Definition (fixed before any result; ``drop`` is the config's ``collapse_drop``, 0.5 by default): a run's *peak* is
the maximum of its true success rate over its evaluations, reached first at evaluation ``i``; the run *collapses*
when some later evaluation ``j > i`` has success ``<= peak - drop``. A run that never gets above ``drop`` cannot
collapse; a run that recovers after the fall still counted as collapsed (its final success is reported next to it).

Per (algorithm, method + reward variant, k) the report gives the collapse rate (the fraction of runs that
collapsed) with a hierarchical bootstrap 95% CI (held-out goals resampled, then seeds within each goal:
:func:`~rewardshare.experiments.stats.hierarchical_bootstrap`), and for an uncertainty-aware reward the paired
difference to the plain reward of the same method (same adapted models, goals and seeds) in collapse rate and in
final success, with the same kind of CI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardshare.experiments import stats
from rewardshare.experiments.names import ORACLE_METHODS

#: Slack of the ``<= peak - drop`` comparison: success rates are fractions of episodes (0.7 - 0.5 is
#: 0.19999999999999996 in floating point, and a fall from 0.7 to 0.2 is a fall of 0.5).
TOLERANCE = 1e-9


def collapse_of(success: Sequence[float], drop: float = 0.5) -> tuple[float, bool]:
    """The peak success of one run and whether the run collapsed (see the module docstring).

    Args:
        success: True success rate at each evaluation, in order, shape ``(T,)``.
        drop: The fall from the peak that counts as a collapse, in ``(0, 1]``.

    Returns:
        ``(peak, collapsed)``.

    Raises:
        ValueError: On an empty or non-1-D curve, NaN, or a ``drop`` outside ``(0, 1]``.
    """
    s = np.asarray(success, dtype=float)
    if s.ndim != 1 or s.size == 0 or np.isnan(s).any():
        raise ValueError(f"success must be a non-empty 1-D curve without NaN, got shape {s.shape}")
    if not 0.0 < drop <= 1.0:
        raise ValueError(f"drop={drop!r} is not allowed: use a float in (0, 1]")
    first_peak = int(np.argmax(s))  # argmax returns the first maximum: "after first reaching its peak"
    peak = float(s[first_peak])
    later = s[first_peak + 1:]
    return peak, bool(later.size and later.min() <= peak - drop + TOLERANCE)


def collapse_rate(collapsed: Sequence[Sequence[float]], n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """The fraction of runs that collapsed, with a hierarchical bootstrap CI (goals, then seeds within goals).

    Args:
        collapsed: Per goal, the 0/1 collapse indicator of each of its runs.
        n_boot: Bootstrap resamples.
        seed: Resampling seed.

    Returns:
        ``{"value", "low", "high", "n"}``.
    """
    return stats.hierarchical_bootstrap(collapsed, statistic=np.mean, n_boot=n_boot, seed=seed).to_dict()


def _by_goal(rows: list[dict[str, Any]], key: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        out[r["task_id"]][int(r["seed"])] = float(r[key])
    return out


def collapse_stats(
    rows: list[dict[str, Any]], plain: list[dict[str, Any]] | None, drop: float = 0.5, n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The collapse columns of one (algorithm, method + variant, k) group of per-run rows.

    Args:
        rows: Per-run metrics with ``task_id``, ``seed``, ``collapsed``, ``peak_success``, ``final_success``.
        plain: The rows of the same method's plain reward (``"none"``) at the same k and algorithm, for the paired
            differences; ``None`` for a plain group itself.
        drop: The collapse drop (only runs whose peak is at least ``drop`` can collapse: they are counted).
        n_boot: Bootstrap resamples.
        seed: Resampling seed.

    Returns:
        ``{"collapse_rate", "peak_success", "n_collapsed", "n_could_collapse", "vs_plain"}``: the collapse rate
        [hierarchical CI], the IQM of the peak success [stratified CI], the numbers of runs that collapsed and that
        could have (peak ``>= drop``: a run that never found the goal has nothing to lose), and ``vs_plain`` =
        ``{"collapse_rate", "final_success", "n_pairs"}``, the mean paired difference variant - plain [hierarchical
        CI] over the (goal, seed) pairs both have (``None`` without ``plain`` or without pairs).
    """
    collapsed = _by_goal(rows, "collapsed")
    out: dict[str, Any] = {
        "collapse_rate": collapse_rate([list(v.values()) for _, v in sorted(collapsed.items())], n_boot, seed),
        "peak_success": stats.iqm_ci([list(v.values()) for _, v in sorted(_by_goal(rows, "peak_success").items())],
                                     n_boot=n_boot, seed=seed).to_dict(),
        "n_collapsed": int(sum(bool(r["collapsed"]) for r in rows)),
        "n_could_collapse": int(sum(float(r["peak_success"]) >= drop - TOLERANCE for r in rows)),
        "vs_plain": None,
    }
    if plain:
        diffs: dict[str, dict[str, list[float]]] = {"collapse_rate": {}, "final_success": {}}
        for key, col in (("collapse_rate", "collapsed"), ("final_success", "final_success")):
            mine, base = _by_goal(rows, col), _by_goal(plain, col)
            for goal in sorted(set(mine) & set(base)):
                pairs = [mine[goal][s] - base[goal][s] for s in sorted(set(mine[goal]) & set(base[goal]))]
                if pairs:
                    diffs[key][goal] = pairs
        if diffs["collapse_rate"]:
            out["vs_plain"] = {
                key: stats.hierarchical_bootstrap(list(d.values()), statistic=np.mean, n_boot=n_boot,
                                                  seed=seed).to_dict()
                for key, d in diffs.items()
            }
            out["vs_plain"]["n_pairs"] = sum(len(v) for v in diffs["collapse_rate"].values())
    return out


def _ci(e: dict[str, float] | None, digits: int = 2, signed: bool = False) -> str:
    if e is None:
        return "–"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{f.format(e['value'])} [{f.format(e['low'])}, {f.format(e['high'])}]"


def collapse_section(entries: list[dict[str, Any]], drop: float, threshold: float, budget: int) -> list[str]:
    """The report's markdown section on collapse: definition and one table row per aggregate entry.

    Args:
        entries: The aggregate's run entries (with the keys of :func:`collapse_stats` merged in).
        drop: The config's ``collapse_drop``.
        threshold: The success threshold (for the steps column).
        budget: The agents' step budget (the censoring value of steps-to-threshold).
    """
    lines = [
        "## Collapse: runs that reached their peak success and then lost it",
        "",
        f"A run collapses when, after first reaching its peak (its highest true success rate over all evaluations), "
        f"some later evaluation is at or below peak - {drop:g}. Collapse rate: fraction of runs [95% hierarchical "
        "bootstrap CI: held-out goals resampled, then seeds within goals]. *Δ vs plain*: mean paired difference "
        "(same adapted model, goal and seed) of the uncertainty-aware reward minus the plain one [same CI]. Peak and "
        f"final success: IQM [95% stratified CI]. *Collapsed / could*: runs that collapsed / runs whose peak was at "
        f"least {drop:g} (the others never found the goal, so had nothing to lose). Steps to {threshold:g}: IQM, "
        f"censored at {budget}.",
        "",
        "| algo | method | k | runs | collapse rate | collapsed / could | Δ collapse vs plain | peak success "
        f"| final success | Δ final success vs plain | steps to {threshold:g} | reached |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    seen: set[tuple[str, str, int]] = set()
    for e in entries:
        key = (e["algo"], e["method"], e["k"])
        if key in seen:  # a reward with no target feedback has one entry per scratch k it is compared with
            continue
        seen.add(key)
        vs = e.get("vs_plain") or {}
        k = "–" if e["method"] in ORACLE_METHODS else str(e["k"])
        lines.append(
            f"| {e['algo']} | {e['method']} | {k} | {e['n']} | {_ci(e['collapse_rate'])} | "
            f"{e['n_collapsed']} / {e['n_could_collapse']} | "
            f"{_ci(vs.get('collapse_rate'), signed=True)} | {_ci(e['peak_success'])} | {_ci(e['final_success'])} | "
            f"{_ci(vs.get('final_success'), signed=True)} | {_ci(e['steps_to_threshold'], 0)} | {e['reached']:.0%} |"
        )
    return lines


__all__ = ["TOLERANCE", "collapse_of", "collapse_rate", "collapse_section", "collapse_stats"]
