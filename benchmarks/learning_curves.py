"""The learning-curve benchmark: how much faster do agents learn held-out tasks with reused reward models?

Runs the same sweep as ``rewardshare bench`` (``rewardshare.experiments``), then writes a summary JSON with the
machine, the versions, the command and the aggregate next to the per-run results.

    python benchmarks/learning_curves.py                     # quick profile (about 5-7 minutes on 2 cores)
    python benchmarks/learning_curves.py --profile full      # the README's headline numbers (30-40 min, resumable)
    python benchmarks/learning_curves.py --profile collapse --workers 1   # collapse rate with and without an
                                                                           # uncertainty-aware reward (20-25 min)
    python benchmarks/learning_curves.py --profile agents_active --workers 1   # latent on 4 / 8 labels chosen by
                                                                               # information gain (25-30 min)
    python benchmarks/learning_curves.py --smoke --out /tmp/x --json /tmp/x.json   # seconds, for the tests
    python benchmarks/learning_curves.py --profile full --report-only   # re-make a stored sweep's report

Results: ``benchmarks/results/learning_curves/<profile>/`` (run JSONs, runs.csv, aggregate.json, report.md, PNGs;
``cache/`` inside holds bulky intermediates) and ``benchmarks/results/learning_curves_<profile>.json``, whose
``results_dir`` and ``report`` are relative to its own directory.
Re-running the same command resumes an interrupted sweep.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine_info() -> dict[str, object]:
    """CPU, cores, Python and library versions."""
    import gymnasium
    import numpy
    import scipy
    import stable_baselines3
    import torch

    import rewardshare

    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "rewardshare": rewardshare.__version__,
        "torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
    }


def relative_to(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``path`` relative to directory ``base`` (POSIX separators), e.g. ``learning_curves/full/report.md``."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def report_only(out: Path, summary_path: Path) -> dict[str, object]:
    """Re-make the report of the sweep stored in ``out`` (its own config, as stored) and refresh the aggregate in the
    summary JSON, keeping what the sweep recorded there (command, machine, wall times, units)."""
    import json

    from rewardshare._atomic import atomic_write_json
    from rewardshare.experiments import make_report

    rep = make_report(out)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {
        "benchmark": "learning_curves", "profile": rep["profile"], "config_hash": rep["config_hash"],
        "results_dir": relative_to(out, summary_path.parent), "units": {"failed": {}, "blocked": []}}
    summary.update({"runs": rep["runs"], "epic": rep["epic"],
                    "report": relative_to(rep["paths"]["report"], summary_path.parent)})
    atomic_write_json(summary_path, summary, sort_keys=True)
    print(f"report {rep['paths']['report']}; summary {summary_path}")
    return summary


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the sweep and write the summary; returns the summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from rewardshare.experiments.config import PROFILES

    p.add_argument("--profile", default="quick", choices=tuple(PROFILES),
                   help="smoke (seconds) | quick (about 5-7 minutes) | full | collapse | agents_* (the issue-12 "
                        "agent profiles: four rooms, DQN, active labels, demonstrations) (default quick)")
    p.add_argument("--smoke", "--quick-test", action="store_true", help="the seconds-long smoke profile")
    p.add_argument("--out", default=None, help="results dir (default benchmarks/results/learning_curves/<profile>)")
    p.add_argument("--json", default=None,
                   help="summary JSON (default benchmarks/results/learning_curves_<profile>.json)")
    p.add_argument("--backend", default="local", help="local | ray")
    p.add_argument("--workers", type=int, default=None, help="parallel workers (default: CPU count)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: re-make the report of the stored results and refresh the summary's aggregate")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from rewardshare._atomic import atomic_write_json
    from rewardshare.experiments import get_profile, make_report, run_sweep
    from rewardshare.experiments.report import summary_rows

    profile = "smoke" if args.smoke else args.profile
    config = get_profile(profile)
    out = Path(args.out) if args.out else HERE / "results" / "learning_curves" / profile
    summary_path = Path(args.json) if args.json else HERE / "results" / f"learning_curves_{profile}.json"
    t0 = time.perf_counter()
    if args.report_only:
        return report_only(out, summary_path)
    res = run_sweep(config, out, backend=args.backend, workers=args.workers, progress=not args.no_progress)
    rep = make_report(out)
    rows = summary_rows(rep)
    if rows:
        cols = list(rows[0])
        widths = [max(len(c), *(len(r[c]) for r in rows)) for c in cols]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        for r in rows:
            print("  ".join(r[c].ljust(w) for c, w in zip(cols, widths, strict=True)))
    summary = {
        "benchmark": "learning_curves", "profile": profile, "config_hash": config.config_hash(),
        "config": config.to_dict(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(), "wall_s_this_call": time.perf_counter() - t0,
        "sweep_wall_s": rep["meta"]["sweep_wall_s"], "sessions": rep["meta"]["sessions"],
        "units": {"total": res.total, "ran": res.ran, "skipped": res.skipped, "failed": res.failed,
                  "blocked": res.blocked},
        # relative to the summary's directory, so the committed file names no path of the machine that wrote it
        "results_dir": relative_to(out, summary_path.parent), "report": relative_to(rep["paths"]["report"],
                                                                                 summary_path.parent),
        "runs": rep["runs"], "epic": rep["epic"],
    }
    atomic_write_json(summary_path, summary, sort_keys=True)
    print(f"{res.ran} units run, {res.skipped} skipped, {len(res.failed)} failed in {res.wall_s:.0f}s; "
          f"report {rep['paths']['report']}; summary {summary_path}")
    return summary


if __name__ == "__main__":
    summary = main()
    sys.exit(0 if not summary["units"]["failed"] and not summary["units"]["blocked"] else 1)  # type: ignore[index]
