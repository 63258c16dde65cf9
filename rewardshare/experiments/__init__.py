"""Experiments: the learning-curve benchmark's config, sweep runner, statistics and report.

Sits last in the data flow (envs -> feedback -> rewardmodels -> wrappers -> agents -> experiments), so it may use
every other part of the package; nothing in the package imports it except the CLI.

``from rewardshare.experiments import BenchConfig, get_profile, run_sweep, make_report``
"""

from rewardshare.experiments.config import METHODS, PROFILES, BenchConfig, get_profile
from rewardshare.experiments.report import make_report
from rewardshare.experiments.runner import SweepResult, plan, run_sweep, task_split
from rewardshare.experiments.store import ConfigMismatchError, ResultStore

__all__ = ["METHODS", "PROFILES", "BenchConfig", "ConfigMismatchError", "ResultStore", "SweepResult",
           "get_profile", "make_report", "plan", "run_sweep", "task_split"]
