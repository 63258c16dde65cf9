"""``rewardshare bench``: the learning-curve benchmark."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import typer
from rich.table import Table

from rewardshare.cli._common import app, bad, check_choice, check_int, console, fail, parse_overrides, user_errors


@app.command()
def bench(
    profile: str = typer.Option("quick", "--profile", help="Config profile: smoke (seconds: a tiny end-to-end run "
                                "of every method and both algorithms, for checking a setup) | quick (default, about "
                                "5-7 minutes on 2 cores) | full (the README's headline numbers, about 30-40 "
                                "minutes, resumable)."),
    out: str = typer.Option(None, "--out", help="Results directory (default: rewardshare-bench/<profile>). "
                            "Re-running the same command resumes; a directory of another config is refused."),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) | ray (a Ray cluster "
                                "at RAY_ADDRESS, else a local Ray instance; needs the 'ray' extra)."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers (default: the CPU count)."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a config field, FIELD=VALUE (a JSON value, or "  # noqa: B008
                                        "plain text for strings), repeatable; checked against the field's type and "
                                        "allowed values before anything runs. Changes the config hash, so use a fresh "
                                        "--out."),
    report_only: bool = typer.Option(False, "--report-only", help="Only (re)write the report of an existing --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress with ETA (a bar on a "
                                  "terminal, percentage lines when piped)."),
) -> None:
    """Run the learning-curve benchmark: how much faster do agents learn held-out tasks with reused reward models?

    Collects source feedback, pre-trains every reuse method once, adapts it to each held-out task from k target
    items (settings chosen on validation tasks of the train split), trains PPO/DQN on the learned reward, and writes
    run JSONs, runs.csv, aggregate.json, report.md and PNG plots into --out.
    """
    from rewardshare.experiments import ResultStore, get_profile, make_report, plan, run_sweep
    from rewardshare.experiments.config import BACKENDS, PROFILES
    from rewardshare.experiments.report import summary_rows

    check_choice("--profile", profile, tuple(PROFILES))
    check_choice("--backend", backend, BACKENDS)
    check_int("--workers", workers, 1)
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        fail("--backend ray needs Ray, an optional extra: pip install 'rewardshare[ray]' (or pip install ray)")
    root = Path(out) if out else Path("rewardshare-bench") / profile
    if root.exists() and not root.is_dir():
        bad("--out", out, "a directory path (it is a file)")
    if report_only:
        if overrides:
            bad("--set", overrides, "no --set with --report-only (the report uses the config stored in --out)")
        if not (root / "config.json").is_file():
            fail(f"{root} is not a benchmark results directory (no config.json): run `rewardshare bench --out {root}` "
                 "first, or give the --out of an earlier run")
        with user_errors():
            config = ResultStore.load_config(root)
    else:
        try:
            config = get_profile(profile, **parse_overrides(overrides))
        except (ValueError, TypeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--set") from None
        with user_errors():
            plan(config, root)  # a config that cannot run (too few tasks for it...) is refused here, not unit by unit
    start = time.perf_counter()
    res = None
    with user_errors():
        if not report_only:
            console.print(f"[bold]rewardshare bench[/bold] profile={profile} config={config.config_hash()} -> {root}")
            res = run_sweep(config, root, backend=backend, workers=workers, progress=progress)
            console.print(f"{res.ran} units run, {res.skipped} already finished, {len(res.failed)} failed, "
                          f"{len(res.blocked)} blocked, in {res.wall_s:.0f}s")
            for unit_id, err in list(res.failed.items())[:10]:
                console.print(f"[red]failed[/red] {unit_id}: {err}  (traceback in {root / 'failures'})")
        rep = make_report(root)
    rows = summary_rows(rep)
    if rows:
        from rich import box

        table = Table(title=f"IQM over tasks x seeds; steps to {config.success_threshold:g} success (hit: runs that "
                      "got there); speedup over scratch [95% CI]", box=box.SIMPLE_HEAD, pad_edge=False,
                      padding=(0, 1), collapse_padding=True)
        for col in rows[0]:
            table.add_column(col, no_wrap=True)
        for r in rows:
            table.add_row(*r.values())
        console.print(table)
    console.print(f"report: {rep['paths']['report']}  ({time.perf_counter() - start:.0f}s in all)")
    if res is not None and not res.ok:
        raise typer.Exit(code=1)
