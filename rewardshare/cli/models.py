"""``rewardshare models list | show | verify | export``: the model store from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from rewardshare.cli._common import app, check_new_model_dir, console, fail, user_errors

models_app = typer.Typer(help="List, inspect, verify and export saved reward models (the model store).",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(models_app, name="models")

_ROOT_HELP = "Model store directory (default: $REWARDSHARE_STORE or the user cache dir)."
_MODEL_HELP = "A store entry's name, or a saved model's directory."


def _resolve(model: str, store_root: str | None) -> Path:
    """A model argument as a directory: an existing directory as is, else a store entry."""
    from rewardshare.artifacts import check_name
    from rewardshare.rewardmodels import ModelStore

    if Path(model).is_dir():
        return Path(model)
    store = ModelStore(store_root)
    with user_errors():
        check_name(model, "MODEL")
    if model not in store:
        fail(f"{model!r} is neither a directory nor a model in the store {store.root} (it holds {store.names()}); "
             "see `rewardshare models list`")
    return store.path(model)


@models_app.command("list")
def list_cmd(
    store_root: str = typer.Option(None, "--store-root", help=_ROOT_HELP),
    env_id: str = typer.Option(None, "--env-id", help="Only models trained on this env id."),
    method: str = typer.Option(None, "--method", help="Only models of this reuse method."),
    tag: str = typer.Option(None, "--tag", help="Only models with this tag."),
) -> None:
    """List the store's models (and any entry that cannot be read, with the reason)."""
    from rewardshare.rewardmodels import ModelStore

    store = ModelStore(store_root)
    entries = store.find(env_id=env_id, method=method, tag=tag)
    columns = ("name", "method", "env id", "tasks", "tags", "saved", "format")
    rows = [(e.name, e.method or "-", e.env_id or "-", e.tasks[0] if len(e.tasks) == 1 else f"{len(e.tasks)} tasks",
             ",".join(e.tags) or "-", e.saved_at[:19], f"v{e.format_version}") for e in entries]
    if console.is_terminal:
        table = Table(title=f"reward models in {store.root}")
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:  # piped or logged: a table would be folded to 80 columns mid-word; one tab-separated line per model
        typer.echo(f"# reward models in {store.root}")
        for row in (columns, *rows):
            typer.echo("\t".join(row))
    for name, reason in store.broken().items():
        console.print(f"[red]unreadable[/red] {name}: {reason}")


@models_app.command("show")
def show_cmd(
    model: str = typer.Argument(..., help=_MODEL_HELP),
    store_root: str = typer.Option(None, "--store-root", help=_ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the checked config.json instead of the model card."),
) -> None:
    """Show a model's card (README.md, regenerated from its config if missing) or its config."""
    from rewardshare.rewardmodels.card import render_card
    from rewardshare.rewardmodels.sharing import read_config

    path = _resolve(model, store_root)
    with user_errors():
        config = read_config(path)
    if as_json:
        typer.echo(json.dumps(config, indent=1, sort_keys=True))
    else:
        card = path / "README.md"
        typer.echo(card.read_text(encoding="utf-8") if card.is_file() else render_card(config, name=path.name))


@models_app.command("verify")
def verify_cmd(
    model: str = typer.Argument(None, help=_MODEL_HELP + " Default: every model in the store."),
    store_root: str = typer.Option(None, "--store-root", help=_ROOT_HELP),
) -> None:
    """Check models as loading does (format, checksums, sizes, paths, shapes); exit code 2 if any fails."""
    from rewardshare.errors import RewardShareError
    from rewardshare.rewardmodels import ModelStore
    from rewardshare.rewardmodels.sharing import verify_model

    if model is not None:
        paths = [_resolve(model, store_root)]
    else:
        store = ModelStore(store_root)
        paths = [store.root / name for name in sorted([e.name for e in store.list()] + list(store.broken()))]
    failed = 0
    for path in paths:
        try:
            report = verify_model(path)
        except (RewardShareError, FileNotFoundError) as exc:
            failed += 1
            typer.echo(f"FAILED {path.name}: {exc}", err=True)
        else:
            typer.echo(f"ok {path.name}: format v{report['format_version']}, {report['parameters']} parameters, "
                       f"content {report['content_id'][:12]}")
    if failed:
        typer.echo(f"{failed} of {len(paths)} model(s) failed verification", err=True)
        raise typer.Exit(code=2)


@models_app.command("export")
def export_cmd(
    model: str = typer.Argument(..., help=_MODEL_HELP),
    out: str = typer.Option(..., "--out", help="A new (or empty) directory: model.safetensors + config.json + "
                            "README.md, ready to upload to a model hub as is; `load_model` reads it."),
    store_root: str = typer.Option(None, "--store-root", help=_ROOT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model exported there before."),
) -> None:
    """Export a verified copy of a model for sharing (e.g. `huggingface-cli upload <repo> <out>`)."""
    from rewardshare.rewardmodels.sharing import export_model

    source = _resolve(model, store_root)
    target = check_new_model_dir("--out", out, overwrite)
    with user_errors():
        path = export_model(source, target, overwrite=overwrite)
    typer.echo(f"exported {source.name} -> {path} (model.safetensors, config.json, README.md)")
