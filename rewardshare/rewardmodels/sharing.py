"""Sharing reward models: safe files (safetensors + JSON, no pickle) and a local :class:`ModelStore`.

A saved model is a directory::

    model.safetensors   # the state dict (weights, a learnable or fixed context)
    config.json         # format + version, package version, architecture (spaces, featurizers, sizes),
                        # the weights' sha256 and tensor shapes, and provenance metadata

Provenance keys used across rewardshare (all optional): ``method`` (e.g. ``"scratch"``, ``"transfer"``, ``"maml"``),
``env_id``, ``env_kwargs``, ``tasks`` (task ids), ``feedback`` (``kind``, ``budget``, ``n_items``, ``teachers``),
``seed``, ``metrics``, ``fit`` (a :class:`FitResult` summary), ``tags``.

Loading checks the format name and version, the weights' checksum, the tensor names and shapes, and (optionally) the
env's spaces; every failure raises :class:`ModelFormatError` (a ``ValueError``) naming the file and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from rewardshare._atomic import atomic_write_bytes, atomic_write_json
from rewardshare._version import __version__
from rewardshare.rewardmodels.model import RewardModel

FORMAT_NAME = "rewardshare.reward_model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STORE_ENV_VAR = "REWARDSHARE_STORE"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelFormatError(ValueError):
    """A saved reward model is missing, corrupted, of another format version, or does not fit."""


def save_model(model: RewardModel, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``directory`` as ``model.safetensors`` + ``config.json`` (each written atomically).

    Args:
        model: The model to save.
        directory: Created if missing; existing files of a previous save are replaced.
        metadata: Provenance merged over ``model.metadata`` (see the module docstring).

    Returns:
        The directory.

    Raises:
        TypeError: If the metadata is not JSON-serializable (NaN/inf included).
    """
    from safetensors.torch import save as save_bytes

    directory = Path(directory)
    meta = {**model.metadata, **(metadata or {})}
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata is not JSON-serializable ({exc}): use str/int/float/bool/list/dict, no NaN") from exc
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = save_bytes(state, metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    directory.mkdir(parents=True, exist_ok=True)
    # weights first, config (holding their checksum) last: an interrupted save is detected on load
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "architecture": model.config(),
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "tensors": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in state.items()
            },
        },
        "metadata": meta,
    }
    atomic_write_json(directory / CONFIG_FILE, config, indent=2, allow_nan=False)
    return directory


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``config.json`` of a saved model (format and version verified; weights not read).

    Raises:
        FileNotFoundError: If ``directory`` or its ``config.json`` does not exist.
        ModelFormatError: If the config is not valid JSON, not a rewardshare reward model, or of another version.
    """
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {directory} is not a saved reward model (see RewardModel.save)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc}); the file is corrupted") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{path}: not a rewardshare reward model (format is not {FORMAT_NAME!r})")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: unsupported format version {version!r}; this rewardshare ({__version__}) reads version "
            f"{FORMAT_VERSION} (the model was saved by rewardshare {config.get('package_version')!r})"
        )
    for key in ("architecture", "weights", "metadata"):
        if not isinstance(config.get(key), dict):
            raise ModelFormatError(f"{path}: the entry {key!r} is missing or not an object; the file is corrupted")
    return config


def load_model(
    directory: str | os.PathLike[str],
    device: str | torch.device | None = None,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> RewardModel:
    """Rebuild a model saved by :func:`save_model`, without unpickling anything.

    Args:
        directory: The saved model's directory.
        device: Where to put the model (default CPU).
        observation_space: If given (with ``action_space``), the env the model is meant for: spaces that do not fit
            raise ``ValueError`` naming both pairs (see :meth:`RewardModel.check_spaces`).
        action_space: See ``observation_space``.

    Raises:
        FileNotFoundError: If the directory, its config or its weights are missing.
        ModelFormatError: On a corrupted or modified file (checksum), another format version, or weights that do
            not fit the architecture.
        ValueError: If the model does not fit the given spaces.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    directory = Path(directory)
    config = read_config(directory)
    weights_path = directory / str(config["weights"].get("file", WEIGHTS_FILE))
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: no such file; the saved model in {directory} has no weights")
    blob = weights_path.read_bytes()
    expected_sha = config["weights"].get("sha256")
    if hashlib.sha256(blob).hexdigest() != expected_sha:
        raise ModelFormatError(
            f"{weights_path}: the weights do not match the sha256 recorded in {CONFIG_FILE}: the file is corrupted, "
            "truncated or was replaced; save the model again"
        )
    try:
        state = load_bytes(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{weights_path}: cannot read the safetensors file ({exc})") from exc
    try:
        model = RewardModel.from_config(config["architecture"], metadata=config["metadata"])
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{directory / CONFIG_FILE}: the architecture cannot be rebuilt ({exc})") from exc
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelFormatError(
            f"{weights_path}: tensors do not fit the architecture: missing {missing}, unexpected {unexpected}"
        )
    for key in expected:  # the model's layer order, so the first mismatch reported is the first layer's
        tensor = state[key]
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ModelFormatError(
                f"{weights_path}: tensor {key!r} has shape {tuple(tensor.shape)} but the architecture needs "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict(state)
    if device is not None:
        model.to(device)
    if observation_space is not None or action_space is not None:
        if observation_space is None or action_space is None:
            raise ValueError("give both observation_space and action_space to check a model against an env")
        model.check_spaces(observation_space, action_space)
    return model


def provenance(
    data: Any = None,
    *,
    method: str | None = None,
    seed: int | None = None,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Provenance metadata for a model trained on a feedback dataset (for ``model.metadata`` / ``save``).

    Reads ``env_id``, ``env_kwargs``, ``tasks``, ``teachers`` and ``budget_spent`` from ``data.metadata`` when present.

    Returns:
        A JSON-ready dict with ``method``, ``env_id``, ``env_kwargs``, ``tasks`` (ids), ``feedback`` (``kind``,
        ``budget``, ``n_items``, ``teachers``), ``seed``, ``metrics`` and the ``extra`` keys.
    """
    out: dict[str, Any] = {}
    if method is not None:
        out["method"] = method
    if data is not None:
        meta = getattr(data, "metadata", {}) or {}
        if "env_id" in meta:
            out["env_id"] = meta["env_id"]
        if "env_kwargs" in meta:
            out["env_kwargs"] = meta["env_kwargs"]
        tasks = meta.get("tasks")
        if tasks is None and hasattr(data, "task_ids"):
            tasks = list(data.task_ids)
        if tasks is not None:
            out["tasks"] = [t.get("id", str(t)) if isinstance(t, dict) else str(t) for t in tasks]
        out["feedback"] = {
            "kind": getattr(data, "KIND", type(data).__name__),
            "budget": meta.get("budget_spent"),
            "n_items": len(data) if hasattr(data, "__len__") else None,
            "teachers": meta.get("teachers"),
        }
    if seed is not None:
        out["seed"] = int(seed)
    if metrics is not None:
        out["metrics"] = metrics
    out.update(extra)
    return out


@dataclass
class StoredModel:
    """An entry of a :class:`ModelStore` (read from its ``config.json``; the weights are not loaded).

    Attributes:
        name: The store name.
        path: Its directory.
        metadata: The saved provenance.
        saved_at: When it was saved.
    """

    name: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""

    @property
    def tags(self) -> list[str]:
        """The entry's tags."""
        return list(self.metadata.get("tags", []))

    @property
    def env_id(self) -> str | None:
        """The env id it was trained on, if recorded."""
        return self.metadata.get("env_id")

    @property
    def method(self) -> str | None:
        """How it was trained (``"scratch"``, ``"transfer"``...), if recorded."""
        return self.metadata.get("method")

    @property
    def tasks(self) -> list[str]:
        """Task ids it was trained on, if recorded."""
        return [t.get("id", str(t)) if isinstance(t, dict) else str(t) for t in self.metadata.get("tasks", [])]


def default_store_root() -> Path:
    """``$REWARDSHARE_STORE`` if set, else ``<user cache dir>/rewardshare/models`` (platformdirs)."""
    env = os.environ.get(STORE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rewardshare")) / "models"


class ModelStore:
    """A local directory of saved reward models, one sub-directory per name.

    Args:
        root: The store's directory; default ``$REWARDSHARE_STORE`` or the user cache dir (see
            :func:`default_store_root`). Created on the first :meth:`put`.

    Example::

        store = ModelStore()
        store.put(model, "open8-goal-cond", tags=["goal-conditioned"])
        for entry in store.find(env_id="rewardshare/GridGoal-v0", method="multitask"):
            model = store.load(entry.name)
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()

    def __repr__(self) -> str:
        return f"ModelStore(root={str(self.root)!r})"

    @staticmethod
    def _check_name(name: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"name={name!r} is not allowed: use 1-128 characters from letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )
        return name

    def path(self, name: str) -> Path:
        """The directory of entry ``name`` (which may not exist)."""
        return self.root / self._check_name(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(_NAME_RE.match(name)) and (self.root / name / CONFIG_FILE).is_file()

    def __len__(self) -> int:
        return len(self.list())

    def put(
        self,
        model: RewardModel,
        name: str | None = None,
        tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> str:
        """Save ``model`` under ``name`` atomically (written to a temp dir, then renamed into place).

        Args:
            model: The model.
            name: Entry name; default ``"<method>-<first 12 hex digits of the weights' sha256>"``.
            tags: Tags to find it by (stored in the metadata, merged with existing ``tags``).
            metadata: Provenance merged over ``model.metadata``.
            overwrite: Replace an existing entry of that name.

        Returns:
            The entry's name.

        Raises:
            FileExistsError: If ``name`` exists and ``overwrite`` is False.
            ValueError: On a bad name or tags.
        """
        if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
            raise ValueError(f"tags={tags!r} is not allowed: use a list of non-empty strings")
        meta = {**model.metadata, **(metadata or {})}
        meta["tags"] = sorted(set(meta.get("tags", [])) | set(tags))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".put-", dir=self.root))
        try:
            save_model(model, tmp, metadata=meta)
            if name is None:
                sha = json.loads((tmp / CONFIG_FILE).read_text())["weights"]["sha256"]
                name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', str(meta.get('method', 'model')))}-{sha[:12]}"
            target = self.path(name)
            if target.exists():
                if not overwrite:
                    raise FileExistsError(
                        f"{target}: a model named {name!r} exists; pass overwrite=True or another name"
                    )
                trash = Path(tempfile.mkdtemp(prefix=".old-", dir=self.root))
                os.replace(target, trash / "entry")
                os.replace(tmp, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return name

    def list(self) -> list[StoredModel]:
        """Every readable entry, sorted by name (entries with an unreadable config are skipped)."""
        if not self.root.is_dir():
            return []
        out = []
        for sub in sorted(self.root.iterdir()):
            if sub.name.startswith(".") or not sub.is_dir():
                continue
            try:
                config = read_config(sub)
            except (FileNotFoundError, ModelFormatError):
                continue
            out.append(StoredModel(sub.name, sub, dict(config["metadata"]), str(config.get("saved_at", ""))))
        return out

    def find(
        self,
        env_id: str | None = None,
        task: str | None = None,
        method: str | None = None,
        tag: str | None = None,
    ) -> list[StoredModel]:
        """Entries matching every given criterion (``task``: one of the task ids it was trained on)."""
        hits = []
        for entry in self.list():
            if env_id is not None and entry.env_id != env_id:
                continue
            if task is not None and task not in entry.tasks:
                continue
            if method is not None and entry.method != method:
                continue
            if tag is not None and tag not in entry.tags:
                continue
            hits.append(entry)
        return hits

    def load(
        self,
        name: str,
        device: str | torch.device | None = None,
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
    ) -> RewardModel:
        """Load entry ``name`` (see :func:`load_model`).

        Raises:
            KeyError: If there is no such entry (the message lists the entries).
        """
        if name not in self:
            names = [e.name for e in self.list()]
            raise KeyError(f"no model named {name!r} in {self.root}; it holds {names}")
        return load_model(
            self.path(name), device=device, observation_space=observation_space, action_space=action_space
        )

    def remove(self, name: str) -> None:
        """Delete entry ``name``.

        Raises:
            KeyError: If there is no such entry.
        """
        if name not in self:
            raise KeyError(f"no model named {name!r} in {self.root}")
        shutil.rmtree(self.path(name))

    def names(self) -> Iterable[str]:
        """The entries' names."""
        return [e.name for e in self.list()]
