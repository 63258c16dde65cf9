"""The ``rewardshare`` command line. Thin: every command calls the library."""

from __future__ import annotations

import inspect

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="rewardshare: learn, reuse and share reward models across grid-world tasks.", no_args_is_help=True)
console = Console()


@app.command()
def envs() -> None:
    """List the registered env IDs with their default arguments and every argument they accept."""
    import gymnasium as gym

    from rewardshare.envs import ENV_IDS, GridGoalEnv

    params = [p for p in inspect.signature(GridGoalEnv.__init__).parameters if p != "self"]
    table = Table(title="rewardshare environments")
    table.add_column("ID")
    table.add_column("defaults")
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        table.add_row(env_id, ", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items()))
    console.print(table)
    console.print("Arguments accepted by every ID (gym.make(ID, **kwargs)): " + ", ".join(params))


COLLECT_KINDS = ("labels", "preferences", "demos")


@app.command()
def collect(
    kind: str = typer.Option(..., "--kind", help="What to collect: labels | preferences | demos."),
    budget: int = typer.Option(..., "--budget", help="Queries in all: labels, comparisons or demonstrated steps."),
    out: str = typer.Option(..., "--out", help="Output dataset file (.npz)."),
    env_id: str = typer.Option("rewardshare/GridGoal-v0", "--env-id", help="A rewardshare env ID; its layout and "
                               "size define the task family (every free goal cell)."),
    split: str = typer.Option("train", "--split", help="Tasks to collect for: train | held_out | all."),
    task_id: str = typer.Option(None, "--task-id", help="Collect for this one task id instead of a split."),
    subset: str = typer.Option("all", "--subset", help="Task family subset: all | corners | edges | rooms."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the family's train / held-out split."),
    coverage: str = typer.Option(None, "--coverage", help="uniform | random | expert, or a mixture such as "
                                 "'uniform=0.5,expert=0.5' (default: uniform for labels, random for preferences)."),
    reward: str = typer.Option("dense", "--reward", help="Teacher reward: dense | sparse."),
    noise: float = typer.Option(0.0, "--noise", help="Std of the Gaussian label noise (labels)."),
    flip_prob: float = typer.Option(0.0, "--flip-prob", help="Probability of a flipped label or comparison."),
    beta: float = typer.Option(float("inf"), "--beta", help="Bradley-Terry rationality (preferences); inf = exact."),
    segment_length: int = typer.Option(10, "--segment-length", help="Steps per segment (preferences)."),
    expert_epsilon: float = typer.Option(0.0, "--expert-epsilon", help="Epsilon of the expert used for coverage."),
    demo_noise: str = typer.Option("0.0", "--demo-noise", help="Comma-separated demonstrator noise levels (demos)."),
    noise_kind: str = typer.Option("epsilon", "--noise-kind", help="Demonstrator noise: epsilon | temperature."),
    obs_mode: str = typer.Option("coords", "--obs-mode", help="Observation mode: coords | onehot | grid."),
    observe_goal: bool = typer.Option(None, "--observe-goal/--no-observe-goal", help="Append the goal to "
                                      "observations (default: as the env ID does)."),
    absorbing_goal: bool = typer.Option(False, "--absorbing-goal/--terminating-goal", help="Fixed-horizon episodes "
                                        "with an absorbing goal."),
    max_steps: int = typer.Option(None, "--max-steps", help="Episode horizon (default 4 * H * W)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the collection and the teachers."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Collect feedback from the simulated teacher for a task family split and save it as a dataset."""
    import math
    import time
    from pathlib import Path

    import gymnasium as gym

    from rewardshare.envs import ENV_IDS, OBS_MODES, SUBSETS, TaskFamily
    from rewardshare.feedback import (
        COVERAGES,
        REWARD_KINDS,
        BudgetExhausted,
        collect_demonstrations,
        collect_preferences,
        collect_transitions,
    )

    def bad(option: str, value: object, allowed: str) -> typer.BadParameter:
        return typer.BadParameter(f"{value!r} is not allowed: use {allowed}", param_hint=option)

    if kind not in COLLECT_KINDS:
        raise bad("--kind", kind, " | ".join(COLLECT_KINDS))
    if env_id not in ENV_IDS:
        raise bad("--env-id", env_id, " | ".join(ENV_IDS))
    if split not in ("train", "held_out", "all"):
        raise bad("--split", split, "train | held_out | all")
    if subset not in SUBSETS:
        raise bad("--subset", subset, " | ".join(SUBSETS))
    if reward not in REWARD_KINDS:
        raise bad("--reward", reward, " | ".join(REWARD_KINDS))
    if obs_mode not in OBS_MODES:
        raise bad("--obs-mode", obs_mode, " | ".join(OBS_MODES))
    if budget < 1:
        raise bad("--budget", budget, "an int >= 1")
    out_path = Path(out)
    if out_path.exists() and not force:
        raise bad("--out", out, "a path that does not exist yet, or add --force to overwrite it")
    cov: object = coverage or ("uniform" if kind == "labels" else "random")
    if "," in str(cov) or "=" in str(cov):
        mix: dict[str, float] = {}
        for part in str(cov).split(","):
            name, _, weight = part.partition("=")
            try:
                mix[name.strip()] = float(weight)
            except ValueError:
                allowed = f"'name=weight,...' with names from {' | '.join(COVERAGES)}"
                raise bad("--coverage", coverage, allowed) from None
        cov = mix
    try:
        levels = [float(x) for x in demo_noise.split(",") if x.strip()]
    except ValueError:
        raise bad("--demo-noise", demo_noise, "comma-separated numbers, e.g. 0.0,0.1,0.3") from None

    spec_kwargs = dict(gym.spec(env_id).kwargs)
    family = TaskFamily(spec_kwargs.get("layout", "open"), spec_kwargs.get("size", 8), subset=subset,
                        layout_seed=spec_kwargs.get("layout_seed", 0), split_seed=split_seed)
    if task_id is not None:
        try:
            tasks = (family.task(task_id),)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--task-id") from None
    else:
        tasks = family.split(split)
    common = {
        "obs_mode": obs_mode, "observe_goal": bool(spec_kwargs.get("observe_goal", False)
                                                   if observe_goal is None else observe_goal),
        "absorbing_goal": absorbing_goal, "max_steps": max_steps, "seed": seed, "env_id": env_id,
        "progress": progress,
        "metadata": {"family": family.name, "split": None if task_id else split, "split_seed": split_seed,
                     "command": "rewardshare collect " + " ".join(f"--{k.replace('_', '-')}={v}" for k, v in {
                         "env_id": env_id, "split": split, "kind": kind, "budget": budget, "seed": seed}.items())},
    }
    start = time.perf_counter()
    try:
        if kind == "labels":
            data = collect_transitions(tasks, budget, coverage=cov, reward=reward, noise=noise, flip_prob=flip_prob,
                                       expert_epsilon=expert_epsilon, **common)
        elif kind == "preferences":
            data = collect_preferences(tasks, budget, coverage=cov, reward=reward, flip_prob=flip_prob,
                                       beta=math.inf if math.isinf(beta) else beta, segment_length=segment_length,
                                       expert_epsilon=expert_epsilon, **common)
        else:
            data = collect_demonstrations(tasks, budget=budget, noise_levels=levels, noise_kind=noise_kind,
                                          reward=reward, **common)
    except (ValueError, TypeError, BudgetExhausted) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    data.save(out_path)
    elapsed = time.perf_counter() - start
    typer.echo(
        f"collected {len(data)} {data.KIND} for {len(tasks)} task(s) of {family.name} "
        f"({task_id or split}), budget spent {data.metadata['budget_spent']}, in {elapsed:.2f}s -> {out_path}"
    )


def _parse_overrides(items: list[str] | None) -> dict[str, object]:
    """``["seeds=[0,1]", "layout=four_rooms"]`` -> ``{"seeds": [0, 1], "layout": "four_rooms"}`` (JSON values,
    else strings)."""
    import json

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not allowed: use FIELD=VALUE, e.g. seeds=[0,1]", param_hint="--set")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


@app.command()
def bench(
    profile: str = typer.Option("quick", "--profile", help="Config profile: quick (default, <= 10 min on 2 cores) | "
                                "full (the README's headline numbers, <= 90 min, resumable) | smoke (seconds)."),
    out: str = typer.Option(None, "--out", help="Results directory (default: rewardshare-bench/<profile>). "
                            "Re-running the same command resumes; a directory of another config is refused."),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) | ray (a Ray cluster "
                                "at RAY_ADDRESS, else a local Ray instance; needs the 'ray' extra)."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers (default: the CPU count)."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a config field, FIELD=VALUE (JSON value), "
                                        "repeatable; changes the config hash, so use a fresh --out."),
    report_only: bool = typer.Option(False, "--report-only", help="Only (re)write the report of --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with ETA."),
) -> None:
    """Run the learning-curve benchmark: how much faster do agents learn held-out tasks with reused reward models?

    Collects source feedback, pre-trains every reuse method once, adapts it to each held-out task from k target
    items (settings chosen on validation tasks of the train split), trains PPO/DQN on the learned reward, and writes
    run JSONs, runs.csv, aggregate.json, report.md and PNG plots into --out.
    """
    import time
    from pathlib import Path

    from rewardshare.experiments import ConfigMismatchError, get_profile, make_report, run_sweep
    from rewardshare.experiments.config import BACKENDS, PROFILES
    from rewardshare.experiments.report import summary_rows

    if profile not in PROFILES:
        raise typer.BadParameter(f"{profile!r} is not allowed: use {' | '.join(PROFILES)}", param_hint="--profile")
    if backend not in BACKENDS:
        raise typer.BadParameter(f"{backend!r} is not allowed: use {' | '.join(BACKENDS)}", param_hint="--backend")
    if workers is not None and workers < 1:
        raise typer.BadParameter(f"{workers!r} is not allowed: use an int >= 1", param_hint="--workers")
    try:
        config = get_profile(profile, **_parse_overrides(overrides))
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None
    root = Path(out) if out else Path("rewardshare-bench") / profile
    start = time.perf_counter()
    try:
        if not report_only:
            console.print(f"[bold]rewardshare bench[/bold] profile={profile} config={config.config_hash()} -> {root}")
            res = run_sweep(config, root, backend=backend, workers=workers, progress=progress)
            console.print(f"{res.ran} units run, {res.skipped} already finished, {len(res.failed)} failed, "
                          f"{len(res.blocked)} blocked, in {res.wall_s:.0f}s")
            for unit_id, err in list(res.failed.items())[:10]:
                console.print(f"[red]failed[/red] {unit_id}: {err}  (traceback in {root / 'failures'})")
        rep = make_report(root)
    except ConfigMismatchError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except ImportError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
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
    if not report_only and not res.ok:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
