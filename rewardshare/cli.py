"""The ``rewardshare`` command line. Thin: every command calls the library."""

from __future__ import annotations

import inspect

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="rewardshare: learn, reuse and share reward models across grid-world tasks.", no_args_is_help=True
)
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
        CollectionOptions,
        EnvOptions,
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
    env_options = {
        "obs_mode": obs_mode, "observe_goal": bool(spec_kwargs.get("observe_goal", False)
                                                   if observe_goal is None else observe_goal),
        "absorbing_goal": absorbing_goal, "max_steps": max_steps,
    }
    run_options = {
        "env_id": env_id, "progress": progress,
        "metadata": {"family": family.name, "split": None if task_id else split, "split_seed": split_seed,
                     "command": "rewardshare collect " + " ".join(f"--{k.replace('_', '-')}={v}" for k, v in {
                         "env_id": env_id, "split": split, "kind": kind, "budget": budget, "seed": seed}.items())},
    }
    start = time.perf_counter()
    try:
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
    overrides: list[str] = typer.Option(None, "--set", help="Override a config field, FIELD=VALUE (JSON value), "  # noqa: B008
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


@app.command("train-agent")
def train_agent_cmd(
    algo: str = typer.Option("ppo", "--algo", help="ppo | dqn."),
    reward: str = typer.Option("teacher", "--reward", help="true (the env's reward) | teacher (the dense teacher's "
                               "noiseless reward) | a saved reward model directory."),
    env_id: str = typer.Option("rewardshare/GridGoal-v0", "--env-id", help="A rewardshare GridGoal ID (the task is "
                               "its layout with --goal) or any gymnasium ID (e.g. CartPole-v1)."),
    goal: str = typer.Option(None, "--goal", help="Goal cell 'row,col' of the GridGoal task (default: the ID's "
                             "goal, the bottom-right free cell)."),
    timesteps: int = typer.Option(50_000, "--timesteps", help="Env steps to train for (over all sub-envs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the agent, the envs and the eval episodes."),
    n_envs: int = typer.Option(None, "--n-envs", help="Training sub-envs (default 8 for ppo, 4 for dqn)."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Env steps between evaluations on the true reward."),
    eval_episodes: int = typer.Option(20, "--eval-episodes", help="Episodes per evaluation."),
    obs_mode: str = typer.Option(None, "--obs-mode", help="GridGoal obs mode coords | onehot | grid (default: the "
                                 "reward model's, else coords)."),
    policy_obs: str = typer.Option("auto", "--policy-obs", help="What the policy sees: auto | env | onehot."),
    normalize: bool = typer.Option(False, "--normalize/--no-normalize", help="Running reward normalisation."),
    scale: float = typer.Option(1.0, "--scale", help="Multiply the learned reward."),
    clip: float = typer.Option(None, "--clip", help="Clip the reward to [-clip, clip]."),
    add_env_reward: bool = typer.Option(False, "--add-env-reward", help="Add the env's reward to the learned one."),
    overrides: list[str] = typer.Option(None, "--set", help="Agent hyperparameter FIELD=VALUE (JSON value), "  # noqa: B008
                                        "repeatable, e.g. --set learning_rate=0.0005."),
    out: str = typer.Option(None, "--out", help="Write the learning curve here (.json or .csv)."),
    device: str = typer.Option("auto", "--device", help="Torch device of the agent: auto | cpu | cuda."),
    tensorboard_log: str = typer.Option(None, "--tensorboard-log", help="TensorBoard log directory."),
    progress: bool = typer.Option(False, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a PPO/DQN agent on a reward (true, teacher or a saved model) and print its true-reward learning curve."""
    from pathlib import Path

    from rewardshare.agents import train_agent
    from rewardshare.envs import ENV_IDS, GoalTask, make_layout
    from rewardshare.wrappers import RewardOptions

    env_kwargs: dict[str, object] = {}
    if env_id in ENV_IDS:
        kw = ENV_IDS[env_id]
        layout = make_layout(kw["layout"], kw["size"], kw.get("layout_seed", 0))
        if goal is not None:
            try:
                r, c = (int(v) for v in goal.split(","))
            except ValueError:
                raise typer.BadParameter(f"{goal!r} is not allowed: use 'row,col'", param_hint="--goal") from None
            cell = (r, c)
        elif isinstance(kw.get("goal"), str):
            raise typer.BadParameter(f"{env_id} draws a goal per episode: pick one task with --goal row,col",
                                     param_hint="--goal")
        else:
            cell = layout.goal if layout.goal is not None else layout.free_cells[-1]
        target = GoalTask(kw["layout"], kw["size"], cell, kw.get("layout_seed", 0))
        if obs_mode is not None:
            env_kwargs["obs_mode"] = obs_mode
    else:
        if goal is not None or obs_mode is not None:
            raise typer.BadParameter("--goal and --obs-mode only apply to rewardshare GridGoal IDs",
                                     param_hint="--env-id")
        target = env_id
    reward_arg: object = reward
    if reward not in ("true", "teacher"):
        if not Path(reward).is_dir():
            raise typer.BadParameter(f"{reward!r} is not allowed: use true, teacher or a saved model directory",
                                     param_hint="--reward")
        from rewardshare.rewardmodels.sharing import load_model

        reward_arg = load_model(reward)
    reward_options = {"normalize": normalize, "scale": scale, "clip": clip, "add_env_reward": add_env_reward}
    try:
        curve = train_agent(
            algo, target, reward_arg, total_timesteps=timesteps, seed=seed, n_envs=n_envs, eval_every=eval_every,
            eval_episodes=eval_episodes, device=device, progress_bar=progress, tensorboard_log=tensorboard_log,
            env_kwargs=env_kwargs, agent_kwargs=_parse_overrides(overrides),
            reward_options=RewardOptions(**reward_options),
            policy_obs=policy_obs,
        )
    except (ValueError, TypeError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    table = Table(title=f"{algo} on {curve.metadata.get('task', {}).get('id', env_id)}, reward={reward}, seed={seed}")
    for col in ("timesteps", "success", "true return", "learned return", "episode length", "train s"):
        table.add_column(col, justify="right")
    for i in range(len(curve)):
        table.add_row(
            str(curve.timesteps[i]), f"{curve.success_rate[i]:.2f}", f"{curve.true_return[i]:.3f}",
            f"{curve.learned_return[i]:.3f}", f"{curve.episode_length[i]:.1f}", f"{curve.wall_time[i]:.1f}",
        )
    console.print(table)
    reached = curve.timesteps_to(0.9)
    console.print(f"steps to 0.9 success: {reached if reached is not None else 'not reached'}")
    if out:
        console.print(f"curve: {curve.save(out)}")


@app.command("train-reward")
def train_reward_cmd(
    data: str = typer.Option(..., "--data", help="A feedback dataset (.npz from `rewardshare collect`)."),
    out: str = typer.Option(None, "--out", help="Save the model to this directory (model.safetensors + config.json)."),
    store: str = typer.Option(None, "--store", help="Also put the model into the model store under this name."),
    store_root: str = typer.Option(None, "--store-root", help="Model store directory (default: $REWARDSHARE_STORE "
                                   "or the user cache dir)."),
    tags: list[str] = typer.Option(None, "--tag", help="Store tag, repeatable."),  # noqa: B008
    loss: str = typer.Option("auto", "--loss", help="auto | mse | bradley_terry | trex | maxent_irl (auto: labels -> "
                             "mse, preferences -> bradley_terry, demos -> maxent_irl)."),
    hidden: str = typer.Option("64,64", "--hidden", help="Hidden layer sizes, comma-separated ('' for linear)."),
    use_next_obs: bool = typer.Option(False, "--use-next-obs/--no-next-obs", help="Let the model read s'."),
    epochs: int = typer.Option(100, "--epochs", help="Epochs (ignored with --steps)."),
    steps: int = typer.Option(None, "--steps", help="Gradient steps instead of epochs."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    batch_size: int = typer.Option(64, "--batch-size", help="Items per step."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="AdamW weight decay."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Items held out for validation (0: none)."),
    patience: int = typer.Option(10, "--patience", help="Early-stopping patience in epochs (0: off)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, the split and the batch order."),
    evaluate_tasks: int = typer.Option(8, "--eval-tasks", help="Judge the model against the dense teacher on up to "
                                       "this many of the data's tasks (EPIC, Pearson, MSE; 0: skip)."),
    progress: bool = typer.Option(False, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Learn a reward model from a feedback dataset, judge it against the teacher, and save / share it."""
    import time

    import numpy as np

    from rewardshare.envs import GoalTask, env_from_metadata
    from rewardshare.feedback import DatasetFormatError, Teacher, load_dataset
    from rewardshare.rewardmodels import ModelStore, RewardModel, evaluate, fit, provenance

    if out is None and store is None:
        raise typer.BadParameter("give --out DIR and/or --store NAME to keep the model", param_hint="--out")
    try:
        hidden_sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise typer.BadParameter(f"{hidden!r} is not allowed: use comma-separated ints, e.g. 64,64",
                                 param_hint="--hidden") from None
    try:
        dataset = load_dataset(data)
    except (FileNotFoundError, DatasetFormatError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    env = env_from_metadata(dataset)
    if env is None:
        typer.echo(f"Error: {data} records no env_kwargs in its metadata: cannot tell the observation space", err=True)
        raise typer.Exit(code=2)
    start = time.perf_counter()
    try:
        model = RewardModel(env.observation_space, env.action_space, hidden_sizes=hidden_sizes,
                            use_next_obs=use_next_obs, seed=seed)
        result = fit(model, dataset, loss=loss, epochs=epochs, steps=steps, lr=lr, batch_size=batch_size,
                     weight_decay=weight_decay, val_fraction=val_fraction, patience=patience or None, seed=seed,
                     progress=progress, env=env)
    except (ValueError, TypeError, FloatingPointError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    metrics: dict[str, object] = {"final_train_loss": result.final_train_loss, "best_val_loss": result.best_val_loss}
    tasks = [GoalTask.from_dict(t) for t in dataset.metadata.get("tasks", [])][: max(0, evaluate_tasks)]
    if tasks:
        table = Table(title="against the dense teacher (noiseless), every transition of the grid")
        for col in ("task", "EPIC", "Pearson", "MSE"):
            table.add_column(col, justify="right")
        rows = []
        for task in tasks:
            res = evaluate(model, task.make_env(**{k: v for k, v in dataset.metadata["env_kwargs"].items()
                                                   if k in ("obs_mode", "observe_goal")}), Teacher(task))
            rows.append((res.epic, res.pearson, res.mse))
            table.add_row(task.id, f"{res.epic:.3f}", f"{res.pearson:.3f}", f"{res.mse:.3f}")
        console.print(table)
        med = np.nanmedian(np.array(rows, dtype=float), axis=0)
        metrics.update({"epic_median": float(med[0]), "pearson_median": float(med[1]), "mse_median": float(med[2]),
                        "eval_tasks": [t.id for t in tasks]})
    metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
    command = f"rewardshare train-reward --data {data} --loss {loss} --seed {seed}"
    model.metadata.update(provenance(dataset, method="scratch", seed=seed, metrics=metrics, loss=result.loss,
                                     command=command, dataset=str(data)))
    best = "-" if result.best_val_loss is None else f"{result.best_val_loss:.4g}"
    console.print(f"{result.loss}: {result.epochs} epochs, {result.steps} steps on {result.n_train} items "
                  f"(val {result.n_val}), final train loss {result.final_train_loss:.4g}, best val loss {best}, "
                  f"{time.perf_counter() - start:.1f}s")
    if out is not None:
        console.print(f"saved: {model.save(out)}")
    if store is not None:
        model_store = ModelStore(store_root)
        try:
            name = model_store.put(model, store, tags=tags or [], overwrite=True)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from None
        console.print(f"stored: {name} in {model_store.root}")


if __name__ == "__main__":
    app()
