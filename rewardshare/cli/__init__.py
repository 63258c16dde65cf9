"""The ``rewardshare`` command line. Thin: every command checks its arguments, then calls the library.

Commands: ``envs``, ``collect``, ``train-reward``, ``train-agent``, ``bench``, ``models list|show|verify|export``,
and ``--version``. Bad input never produces a traceback: the message names the option, the value and what is
allowed, and the exit code is 2 (nothing was run or written).
"""

from __future__ import annotations

from rewardshare.cli import bench, collect, models, train, train_reward  # noqa: F401  (each registers its commands)
from rewardshare.cli._common import app, console

__all__ = ["app", "console"]

if __name__ == "__main__":
    app()
