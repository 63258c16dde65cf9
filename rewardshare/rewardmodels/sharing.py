"""Sharing reward models: save, load, verify and export model directories, and a local :class:`ModelStore`.

A saved model is a directory that a model hub accepts as is (see :mod:`~rewardshare.rewardmodels.serialization`)::

    model.safetensors   # the weights; nothing is ever unpickled
    config.json         # format version, architecture, provenance, the weights' sha256; sealed by a checksum
    README.md           # the model card (rewardshare.rewardmodels.card), generated on save

Provenance keys used across rewardshare (all optional): ``method`` (e.g. ``"scratch"``, ``"transfer"``, ``"maml"``),
``env_id``, ``env_kwargs``, ``tasks`` (task ids), ``feedback`` (``kind``, ``budget``, ``n_items``, ``teachers``),
``sources`` (source task ids of a reuse method), ``seed``, ``metrics`` (``heldout_epic`` when measured), ``tags``.

Every loader checks before it builds: format and version (a newer version than this package is refused with both
numbers), checksums of the config and the weights, sizes, the weights' file name (confined to the directory), the
tensor shapes, and optionally the env's spaces. Failures raise
:class:`~rewardshare.errors.IncompatibleArtifactError` or :class:`~rewardshare.errors.CorruptArtifactError` (both a
``ModelFormatError``, a ``ValueError``) naming the file and the reason.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from rewardshare.artifacts import MAX_WEIGHTS_BYTES, check_name, read_limited, write_directory
from rewardshare.errors import (
    ArtifactError,
    IncompatibleArtifactError,
    InvalidArgumentError,
    ModelFormatError,
)
from rewardshare.rewardmodels.card import render_card
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.serialization import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    build_config,
    content_id,
    read_config,
    state_blob,
)

STORE_ENV_VAR = "REWARDSHARE_STORE"


def save_model(model: RewardModel, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None,
               overwrite: bool = False) -> Path:
    """Save ``model`` to ``directory``; the same as :meth:`RewardModel.save`."""
    return model.save(directory, metadata=metadata, overwrite=overwrite)


def load_model(
    directory: str | os.PathLike[str],
    device: str | torch.device | None = None,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
    max_bytes: int = MAX_WEIGHTS_BYTES,
) -> RewardModel:
    """Load a saved (or exported) model directory, without unpickling anything; see :meth:`RewardModel.load`.

    Args:
        directory: The model's directory.
        device: Where to put the model (default CPU).
        observation_space: If given (with ``action_space``), the env the model is meant for: spaces that do not fit
            raise :class:`~rewardshare.errors.IncompatibleArtifactError` naming both pairs.
        action_space: See ``observation_space``.
        max_bytes: Largest weights file accepted.

    Raises:
        FileNotFoundError: If the directory, its config or its weights are missing.
        IncompatibleArtifactError: Not a reward model, a newer format version, or spaces that do not fit.
        CorruptArtifactError: Edited or damaged files, sizes over the limits, paths outside the directory, weights
            that do not fit the architecture.
        InvalidArgumentError: If only one of the two spaces is given.
    """
    if (observation_space is None) != (action_space is None):
        raise InvalidArgumentError("give both observation_space and action_space to check a model against an env")
    model = RewardModel.load(directory, device=device, max_bytes=max_bytes)
    if observation_space is not None and action_space is not None:
        try:
            model.check_spaces(observation_space, action_space)
        except ValueError as exc:
            raise IncompatibleArtifactError(f"{directory}: {exc}") from None
    return model


def verify_model(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Run every check of :func:`load_model` on a saved model and summarise it.

    Returns:
        ``{"path", "format_version", "content_id", "weights_sha256", "parameters", "card"}`` (``card``: whether a
        ``README.md`` is present).

    Raises:
        FileNotFoundError, IncompatibleArtifactError, CorruptArtifactError: As :func:`load_model`.
    """
    directory = Path(directory)
    model = RewardModel.load(directory)
    config = read_config(directory)
    return {"path": str(directory), "format_version": config["format_version"], "content_id": content_id(config),
            "weights_sha256": config["weights"]["sha256"], "parameters": model.num_parameters(),
            "card": (directory / CARD_FILE).is_file()}


