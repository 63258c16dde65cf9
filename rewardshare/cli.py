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


if __name__ == "__main__":
    app()
