"""Sharing reward models: save, load, verify and export model directories (the local store of them is
:mod:`rewardshare.rewardmodels.model_store`).

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
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from rewardshare.artifacts import MAX_WEIGHTS_BYTES, read_limited, write_directory
from rewardshare.errors import IncompatibleArtifactError, InvalidArgumentError, ModelFormatError
from rewardshare.rewardmodels.card import render_card
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.serialization import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, content_id, read_config


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


__all__ = [
    "ModelFormatError", "export_model", "load_model", "provenance", "read_config", "save_model", "verify_model",
]
