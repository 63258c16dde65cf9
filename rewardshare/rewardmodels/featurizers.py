"""Featurizers: turn observations and actions from gymnasium spaces into flat float features.

One featurizer per space type:

- ``Discrete(n, start)`` -> one-hot of size ``n`` (the value ``start + i`` maps to unit vector ``i``).
- ``Box(low, high, shape)`` -> the flattened values; with ``normalize=True`` every dimension with finite bounds is
  mapped affinely from ``[low, high]`` to ``[-1, 1]`` (dimensions with an infinite bound pass through unchanged).

Spaces are also (de)serialized here as plain JSON (:func:`space_to_dict` / :func:`space_from_dict`), so a saved
reward model rebuilds its featurizers without pickle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

SUPPORTED_SPACES = "gymnasium.spaces.Discrete or gymnasium.spaces.Box"


def _encode_float(x: float) -> float | str:
    # JSON has no infinities or NaN; spell them as strings so json.dumps(allow_nan=False) works.
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _decode_float(x: float | str) -> float:
    return float(x)


def _encode_bound(bound: np.ndarray) -> float | str | list[float | str]:
    # A bound that is the same everywhere (the common case) is stored as one number to keep config.json readable.
    flat = np.asarray(bound, dtype=np.float64).ravel()
    if flat.size and np.all(flat == flat[0]):
        return _encode_float(float(flat[0]))
    return [_encode_float(v) for v in flat.tolist()]


def _decode_bound(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(value, list):
        return np.array([_decode_float(v) for v in value], dtype=dtype).reshape(shape)
    return np.full(shape, _decode_float(value), dtype=dtype)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A JSON-ready description of a ``Discrete`` or ``Box`` space.

    Box bounds are stored as one number when uniform, else element by element (``float32`` values round-trip
    exactly); infinite bounds as the strings ``"inf"`` / ``"-inf"``.

    Raises:
        TypeError: If ``space`` is neither ``Discrete`` nor ``Box``.
    """
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": [int(s) for s in space.shape],
            "dtype": str(np.dtype(space.dtype)),
            "low": _encode_bound(space.low),
            "high": _encode_bound(space.high),
        }
    raise TypeError(f"space={space!r} is not supported: use {SUPPORTED_SPACES}")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_dict`.

    Raises:
        ValueError: If ``data`` does not describe a supported space.
    """
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "Discrete":
            return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
        if kind == "Box":
            shape = tuple(int(s) for s in data["shape"])
            dtype = np.dtype(data["dtype"])
            low = _decode_bound(data["low"], shape, dtype)
            high = _decode_bound(data["high"], shape, dtype)
            return spaces.Box(low, high, shape, dtype)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"space description {data!r} is malformed: {exc}") from exc
    raise ValueError(f"space description {data!r} has type={kind!r}: allowed are 'Discrete' and 'Box'")


def spaces_equal(a: spaces.Space, b: spaces.Space) -> bool:
    """Whether two spaces are the same ``Discrete`` / ``Box`` (type, size, shape, dtype and bounds)."""
    try:
        return space_to_dict(a) == space_to_dict(b)
    except TypeError:
        return False


class Featurizer(nn.Module):
    """Maps a batch of space elements ``(B, *space.shape)`` to float features ``(B, out_dim)``."""

    out_dim: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-ready arguments that rebuild this featurizer with :func:`make_featurizer`."""
        raise NotImplementedError


class DiscreteFeaturizer(Featurizer):
    """One-hot encoding of a ``Discrete(n, start)`` element.

    Input: a tensor of shape ``(B,)`` (or ``(B, 1)``) of integer values in ``start .. start + n - 1``; float
    tensors holding whole numbers are accepted (observations often arrive as floats). Output: ``(B, n)`` float.

    Raises:
        ValueError: On a value outside the space (naming the value and the allowed range).
    """

    #: Up to this ``n`` the one-hot rows of a CPU batch are read from a stored identity matrix (one
    #: ``index_select``, which also refuses an index outside ``0..n-1``); a larger space (an ``n x n`` matrix would
    #: cost ``4 n^2`` bytes), another device or a functorch transform compares against ``arange(n)`` and checks the
    #: range with a reduction.
    EYE_MAX_N = 1024

    def __init__(self, space: spaces.Discrete) -> None:
        super().__init__()
        self.n = int(space.n)
        self.start = int(space.start)
        self.out_dim = self.n
        self.input_shape: tuple[int, ...] = ()
        # built once, not per reward query; non-persistent: it follows .to(device) but is not saved with the weights
        self.register_buffer("values", torch.arange(self.n), persistent=False)
        eye = torch.eye(self.n) if self.n <= self.EYE_MAX_N else None
        self.register_buffer("eye", eye, persistent=False)

    def _out_of_range(self, idx: torch.Tensor) -> ValueError:
        bad = (idx[(idx < 0) | (idx >= self.n)][0] + self.start).item()
        return ValueError(
            f"value {bad} is outside Discrete({self.n}, start={self.start}): allowed are "
            f"{self.start}..{self.start + self.n - 1}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == 1:
            x = x[:, 0]
        idx = x if x.dtype == torch.int64 else x.long()
        if self.start:
            idx = idx - self.start
        eye = self._buffers["eye"]  # the dict, not self.eye: nn.Module.__getattr__ costs ~1 us per query
        # The range check reads values, which torch.func.vmap cannot do (MAML vmaps the model over a meta-batch);
        # under a functorch transform the values were checked when the batch was built, so skip it there.
        wrapped = torch._C._functorch.is_functorch_wrapped_tensor(idx)
        if (eye is not None and idx.is_cpu and idx.dim() == 1 and not wrapped
                and eye.dtype == torch.get_default_dtype()):
            # the rows of the identity are exactly the one-hot vectors the comparison below builds, and on the CPU
            # index_select refuses an index outside 0..n-1 (negative ones too; on a GPU it would be a device-side
            # assert, hence the check below there): one op instead of three
            try:
                return eye.index_select(0, idx)
            except IndexError:
                raise self._out_of_range(idx) from None
        if idx.numel() and not wrapped:
            # one reduction for both bounds (aminmax)
            lo, hi = torch.aminmax(idx)
            if int(lo) < 0 or int(hi) >= self.n:
                raise self._out_of_range(idx)
        # a comparison rather than nn.functional.one_hot, which has no vmap rule
        return (idx.unsqueeze(-1) == self._buffers["values"]).to(torch.get_default_dtype())

    def config(self) -> dict[str, Any]:
        return {"type": "onehot"}


class BoxFeaturizer(Featurizer):
    """Flattened ``Box`` values, optionally rescaled from ``[low, high]`` to ``[-1, 1]`` per dimension.

    Input: ``(B, *shape)``; output: ``(B, prod(shape))`` float. Dimensions with an infinite (or degenerate) bound are
    passed through unscaled. The scale and offset are non-persistent buffers: they follow ``.to(device)`` but are
    rebuilt from the space on load rather than stored with the weights.
    """

    def __init__(self, space: spaces.Box, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        self.input_shape = tuple(int(s) for s in space.shape)
        self.out_dim = int(np.prod(self.input_shape)) if self.input_shape else 1
        low = np.asarray(space.low, dtype=np.float64).ravel()
        high = np.asarray(space.high, dtype=np.float64).ravel()
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        if not self.normalize:
            finite[:] = False
        span = np.where(finite, high - low, 2.0)
        # x -> (x - low) / span * 2 - 1 == x * scale + offset
        scale = np.where(finite, 2.0 / span, 1.0)
        offset = np.where(finite, -low * scale - 1.0, 0.0)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.get_default_dtype()), persistent=False)
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.get_default_dtype()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # this runs on every reward query: the buffers come from the dict (self.scale goes through
        # nn.Module.__getattr__, ~1 us), and a no-op reshape or .to() is skipped (each still costs a dispatch)
        buffers = self._buffers
        scale = buffers["scale"]
        if x.dim() != 2:
            x = x.reshape(x.shape[0], -1)
        if x.dtype != scale.dtype:
            x = x.to(scale.dtype)
        return torch.addcmul(buffers["offset"], x, scale) if self.normalize else x

    def config(self) -> dict[str, Any]:
        return {"type": "box", "normalize": self.normalize}


def make_featurizer(space: spaces.Space, normalize: bool = True) -> Featurizer:
    """The featurizer for ``space``: one-hot for ``Discrete``, (normalized) flat floats for ``Box``.

    Raises:
        TypeError: If ``space`` is neither ``Discrete`` nor ``Box``.
    """
    if isinstance(space, spaces.Discrete):
        return DiscreteFeaturizer(space)
    if isinstance(space, spaces.Box):
        return BoxFeaturizer(space, normalize=normalize)
    raise TypeError(f"space={space!r} is not supported: use {SUPPORTED_SPACES}")
