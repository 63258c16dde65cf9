"""The reward-model file format: a directory any model hub accepts as is, checked before anything is built.

::

    model.safetensors   the state dict (weights, a learnable or fixed context); safetensors, nothing pickled
    config.json         sealed header (rewardshare.artifacts): format + version, software versions, provenance
                        (env id and kwargs, tasks, method and its sources, feedback, teacher, seed, metrics), the
                        architecture, and the weights' file name, size, SHA-256 and tensor shapes
    README.md           the model card, generated from config.json (documentation: not covered by the checksum)

The config's seal covers the config itself, and through the recorded SHA-256 the weights: every byte that changes a
prediction (or what the model is used for) is checked on load. The weights' file name must be a plain name inside
the directory, its size is checked against the record and a maximum before it is read, and the architecture's sizes
are bounded before any tensor is allocated.

This module knows nothing of :class:`~rewardshare.rewardmodels.model.RewardModel`; the model calls it (its ``save``
and ``load``), and :mod:`rewardshare.rewardmodels.sharing` adds the checks against an env.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rewardshare.artifacts import (
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    ArtifactFormat,
    canonical_json,
    check_seal,
    confined_path,
    read_json,
    read_limited,
    seal,
    sha256_hex,
    write_directory,
)
from rewardshare.errors import CorruptArtifactError
from rewardshare.rewardmodels.card import render_card

FORMAT_NAME = "rewardshare.reward_model"
FORMAT_VERSION = 2
KIND = "reward_model"
FORMAT = ArtifactFormat(FORMAT_NAME, FORMAT_VERSION, oldest=1, label="reward model", kinds=(KIND,))
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: Files of the previous layout that an overwrite may replace along with the current ones.
_LAYOUT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
#: Bounds on an architecture read from a file, checked before anything is allocated (grid models are tiny).
MAX_SPACE_ELEMENTS = 10**7
MAX_LAYER_WIDTH = 10**6
MAX_LAYERS = 64


def state_blob(state: Mapping[str, torch.Tensor]) -> bytes:
    """The safetensors bytes of a state dict (CPU, contiguous). Deterministic: one metadata key only, because
    safetensors writes a multi-key metadata map in an arbitrary order (two saves of one model would differ)."""
    from safetensors.torch import save as save_bytes

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    return save_bytes(tensors, metadata={"format": FORMAT_NAME})


def build_config(architecture: Mapping[str, Any], state: Mapping[str, torch.Tensor], blob: bytes,
                 metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The sealed ``config.json`` content for weights ``blob`` of ``state`` under ``architecture``.

    Raises:
        InvalidArgumentError: If ``metadata`` is not JSON-serialisable (also a ``TypeError``).
    """
    canonical_json(dict(metadata))  # refuse NaN and objects with a clear message before building anything
    weights = {
        "file": WEIGHTS_FILE, "sha256": sha256_hex(blob), "size": len(blob),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
                    for k, v in state.items()},
    }
    header = FORMAT.header(KIND, metadata, saved_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           architecture=dict(architecture), weights=weights)
    return seal(header)


def content_id(config: Mapping[str, Any]) -> str:
    """A hex digest of what a model *is*: architecture, weights and provenance (tags and save time left out).
    Equal models saved twice get the same id (the model store names unnamed entries by it)."""
    meta = {k: v for k, v in dict(config.get("provenance") or {}).items() if k != "tags"}
    return sha256_hex(canonical_json({"architecture": config.get("architecture"),
                                      "weights": (config.get("weights") or {}).get("sha256"), "provenance": meta}))


