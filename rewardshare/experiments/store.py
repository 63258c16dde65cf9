"""The results directory of a sweep: atomic JSON files, one per finished unit, all stamped with the config hash.

Layout of ``out/``::

    config.json                              the full config and its hash (a different config is refused)
    sessions.json                            one record per run_sweep call: start, wall time, units run/skipped
    source.json                              source feedback collected (summary; the data is in cache/)
    prep/<method>.json                       a reuse method is ready: selections and adapted models all written
    adapt/<method>/k<k>.json                 adaptation settings chosen on the validation tasks
    targets/<method>/k<k>/<task>_s<seed>.json   EPIC of the adapted reward model of one held-out task and seed
    runs/<algo>/<label>/k<k>/<task>_s<seed>.json   one agent run: learning curve, EPIC, provenance; <label> is the
                                             method, or method+variant for an uncertainty-aware reward
                                             (``latent+pessimistic``; see names.run_label)
    runs.csv  epic.csv  aggregate.json  report.md  *.png      written by :mod:`rewardshare.experiments.report`
    cache/                                   bulky intermediates, not results (safe to leave out of git):
        source/  models/<method>/  targets/<method>/k<k>/<task>_s<seed>/   feedback, pre-trained and adapted models
        targets/<method>/k<k>/<task>_s<seed>_m<i>/   ensemble member i of an adapted model (scratch posteriors)

A unit is finished exactly when its JSON file exists: every file is written to a temporary name and renamed with
``os.replace`` (atomic on POSIX), so an interrupted sweep never leaves a half-written result, and re-running the
same command skips what is done.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from rewardshare import _atomic
from rewardshare._version import __version__
from rewardshare.artifacts import ArtifactFormat, software_versions
from rewardshare.errors import ConfigMismatchError, CorruptArtifactError
from rewardshare.experiments.config import PROFILES, BenchConfig
from rewardshare.experiments.names import run_label

RUN_FORMAT = "rewardshare.bench.run"
RUN_FORMAT_VERSION = 1
#: Results files: the stamp of every file is the artifact header of :mod:`rewardshare.artifacts` (format, version,
#: software versions) plus the config hash, so a file of a newer format is refused with both version numbers.
FORMAT = ArtifactFormat(RUN_FORMAT, RUN_FORMAT_VERSION, oldest=1, label="benchmark result")
CONFIG_FILE = "config.json"


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as a results JSON file (sorted keys, indent 1) atomically: temp file in the same directory,
    fsync, ``os.replace`` (see :func:`rewardshare._atomic.atomic_write_json`).

    Args:
        path: Destination; parent directories are created.
        data: JSON-serialisable data (NaN/inf are written as JSON ``NaN``/``Infinity``, which :mod:`json` reads).

    Returns:
        The path written.
    """
    return _atomic.atomic_write_json(path, data, sort_keys=True)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error if it is not valid JSON.

    Raises:
        CorruptArtifactError: If it is not valid JSON (a ``ValueError``).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptArtifactError(f"{path} is not valid JSON ({e}); delete it to recompute that unit") from e


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (task ids contain ``/``): ``"open-8x8/g7_7"`` -> ``"open-8x8_g7_7"``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def provenance(config: BenchConfig) -> dict[str, Any]:
    """The stamp every result file carries: format, package version, config profile and hash."""
    return {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "rewardshare_version": __version__,
        "profile": config.profile,
        "config_hash": config.config_hash(),
    }


def check_stamp(data: dict[str, Any], config: BenchConfig, path: Path) -> None:
    """Refuse a result file written by another config or format.

    Raises:
        IncompatibleArtifactError: If the format differs or its version is newer than this package reads (the
            message gives both version numbers).
        ConfigMismatchError: If the config hash differs.
    """
    FORMAT.check(data, path)
    if data.get("config_hash") != config.config_hash():
        raise ConfigMismatchError(
            f"{path} was written by config {data.get('config_hash')!r} (profile {data.get('profile')!r}), not by the "
            f"current config {config.config_hash()!r} (profile {config.profile!r}): results of different configs are "
            "never mixed; use another --out directory"
        )


