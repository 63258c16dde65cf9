"""What a reward model reads: converting a batch of transitions to tensors, checking its shapes against the spaces,
and concatenating the featurized parts into the trunk's input.

:class:`~rewardshare.rewardmodels.model.RewardModel` keeps the network and the one inference path
(:meth:`~rewardshare.rewardmodels.model.RewardModel.forward`); this module holds the input handling that path calls
on every reward query, so its checks live in one place::

    x = featurize(obs) ++ featurize(action) [++ featurize(next_obs)] [++ done] [++ context]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardshare.errors import InvalidArgumentError
from rewardshare.rewardmodels.model_layers import run_module

# The functions take the model as an nn.Module reading RewardModel's attributes: importing RewardModel here, even
# for annotations only, would close a cycle with model.py, which calls them.

ArrayLike = np.ndarray | Sequence[Any] | torch.Tensor


def space_str(space: spaces.Space) -> str:
    """A short description of a space for messages (a ``Box``'s overall bounds rather than every entry)."""
    if isinstance(space, spaces.Box):
        low, high = space.low.min(), space.high.max()
        return f"Box(shape={tuple(space.shape)}, dtype={np.dtype(space.dtype)}, low={low}, high={high})"
    return repr(space)


def spaces_mismatch(model: nn.Module, observation_space: spaces.Space, action_space: spaces.Space) -> str:
    """Why ``model`` does not fit an env with these spaces: both pairs of spaces and what to do."""
    return (
        "the reward model does not fit this env: the model reads observation_space="
        f"{space_str(model.observation_space)}, action_space={space_str(model.action_space)}; the env has "
        f"observation_space={space_str(observation_space)}, action_space={space_str(action_space)}. "
        "Use a model trained on an env with the same spaces (same layout size and obs_mode)."
    )


def element_shape(space: spaces.Space) -> tuple[int, ...]:
    """The shape of one element of ``space`` in a batch: ``()`` for ``Discrete``, the space's shape for ``Box``."""
    return () if isinstance(space, spaces.Discrete) else tuple(int(s) for s in space.shape)


def to_device(x: ArrayLike, device: torch.device) -> torch.Tensor:
    """``x`` as a tensor on ``device``; a tensor already there is returned as is (no dispatch at all)."""
    # x.is_cpu is a flag read; x.device builds a torch.device (this runs for every input of every reward query)
    if isinstance(x, torch.Tensor) and (x.is_cpu if device.type == "cpu" else x.device == device):
        return x
    return torch.as_tensor(x, device=device)


def from_numpy(x: ArrayLike | None, integer: bool = False) -> torch.Tensor | None:
    """:meth:`RewardModel.predict`'s input conversion: float arrays to float32, whole-number floats to int64 for a
    Discrete action (``integer``); tensors pass through unchanged.

    Raises:
        TypeError: If ``integer`` and the array holds non-integer (or non-finite) floats.
    """
    if x is None or isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if integer:
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise TypeError(f"action has non-integer values (dtype {arr.dtype}): a Discrete action is an int")
            arr = arr.astype(np.int64)
        elif arr.dtype != np.float32:
            arr = arr.astype(np.float32)
    # shares the array's memory like torch.as_tensor, without its generic dispatch (about 1 us per call)
    return torch.from_numpy(arr) if arr.dtype.kind in "fiub" else torch.as_tensor(arr)


def check_shape(name: str, x: torch.Tensor, shape: tuple[int, ...], batch: int | None) -> None:
    """Refuse an input whose shape is not ``(batch, *shape)`` (any batch size when ``batch`` is None).

    Raises:
        InvalidArgumentError: Naming the input, its shape and the shape expected.
    """
    size = x.shape
    if len(size) == 1 + len(shape) and size[1:] == shape and (batch is None or size[0] == batch):
        return
    dims = ["B" if batch is None else str(batch), *map(str, shape)]
    want = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    raise InvalidArgumentError(f"{name} has shape {tuple(x.shape)}: expected {want}")


def input_dim(obs_featurizer: Any, action_featurizer: Any, use_next_obs: bool, use_done: bool,
              context_dim: int) -> int:
    """The size of the trunk input :func:`concat_features` builds from these parts (featurizers' ``out_dim``)."""
    return (obs_featurizer.out_dim * (2 if use_next_obs else 1) + action_featurizer.out_dim + int(use_done)
            + int(context_dim))


def concat_features(
    model: nn.Module,
    obs: ArrayLike,
    action: ArrayLike,
    next_obs: ArrayLike | None = None,
    done: ArrayLike | None = None,
    context: ArrayLike | None = None,
) -> torch.Tensor:
    """The trunk input ``(B, model.input_dim)`` of a batch: every part checked, moved to the model's device and
    featurized (see :meth:`RewardModel.forward` for the arguments).

    Raises:
        InvalidArgumentError: On a shape that does not fit the model's spaces, or an input the model needs but did
            not get (or got but has no use for).
        TypeError: On a float tensor as a Discrete action.
    """
    device = model.device
    obs = to_device(obs, device)
    action = to_device(action, device)
    # the model's shapes are fixed by its spaces and read from attributes: this runs on every reward query
    discrete, obs_shape = model.discrete_action, model.obs_shape
    if action.dim() == 2 and discrete and action.shape[1] == 1:
        action = action[:, 0]  # SB3 hands Discrete actions over as (B, 1)
    check_shape("obs", obs, obs_shape, None)
    batch = obs.shape[0]
    check_shape("action", action, model.action_shape, batch)
    if discrete and action.is_floating_point():
        raise TypeError(f"action has dtype {action.dtype}: a Discrete action must be an integer tensor (int64)")
    # submodules from the dict: model.obs_featurizer goes through nn.Module.__getattr__ (~0.5 us each)
    modules = model._modules
    obs_featurizer = modules["obs_featurizer"]
    parts = [run_module(obs_featurizer, obs), run_module(modules["action_featurizer"], action)]
    if model.use_next_obs:
        if next_obs is None:
            raise InvalidArgumentError("next_obs is required: this model was built with use_next_obs=True")
        next_obs = to_device(next_obs, device)
        check_shape("next_obs", next_obs, obs_shape, batch)
        parts.append(run_module(obs_featurizer, next_obs))
    dtype = parts[0].dtype
    if model.use_done:
        if done is None:
            raise InvalidArgumentError("done is required: this model was built with use_done=True")
        done = to_device(done, device)
        check_shape("done", done, (), batch)
        parts.append(done.to(dtype)[:, None])
    if model.context_dim:
        ctx = model.context if context is None else to_device(context, device)
        assert ctx is not None  # a model with context_dim > 0 always holds a context
        if ctx.dim() == 1:
            if ctx.shape[0] != model.context_dim:
                check_shape("context", ctx[None], (model.context_dim,), 1)  # raises, naming the shapes
            ctx = ctx.expand(batch, -1)
        else:
            check_shape("context", ctx, (model.context_dim,), batch)
        # a no-op .to() still costs a dispatch (this runs on every query of a latent posterior)
        parts.append(ctx if ctx.dtype == dtype else ctx.to(dtype))
    elif context is not None:
        raise InvalidArgumentError("context was given but this model has context_dim=0")
    return torch.cat(parts, dim=1)


__all__ = [
    "ArrayLike", "check_shape", "concat_features", "element_shape", "from_numpy", "input_dim", "space_str",
    "spaces_mismatch", "to_device",
]
