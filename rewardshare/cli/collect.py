"""``rewardshare envs`` and ``rewardshare collect``."""

from __future__ import annotations

import inspect
import math
import time

import typer
from rich.table import Table

from rewardshare.cli._common import (
    Stages,
    app,
    bad,
    check_choice,
    check_float,
    check_int,
    check_new_file,
    console,
    fail,
    interactive,
    user_errors,
)

COLLECT_KINDS = ("labels", "preferences", "demos")
SPLITS = ("train", "held_out", "all")


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


def _coverage(kind: str, coverage: str | None) -> object:
    from rewardshare.feedback import COVERAGES

    cov: object = coverage or ("uniform" if kind == "labels" else "random")
    allowed = f"{' | '.join(COVERAGES)}, or a mixture 'name=weight,...' of them"
    if "," in str(cov) or "=" in str(cov):
        mix: dict[str, float] = {}
        for part in str(cov).split(","):
            name, _, weight = part.partition("=")
            try:
                mix[name.strip()] = float(weight)
            except ValueError:
                bad("--coverage", coverage, allowed)
            if name.strip() not in COVERAGES or not math.isfinite(mix[name.strip()]) or mix[name.strip()] < 0:
                bad("--coverage", coverage, allowed + " with weights >= 0")
        if sum(mix.values()) <= 0:
            bad("--coverage", coverage, "a mixture whose weights add up to more than 0")
        return mix
    if cov not in COVERAGES:
        bad("--coverage", coverage, allowed)
    return cov


@app.command()
def collect(
    kind: str = typer.Option(..., "--kind", help="What to collect: labels | preferences | demos."),
    budget: int = typer.Option(..., "--budget", help="Queries in all: labels, comparisons or demonstrated steps "
                               "(demonstrations are whole episodes, so they may spend a little less)."),
    out: str = typer.Option(..., "--out", help="Output dataset file (.npz) in an existing directory."),
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress (a bar on a terminal, "
                                  "one line per stage when piped)."),
) -> None:
    """Collect feedback from the simulated teacher for a task family split and save it as a dataset."""
    import gymnasium as gym

    from rewardshare.envs import ENV_IDS, OBS_MODES, SUBSETS, TaskFamily
    from rewardshare.feedback import (
        REWARD_KINDS,
        CollectionOptions,
        EnvOptions,
        collect_demonstrations,
        collect_preferences,
        collect_transitions,
    )

    # every argument is checked before anything is collected or written
    check_choice("--kind", kind, COLLECT_KINDS)
    check_choice("--env-id", env_id, tuple(ENV_IDS))
    check_choice("--split", split, SPLITS)
    check_choice("--subset", subset, SUBSETS)
    check_choice("--reward", reward, REWARD_KINDS)
    check_choice("--obs-mode", obs_mode, OBS_MODES)
    check_choice("--noise-kind", noise_kind, ("epsilon", "temperature"))
    check_int("--budget", budget, 1)
    check_int("--segment-length", segment_length, 1)
    check_int("--max-steps", max_steps, 1)
    check_int("--seed", seed, 0)
    check_int("--split-seed", split_seed, 0)
    check_float("--noise", noise, 0.0)
    check_float("--flip-prob", flip_prob, 0.0, 1.0)
    check_float("--expert-epsilon", expert_epsilon, 0.0, 1.0)
    check_float("--beta", beta, 0.0, low_open=True, allow_inf=True)
    cov = _coverage(kind, coverage)
    try:
        levels = [float(x) for x in demo_noise.split(",") if x.strip()]
    except ValueError:
        bad("--demo-noise", demo_noise, "comma-separated numbers >= 0, e.g. 0.0,0.1,0.3")
    if not levels or any(not math.isfinite(v) or v < 0 for v in levels):
        bad("--demo-noise", demo_noise, "comma-separated numbers >= 0, e.g. 0.0,0.1,0.3")
    out_path = check_new_file("--out", out, force, (".npz",))

    spec_kwargs = dict(gym.spec(env_id).kwargs)
    with user_errors():
        family = TaskFamily(spec_kwargs.get("layout", "open"), spec_kwargs.get("size", 8), subset=subset,
                            layout_seed=spec_kwargs.get("layout_seed", 0), split_seed=split_seed)
    if task_id is not None:
        try:
            tasks = (family.task(task_id),)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--task-id") from None
    else:
        tasks = family.split(split)
    bars = progress and interactive()
    stage = Stages("collect", enabled=progress and not bars)
    env_options = {
        "obs_mode": obs_mode, "observe_goal": bool(spec_kwargs.get("observe_goal", False)
                                                   if observe_goal is None else observe_goal),
        "absorbing_goal": absorbing_goal, "max_steps": max_steps,
    }
    run_options = {
        "env_id": env_id, "progress": bars,
        "metadata": {"family": family.name, "split": None if task_id else split, "split_seed": split_seed,
                     "command": "rewardshare collect " + " ".join(f"--{k.replace('_', '-')}={v}" for k, v in {
                         "env_id": env_id, "split": split, "kind": kind, "budget": budget, "seed": seed}.items())},
    }
    start = time.perf_counter()
    stage(f"collecting {budget} {kind} for {len(tasks)} task(s) of {family.name}")
    with user_errors():
        common = {"seed": seed, "env": EnvOptions(**env_options), "options": CollectionOptions(**run_options)}
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
    stage(f"writing {out_path}")
    if out_path.exists() and not force:  # created while we collected: still never overwrite without --force
        fail(f"{out_path} appeared while collecting; nothing was written (add --force to overwrite it)")
    with user_errors():
        data.save(out_path)
    elapsed = time.perf_counter() - start
    spent = data.metadata["budget_spent"]
    note = "" if spent == budget else (
        " (demonstrations are whole episodes: each task's next episode did not fit its share of the budget)"
        if kind == "demos" else "")
    typer.echo(
        f"collected {len(data)} {data.KIND} for {len(tasks)} task(s) of {family.name} "
        f"({task_id or split}), budget spent {spent} of {budget}{note}, in {elapsed:.2f}s -> {out_path}"
    )