class ResultStore:
    """Paths and stamped reads/writes of one sweep's results directory.

    Args:
        root: The results directory.
        config: The sweep's config. :meth:`init` writes it, or refuses if the directory holds another config.
    """

    def __init__(self, root: str | os.PathLike[str], config: BenchConfig) -> None:
        self.root = Path(root)
        self.config = config

    def init(self) -> None:
        """Create the directory and write ``config.json``, or check that the existing one is the same config.

        Call it only with a config known to be runnable (``run_sweep`` plans the whole sweep first), so a
        directory never holds the ``config.json`` of a config that cannot run.

        Raises:
            ConfigMismatchError: If ``config.json`` holds a different config; the message lists the fields that
                differ and how to resume that run or start a fresh one.
        """
        path = self.root / CONFIG_FILE
        if path.exists():
            data = read_json(path)
            FORMAT.check(data, path)
            if data.get("config_hash") != self.config.config_hash():
                raise ConfigMismatchError(self._mismatch_message(data))
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {**provenance(self.config), "software": software_versions(),
                                 "config": self.config.to_dict()})

    def _mismatch_message(self, data: dict[str, Any]) -> str:
        stored = data.get("config") if isinstance(data.get("config"), dict) else {}
        wanted = self.config.to_dict()
        diff = [f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} requested"
                for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k)]
        return (
            f"{self.root} holds results of another config (hash {data.get('config_hash')!r}, profile "
            f"{data.get('profile')!r}); the requested config (hash {self.config.config_hash()!r}) differs in "
            f"{len(diff)} field(s): {'; '.join(diff[:8])}{'; ...' if len(diff) > 8 else ''}. Results of different "
            f"configs are never mixed. To resume that run: {resume_args(stored)}. To start fresh: use another --out "
            f"directory (or delete {self.root})."
        )

    @staticmethod
    def load_config(root: str | os.PathLike[str]) -> BenchConfig:
        """The config of an existing results directory (for re-making a report).

        Raises:
            FileNotFoundError: If ``root/config.json`` is missing.
            ConfigMismatchError: If the stored hash does not match the stored config.
        """
        path = Path(root) / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: {root} is not a benchmark results directory")
        data = read_json(path)
        config = BenchConfig.from_dict(data["config"])
        if config.config_hash() != data.get("config_hash"):
            raise ConfigMismatchError(
                f"{path}: stored hash {data.get('config_hash')!r} does not match its config (written by another "
                "rewardshare version whose config had other fields?): re-run that version, or start a new --out"
            )
        return config

    # -- paths --------------------------------------------------------------------------------------------------
    def sessions_path(self) -> Path:
        """One record per ``run_sweep`` call on this directory (start, wall time, units run and skipped)."""
        return self.root / "sessions.json"

    def source_path(self) -> Path:
        """The marker (and summary) of the collected source feedback."""
        return self.root / "source.json"

    def source_dir(self) -> Path:
        """Where the source feedback data lives."""
        return self.root / "cache" / "source"

    def prep_path(self, method: str) -> Path:
        """The marker of a reuse method's finished preparation (pre-training, selection, adaptation)."""
        return self.root / "prep" / f"{method}.json"

    def model_dir(self, method: str) -> Path:
        """Where the pre-trained state of ``method`` is cached (when the method can be saved)."""
        return self.root / "cache" / "models" / method

    def adapt_path(self, method: str, k: int) -> Path:
        """The adaptation settings chosen for ``method`` at budget ``k``."""
        return self.root / "adapt" / method / f"k{k}.json"

    def target_path(self, method: str, k: int, task_id: str, seed: int) -> Path:
        """The EPIC record of the adapted reward model of one held-out task and seed."""
        return self.root / "targets" / method / f"k{k}" / f"{slug(task_id)}_s{seed}.json"

    def target_model_dir(self, method: str, k: int, task_id: str, seed: int) -> Path:
        """The adapted reward model (RewardModel files) of one held-out task and seed."""
        return self.root / "cache" / "targets" / method / f"k{k}" / f"{slug(task_id)}_s{seed}"

    def member_model_dir(self, method: str, k: int, task_id: str, seed: int, member: int) -> Path:
        """Ensemble member ``member`` (>= 1; member 0 is :meth:`target_model_dir`) of an adapted reward model."""
        return self.root / "cache" / "targets" / method / f"k{k}" / f"{slug(task_id)}_s{seed}_m{member}"

    def run_path(self, algo: str, method: str, k: int, task_id: str, seed: int, uncertainty: str = "none") -> Path:
        """The result file of one agent run (``k = 0`` for the oracles), under the run's label: the method for the
        plain reward, ``method+variant`` for an uncertainty-aware one (so both live side by side)."""
        return self.root / "runs" / algo / run_label(method, uncertainty) / f"k{k}" / f"{slug(task_id)}_s{seed}.json"

    # -- stamped JSON ---------------------------------------------------------------------------------------------
    def write(self, path: Path, payload: dict[str, Any]) -> Path:
        """Write ``payload`` plus the provenance stamp atomically."""
        return atomic_write_json(path, {**payload, **provenance(self.config)})

    def read(self, path: Path) -> dict[str, Any]:
        """Read a stamped file, refusing one of another config or format."""
        data = read_json(path)
        check_stamp(data, self.config, path)
        return data

    def done(self, path: Path) -> bool:
        """Whether the unit whose result is ``path`` is finished *for this config*.

        Raises:
            ConfigMismatchError: If the file exists but was written by another config.
        """
        if not path.exists():
            return False
        self.read(path)
        return True

    def run_files(self) -> list[Path]:
        """Every finished run file, sorted."""
        return sorted((self.root / "runs").glob("*/*/k*/*.json"))


def resume_args(stored: dict[str, Any]) -> str:
    """The ``rewardshare bench`` options that rebuild a stored config: its profile plus a ``--set`` per field that
    differs from the profile."""
    profile = stored.get("profile")
    if profile not in PROFILES:
        return "re-create its config (see its config.json)"
    base = PROFILES[str(profile)].to_dict()
    sets = [f"--set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(stored.items())
            if k not in ("profile", "config_version") and base.get(k) != v]
    return " ".join([f"rewardshare bench --profile {profile}", *sets, "--out <that directory>"])


__all__ = [
    "CONFIG_FILE", "FORMAT", "RUN_FORMAT", "RUN_FORMAT_VERSION", "ConfigMismatchError", "ResultStore",
    "atomic_write_json", "check_stamp", "provenance", "read_json", "resume_args", "slug",
]
