"""Few-shot reward learning on held-out goals: how much feedback does each reuse method need, next to the Bayes limit?

A thin entry point over :mod:`rewardshare.experiments.fewshot` (the pipeline) and
:mod:`rewardshare.experiments.fewshot_report` (tables, plot). Profiles: ``full`` (the committed results; resumable:
run it again after an interruption and finished units are reused), ``quick`` (a few minutes), ``smoke`` (seconds,
run by the tests).

    python benchmarks/fewshot_reward.py                     # full profile -> benchmarks/results/fewshot/
    python benchmarks/fewshot_reward.py --profile quick --out /tmp/fewshot
    python benchmarks/fewshot_reward.py --set 'methods=["scratch","latent"]' --set workers=2

Writes ``<out>/units/*.json`` (one per family x pre-training seed x method), ``summary.json``, ``report.md`` and
``fewshot.png``, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments.fewshot import run_fewshot, stored_units
from rewardshare.experiments.fewshot_config import PROFILES, get_fewshot_profile
from rewardshare.experiments.fewshot_report import print_tables, write_report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fewshot"


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``FIELD=JSON`` pairs (a bare word is read as a string)."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"--set {item!r} is not allowed: use FIELD=VALUE, e.g. --set workers=2")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the benchmark and write its report; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", default="full", choices=tuple(PROFILES))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--out", type=Path, default=None, help=f"results directory (default {DEFAULT_OUT})")
    parser.add_argument("--fresh", action="store_true", help="recompute stored units")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--report-only", action="store_true",
                        help="report the units stored so far (run nothing); missing units are listed")
    args = parser.parse_args(argv)
    try:
        cfg = get_fewshot_profile(args.profile, **parse_overrides(args.overrides))
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or (DEFAULT_OUT if args.profile == "full" else DEFAULT_OUT.parent / f"fewshot_{args.profile}")
    start = time.perf_counter()
    if args.report_only:
        units, missing = stored_units(cfg, out)
        for spec, seed, method in missing:
            print(f"missing unit: {spec} seed {seed} {method} (not in the report)")
        if not units:
            print(f"error: no stored units of this config under {out}", file=sys.stderr)
            return 2
    else:
        units = run_fewshot(cfg, out, fresh=args.fresh)
    summary = write_report(cfg, units, out, plots=not args.no_plot)
    print_tables(summary)
    print(f"\nwrote {out}/summary.json, report.md{'' if args.no_plot else ', fewshot.png'} "
          f"in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
