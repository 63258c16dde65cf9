"""What every ``rewardshare`` command shares: the Typer app, argument checks that run before any work, the one way
errors reach the user (a message and exit code 2, never a traceback), and progress that works when piped."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from rewardshare._version import __version__
from rewardshare.errors import RewardShareError

app = typer.Typer(
    help="rewardshare: learn, reuse and share reward models across grid-world tasks.", no_args_is_help=True,
    pretty_exceptions_show_locals=False, rich_markup_mode=None,  # plain errors: one greppable line, also in a pipe
)
console = Console()

#: What a user's input can make the library raise; each becomes "Error: <message>" and exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    RewardShareError, ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
    IsADirectoryError, PermissionError,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rewardshare {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the rewardshare version and exit."),
) -> None:
    """rewardshare: learn, reuse and share reward models across grid-world tasks."""


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with code 2 (bad input: nothing was done)."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


def bad(option: str, value: object, allowed: str) -> NoReturn:
    """Refuse option ``option`` = ``value``, saying what is allowed (Typer's usage error, exit code 2)."""
    raise typer.BadParameter(f"{value!r} is not allowed: use {allowed}", param_hint=option)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's argument and file errors into :func:`fail` (message, exit code 2)."""
    try:
        yield
    except USER_ERRORS as exc:
        text = str(exc) if not isinstance(exc, KeyError) else str(exc.args[0])
        fail(text or type(exc).__name__)


def check_int(option: str, value: int | None, low: int) -> None:
    """Refuse an int option below ``low`` (None passes: the option's default applies)."""
    if value is not None and value < low:
        bad(option, value, f"an int >= {low}")


def check_float(option: str, value: float | None, low: float | None = None, high: float | None = None,
                low_open: bool = False, allow_inf: bool = False) -> None:
    """Refuse a float option outside ``[low, high]`` (``(low, high]`` with ``low_open``), NaN, or infinity."""
    if value is None:
        return
    bounds = f"{'(' if low_open else '['}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        bad(option, value, f"a finite number in {bounds}")
    if low is not None and (value < low or (low_open and value == low)):
        bad(option, value, f"a number in {bounds}")
    if high is not None and value > high:
        bad(option, value, f"a number in {bounds}")


def check_choice(option: str, value: str, allowed: Sequence[str]) -> None:
    """Refuse a value outside ``allowed``."""
    if value not in allowed:
        bad(option, value, " | ".join(allowed))


def check_new_file(option: str, path: str, force: bool, suffixes: Sequence[str]) -> Path:
    """An output file that can be written without losing anything: the right suffix, an existing directory, and
    no existing file unless ``force``.

    Returns:
        The path.
    """
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        bad(option, path, f"a file name ending in {' or '.join(suffixes)}")
    if out.is_dir():
        bad(option, path, "a file path (it is a directory)")
    if not out.parent.is_dir():
        bad(option, path, f"a path in an existing directory: {str(out.parent)!r} does not exist (create it first)")
    if out.exists() and not force:
        bad(option, path, "a path that does not exist yet, or add --force to overwrite it")
    return out


def check_new_model_dir(option: str, path: str, overwrite: bool) -> Path:
    """An output directory for a saved model: missing or empty (in an existing parent), or an existing model with
    ``overwrite``; never a file or a directory holding anything else.

    Returns:
        The path.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        bad(option, path, "a directory path (it is a file)")
    if not out.parent.is_dir():
        bad(option, path, f"a path in an existing directory: {str(out.parent)!r} does not exist (create it first)")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "config.json").is_file():
            bad(option, path, "a new or empty directory (it holds other files)")
        if not overwrite:
            bad(option, path, "a new or empty directory, or add --overwrite to replace the model saved there")
    return out


def parse_overrides(items: list[str] | None, option: str = "--set") -> dict[str, object]:
    """``["seeds=[0,1]", "layout=four_rooms"]`` -> ``{"seeds": [0, 1], "layout": "four_rooms"}``: JSON values, else
    the raw string (so ``layout=maze`` needs no quotes)."""
    out: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            bad(option, item, "FIELD=VALUE, e.g. seeds=[0,1]")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars redraw in place there; in a pipe or a log they do not)."""
    return sys.stderr.isatty()


class Stages:
    """One line per stage on stderr (``collect: loading... (at 0.1s)``), for output that is piped or logged, where
    progress bars do not update; each line ends with the seconds since the command started, when the stage began
    (``at``: a stage's own duration is the difference to the next line)."""

    def __init__(self, command: str, enabled: bool = True) -> None:
        self.command, self.enabled = command, enabled
        self.t0 = self.t_stage = time.perf_counter()

    def __call__(self, text: str) -> None:
        if self.enabled:
            now = time.perf_counter()
            typer.echo(f"{self.command}: {text} (at {now - self.t0:.1f}s)", err=True)
            self.t_stage = now


__all__ = [
    "USER_ERRORS", "Stages", "app", "bad", "check_choice", "check_float", "check_int", "check_new_file",
    "check_new_model_dir", "console", "fail", "interactive", "parse_overrides", "user_errors",
]