def write_model(directory: str | os.PathLike[str], architecture: Mapping[str, Any],
                state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any], overwrite: bool = False) -> Path:
    """Write a model directory (weights, sealed config, card) atomically.

    Args:
        directory: Missing or empty; an existing saved model only with ``overwrite``; never a directory holding
            other files.
        architecture: ``RewardModel.config()``.
        state: The state dict.
        metadata: Provenance (JSON-ready).
        overwrite: Replace an existing saved model.

    Returns:
        The directory.

    Raises:
        InvalidArgumentError: If ``metadata`` is not JSON-serialisable.
        FileExistsError: If the directory holds a model and ``overwrite`` is False, or holds other files.
    """
    directory = Path(directory)
    blob = state_blob(state)
    config = build_config(architecture, state, blob, metadata)
    files = {WEIGHTS_FILE: blob, CONFIG_FILE: canonical_json(config) + b"\n",
             CARD_FILE: render_card(config, name=directory.name).encode("utf-8")}
    return write_directory(directory, files, overwrite=overwrite, is_artifact=(directory / CONFIG_FILE).is_file(),
                           replaceable=_LAYOUT_FILES)


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``config.json`` of a saved model (format, version and seal verified; weights not read).

    A version 1 config (rewardshare 0.1: no seal) is read with its ``metadata`` copied to ``provenance``.

    Raises:
        FileNotFoundError: If ``directory`` or its ``config.json`` does not exist.
        IncompatibleArtifactError: Another format, or a format version newer than this package reads.
        CorruptArtifactError: Not valid JSON, too large, edited (checksum) or missing entries.
    """
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        hint = " (a file: give the model's directory)" if directory.is_file() else ""
        raise FileNotFoundError(f"{path}: no such file; {directory} is not a saved reward model{hint} (see "
                                "RewardModel.save / `rewardshare train-reward --out`)")
    config = read_json(path, "the model config", MAX_JSON_BYTES)
    version = _check_version(config, path)
    if version >= 2:
        check_seal(config, path)
    else:
        config["provenance"] = config.get("metadata")
    for key in ("architecture", "weights", "provenance"):
        if not isinstance(config.get(key), dict):
            raise CorruptArtifactError(f"{path}: the entry {key!r} is missing or not an object; the file is corrupted")
    return config


def _check_version(config: Any, path: Path) -> int:
    """The config's format version (version 1 configs have no ``kind``; every other is checked in full)."""
    if isinstance(config, dict) and config.get("format") == FORMAT_NAME and config.get("format_version") == 1:
        return 1
    return FORMAT.check(config, path)


def check_architecture(architecture: Mapping[str, Any], source: object) -> None:
    """Bound the sizes an architecture asks for before anything is allocated.

    Raises:
        CorruptArtifactError: On spaces, layers or a context larger than any grid model (see the ``MAX_*``
            constants) or sizes that are not ints.
    """
    def bad(what: str) -> CorruptArtifactError:
        return CorruptArtifactError(f"{source}: the architecture's {what} is not plausible for a reward model; the "
                                    "config was edited or damaged")

    for side in ("observation_space", "action_space"):
        space = architecture.get(side)
        if not isinstance(space, dict):
            raise bad(side)
        dims = space.get("shape", [space.get("n", 1)])
        if not isinstance(dims, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                 for d in dims) or math.prod(dims) > MAX_SPACE_ELEMENTS:
            raise bad(f"{side} size")
    hidden = architecture.get("hidden_sizes")
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS or not all(
            isinstance(h, int) and not isinstance(h, bool) and 0 < h <= MAX_LAYER_WIDTH for h in hidden):
        raise bad("hidden_sizes")
    context = architecture.get("context_dim", 0)
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= MAX_LAYER_WIDTH:
        raise bad("context_dim")


def read_weights(directory: str | os.PathLike[str], config: Mapping[str, Any],
                 max_bytes: int = MAX_WEIGHTS_BYTES) -> dict[str, torch.Tensor]:
    """The checked state dict of a saved model whose config was read by :func:`read_config`.

    Raises:
        FileNotFoundError: If the weights file is missing.
        CorruptArtifactError: A file name outside the directory, a size over ``max_bytes`` or not the recorded
            one, a SHA-256 that does not match, or an unreadable safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    directory = Path(directory)
    record = config["weights"]
    path = confined_path(directory, record.get("file", WEIGHTS_FILE), directory / CONFIG_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; the saved model in {directory} has no weights")
    size = record.get("size")
    blob = read_limited(path, max_bytes, "the weights file", size if isinstance(size, int) else None)
    if sha256_hex(blob) != record.get("sha256"):
        raise CorruptArtifactError(
            f"{path}: the weights do not match the sha256 recorded in {CONFIG_FILE}: the file is corrupted, "
            "truncated or was replaced; save the model again"
        )
    try:
        return load_bytes(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CorruptArtifactError(f"{path}: cannot read the safetensors file ({exc})") from exc


def check_state(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: object) -> None:
    """Every tensor the architecture needs, of its shape, and nothing else (in the architecture's layer order, so the
    first mismatch reported is the first layer's).

    Raises:
        CorruptArtifactError: Naming the tensor and both shapes.
    """
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CorruptArtifactError(
            f"{source}: tensors do not fit the architecture: missing {missing}, unexpected {unexpected}"
        )
    for key, want in expected.items():
        if tuple(state[key].shape) != tuple(want.shape):
            raise CorruptArtifactError(
                f"{source}: tensor {key!r} has shape {tuple(state[key].shape)} but the architecture needs "
                f"{tuple(want.shape)}"
            )


__all__ = [
    "CARD_FILE", "CONFIG_FILE", "FORMAT", "FORMAT_NAME", "FORMAT_VERSION", "WEIGHTS_FILE", "build_config",
    "check_architecture", "check_state", "content_id", "read_config", "read_weights", "state_blob",
    "write_model",
]
