"""``rewardshare train-reward``: learn a reward model from a feedback dataset, judge it against the teacher, and
save it (model card included) and / or put it into the model store. Every argument, the output directory and the
store name are checked before training starts, and nothing saved before is replaced without ``--overwrite``."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from rewardshare.cli._common import (
    Stages,
    app,
    bad,
    check_choice,
    check_float,
    check_int,
    check_new_model_dir,
    console,
    fail,
    interactive,
    user_errors,
)


def _check_tags(tags: list[str]) -> None:
    for tag in tags:
        if not tag.strip() or not tag.isprintable() or len(tag) > 64:
            bad("--tag", tag, "a non-empty printable tag of at most 64 characters")


@app.command("train-reward")
def train_reward_cmd(
    data: str = typer.Option(..., "--data", help="A feedback dataset (.npz from `rewardshare collect`)."),
    out: str = typer.Option(None, "--out", help="Save the model to this new (or empty) directory: "
                            "model.safetensors + config.json + a model card README.md."),
    store: str = typer.Option(None, "--store", help="Also put the model into the model store under this name."),
    store_root: str = typer.Option(None, "--store-root", help="Model store directory (default: $REWARDSHARE_STORE "
                                   "or the user cache dir)."),
    tags: list[str] = typer.Option(None, "--tag", help="Store tag, repeatable."),  # noqa: B008
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model saved before in --out or under "
                                   "--store."),
    loss: str = typer.Option("auto", "--loss", help="auto | mse | bradley_terry | trex | maxent_irl (auto: labels -> "
                             "mse, preferences -> bradley_terry, demos -> maxent_irl)."),
    hidden: str = typer.Option("64,64", "--hidden", help="Hidden layer sizes, comma-separated ('' for linear)."),
    use_next_obs: bool = typer.Option(False, "--use-next-obs/--no-next-obs", help="Let the model read s'."),
    use_done: bool = typer.Option(False, "--use-done/--no-done", help="Let the model read the episode-end flag (on "
                                  "GridGoal envs: entering the goal)."),
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress (a bar on a terminal, one "
                                  "line per stage when piped)."),
) -> None:
    """Learn a reward model from a feedback dataset, judge it against the teacher, and save / share it."""
    import numpy as np

    from rewardshare.artifacts import check_name
    from rewardshare.envs import GoalTask, env_from_metadata
    from rewardshare.feedback import Teacher, load_dataset
    from rewardshare.rewardmodels import LOSS_KINDS, ModelStore, RewardModel, evaluate, fit, provenance

    # -- every check before any training ----------------------------------------------------------------------------
    if out is None and store is None:
        raise typer.BadParameter("give --out DIR and/or --store NAME to keep the model", param_hint="--out")
    check_choice("--loss", loss, ("auto", *LOSS_KINDS))
    try:
        hidden_sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        bad("--hidden", hidden, "comma-separated ints > 0, e.g. 64,64 ('' for a linear model)")
    if any(h < 1 for h in hidden_sizes):
        bad("--hidden", hidden, "comma-separated ints > 0, e.g. 64,64 ('' for a linear model)")
    for option, value, low in (("--epochs", epochs, 1), ("--steps", steps, 1), ("--batch-size", batch_size, 1),
                               ("--patience", patience, 0), ("--seed", seed, 0), ("--eval-tasks", evaluate_tasks, 0)):
        check_int(option, value, low)
    check_float("--lr", lr, 0.0, low_open=True)
    check_float("--weight-decay", weight_decay, 0.0)
    check_float("--val-fraction", val_fraction, 0.0, 1.0)
    if val_fraction >= 1.0:
        bad("--val-fraction", val_fraction, "a number in [0, 1): some items must be left to train on")
    _check_tags(tags or [])
    out_dir = check_new_model_dir("--out", out, overwrite) if out is not None else None
    model_store = None
    if store is not None:
        try:
            check_name(store, "--store")
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--store") from None
        model_store = ModelStore(store_root)
        if model_store.root.exists() and not model_store.root.is_dir():
            bad("--store-root", store_root, "a directory (it is a file)")
        if model_store.path(store).exists() and not overwrite:
            bad("--store", store, f"a name not yet in {model_store.root}, or add --overwrite to replace that model")
    with user_errors():
        dataset = load_dataset(data)
    env = env_from_metadata(dataset)
    if env is None:
        fail(f"{data} records no env_kwargs in its metadata: cannot tell the observation space")
    bars = progress and interactive()
    stage = Stages("train-reward", enabled=progress and not bars)
    start = time.perf_counter()
    stage(f"training on {len(dataset)} {dataset.KIND} ({dataset.metadata.get('env_id', 'env not recorded')})")
    with user_errors():
        try:
            model = RewardModel(env.observation_space, env.action_space, hidden_sizes=hidden_sizes,
                                use_next_obs=use_next_obs, use_done=use_done, seed=seed)
            result = fit(model, dataset, loss=loss, epochs=epochs, steps=steps, lr=lr, batch_size=batch_size,
                         weight_decay=weight_decay, val_fraction=val_fraction, patience=patience or None, seed=seed,
                         progress=bars, env=env)
        except FloatingPointError as exc:
            fail(f"training diverged ({exc}): try a smaller --lr")
    metrics: dict[str, object] = {"final_train_loss": result.final_train_loss, "best_val_loss": result.best_val_loss}
    tasks = [GoalTask.from_dict(t) for t in dataset.metadata.get("tasks", [])
             if isinstance(t, dict)][: max(0, evaluate_tasks)]
    if tasks:
        stage(f"judging the model on {len(tasks)} task(s) against the teacher")
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
    command = f"rewardshare train-reward --data {Path(data).name} --loss {loss} --seed {seed}"
    model.metadata.update(provenance(dataset, method="scratch", seed=seed, metrics=metrics, loss=result.loss,
                                     command=command, dataset=Path(data).name))
    best = "-" if result.best_val_loss is None else f"{result.best_val_loss:.4g}"
    console.print(f"{result.loss}: {result.epochs} epochs, {result.steps} steps on {result.n_train} items "
                  f"(val {result.n_val}), final train loss {result.final_train_loss:.4g}, best val loss {best}, "
                  f"{time.perf_counter() - start:.1f}s")
    with user_errors():
        if out_dir is not None:
            stage(f"saving to {out_dir}")
            console.print(f"saved: {model.save(out_dir, overwrite=overwrite)}")
        if model_store is not None and store is not None:
            name = model_store.put(model, store, tags=tags or [], overwrite=overwrite)
            console.print(f"stored: {name} in {model_store.root}")