def export_model(source: str | os.PathLike[str], out: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write a verified copy of a saved model to ``out``, ready to upload to a model hub as is.

    The copy holds the same ``model.safetensors`` and ``config.json`` bytes (so the checksums still match) and a
    freshly generated card titled with ``out``'s name. :func:`load_model` reads it like any saved model.

    Raises:
        FileNotFoundError, IncompatibleArtifactError, CorruptArtifactError: If ``source`` fails verification
            (nothing is written then).
        FileExistsError: If ``out`` holds a model (without ``overwrite``) or other files.
    """
    source, out = Path(source), Path(out)
    verify_model(source)  # refuse to spread a damaged model
    config = read_config(source)
    files = {
        WEIGHTS_FILE: read_limited(source / config["weights"].get("file", WEIGHTS_FILE), MAX_WEIGHTS_BYTES, "weights"),
        CONFIG_FILE: read_limited(source / CONFIG_FILE, MAX_WEIGHTS_BYTES, "config"),
        CARD_FILE: render_card(config, name=out.name).encode("utf-8"),
    }
    return write_directory(out, files, overwrite=overwrite, is_artifact=(out / CONFIG_FILE).is_file(),
                           replaceable=(WEIGHTS_FILE, CONFIG_FILE, CARD_FILE))


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
        A JSON-ready dict with ``method``, ``env_id``, ``env_kwargs``, ``tasks`` (ids), ``goals`` (task id ->
        ``[row, col]``, when the dataset records task dicts), ``feedback`` (``kind``, ``budget``, ``n_items``,
        ``teachers``), ``seed``, ``metrics`` and the ``extra`` keys.
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
            out["task_specs"] = [t for t in tasks if isinstance(t, dict)]
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
    """An entry of a :class:`ModelStore` (read from its checked ``config.json``; the weights are not loaded).

    Attributes:
        name: The store name.
        path: Its directory.
        metadata: The saved provenance.
        saved_at: When it was saved.
        format_version: Its file format version.
        content_id: Digest of architecture, weights and provenance (see
            :func:`~rewardshare.rewardmodels.serialization.content_id`).
    """

    name: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""
    format_version: int = FORMAT_VERSION
    content_id: str = ""

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


def _check_tags(tags: Any) -> list[str]:
    ok = not isinstance(tags, str) and all(isinstance(t, str) and t.strip() and t.isprintable() and len(t) <= 64
                                           for t in tags)
    if not ok:
        raise InvalidArgumentError(f"tags={tags!r} is not allowed: use a list of non-empty printable strings of at "
                                   "most 64 characters")
    return list(tags)


class ModelStore:
    """A local directory of saved reward models, one sub-directory per name.

    Args:
        root: The store's directory; default ``$REWARDSHARE_STORE`` or the user cache dir (see
            :func:`default_store_root`). Created (with the usual permissions) on the first :meth:`put`.

    Example::

        store = ModelStore()
        store.put(model, "open8-goal-cond", tags=["goal-conditioned"])
        for entry in store.find(env_id="rewardshare/GridGoal-v0", method="task_embedding"):
            model = store.load(entry.name)
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()

    def __repr__(self) -> str:
        return f"ModelStore(root={str(self.root)!r})"

    def path(self, name: str) -> Path:
        """The directory of entry ``name`` (which may not exist).

        Raises:
            InvalidArgumentError: If ``name`` is not a valid name (see :func:`rewardshare.artifacts.check_name`).
        """
        return self.root / check_name(name)

    def __contains__(self, name: object) -> bool:
        try:
            return (self.path(name) / CONFIG_FILE).is_file()  # type: ignore[arg-type]
        except InvalidArgumentError:
            return False

    def __len__(self) -> int:
        return len(self.list())

    def default_name(self, model: RewardModel, metadata: dict[str, Any] | None = None) -> str:
        """The name :meth:`put` gives ``model`` when none is given: ``"<method>-<12 hex digits of its content id>"``,
        the same for the same weights, architecture and provenance (tags aside)."""
        meta = {**model.metadata, **(metadata or {})}
        state = model.state_dict()
        config = build_config(model.config(), state, state_blob(state), meta)
        method = re.sub(r"[^A-Za-z0-9._-]", "_", str(meta.get("method", "model"))).strip("._-") or "model"
        return f"{method[:80]}-{content_id(config)[:12]}"

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
            name: Entry name (see :func:`rewardshare.artifacts.check_name`); default :meth:`default_name`.
            tags: Tags to find it by (stored in the metadata, merged with existing ``tags``).
            metadata: Provenance merged over ``model.metadata``.
            overwrite: Replace an existing entry of that name.

        Returns:
            The entry's name.

        Raises:
            FileExistsError: If ``name`` exists and ``overwrite`` is False (nothing is written).
            InvalidArgumentError: On a bad name or tags (checked before anything is written).
        """
        meta = {**model.metadata, **(metadata or {})}
        meta["tags"] = sorted(set(meta.get("tags", [])) | set(_check_tags(tags)))
        name = self.default_name(model, meta) if name is None else check_name(name)
        target = self.path(name)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: a model named {name!r} exists; nothing was written; pass "
                                  "overwrite=True (CLI: --overwrite) or another name")
        self.root.mkdir(parents=True, exist_ok=True)
        model.save(target, metadata=meta, overwrite=overwrite)
        return name

    def entry(self, name: str) -> StoredModel:
        """Entry ``name`` (config checked, weights not read).

        Raises:
            KeyError: If there is no such entry (the message lists the entries).
            ArtifactError: If its config is damaged or of a newer format.
        """
        if name not in self:
            raise KeyError(f"no model named {name!r} in {self.root}; it holds {[p.name for p in self._dirs()]}")
        config = read_config(self.path(name))
        return StoredModel(name, self.path(name), dict(config["provenance"]), str(config.get("saved_at", "")),
                           int(config["format_version"]), content_id(config))

    def list(self) -> list[StoredModel]:
        """Every readable entry, sorted by name (see :meth:`broken` for the others)."""
        out = []
        for sub in self._dirs():
            try:
                out.append(self.entry(sub.name))
            except (KeyError, FileNotFoundError, ArtifactError):
                continue
        return out

    def broken(self) -> dict[str, str]:
        """Entries whose config cannot be read: name -> reason."""
        out = {}
        for sub in self._dirs():
            try:
                self.entry(sub.name)
            except (KeyError, FileNotFoundError, ArtifactError) as exc:
                out[sub.name] = str(exc)
        return out

    def _dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith(".")]

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
            raise KeyError(f"no model named {name!r} in {self.root}; it holds {self.names()}")
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

    def names(self) -> list[str]:
        """The readable entries' names."""
        return [e.name for e in self.list()]


__all__ = [
    "STORE_ENV_VAR", "ModelFormatError", "ModelStore", "StoredModel", "default_store_root", "export_model",
    "load_model", "provenance", "read_config", "save_model", "verify_model",
]
