"""A local store of saved reward models: one directory per name, found by env, task, method or tag.

The store is a plain directory (``$REWARDSHARE_STORE``, else the user cache dir), so it can be synced, zipped or
inspected by hand; every entry is a saved model directory (see :mod:`rewardshare.rewardmodels.sharing`), and
``rewardshare models list | show | verify | export`` works on it from the command line.
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

from rewardshare.artifacts import check_name
from rewardshare.errors import ArtifactError, InvalidArgumentError
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.serialization import (
    CONFIG_FILE,
    FORMAT_VERSION,
    build_config,
    content_id,
    read_config,
    state_blob,
)
from rewardshare.rewardmodels.sharing import load_model

STORE_ENV_VAR = "REWARDSHARE_STORE"


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


__all__ = ["STORE_ENV_VAR", "ModelStore", "StoredModel", "default_store_root"]
