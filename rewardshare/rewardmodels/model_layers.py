"""How a reward model's network is built: the architecture arguments checked, and the seeded trunk + head.

:class:`~rewardshare.rewardmodels.model.RewardModel` builds its network here, so the construction rules (which
activations exist, what a valid layer list is, how a seed fixes the initial weights) live in one small module::

    trunk: Linear(input_dim, h1) + act, ..., Linear(h_{n-1}, h_n) + act     (empty for a linear model)
    head:  Linear(h_n, 1)

The network runs through :func:`run_layers`, which calls each layer's function directly (``F.linear`` on the layer's
own weight, the activation's functional form): the same arithmetic as calling the modules, without the ~2-3 us of
module dispatch per layer that dominated a small MLP's forward (7 module calls ~ 18 us of a ~26 us forward at
batch 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewardshare.errors import InvalidArgumentError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU,
}

#: What each activation module's ``forward`` computes with its default arguments (the ones :func:`build_mlp` uses),
#: as a function: :func:`run_layers` calls these instead of the modules.
ACTIVATION_FNS: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu,
    nn.Tanh: torch.tanh,
    nn.ELU: F.elu,
    nn.SiLU: F.silu,
    nn.LeakyReLU: F.leaky_relu,
}


def _plain(module: nn.Module) -> bool:
    """Whether calling ``module`` runs only its ``forward`` (no hooks of its own), so the function may replace it."""
    return not (module._forward_hooks or module._forward_pre_hooks)


def run_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` for a trunk built by :func:`build_mlp`, layer by layer through the functions the modules call.

    ``nn.Linear`` runs as ``F.linear(x, weight, bias)`` with the tensors read from the layer's ``_parameters`` at
    call time (so ``torch.func.functional_call``'s and ``higher``'s swapped-in weights are used, as with a module
    call; a plain ``layer.weight`` goes through ``nn.Module.__getattr__``, about 1 us each); an activation of
    :data:`ACTIVATION_FNS` with default arguments runs as its function. Any other layer, one with hooks, or a linear
    layer whose weight is not a plain parameter (a parametrization) is called as a module. The result is
    bit-identical to ``layers(x)``.

    Args:
        layers: The trunk (``nn.Sequential``); modules with global hooks registered are not special-cased.
        x: ``(B, in_features)``.

    Returns:
        ``(B, out_features)``.
    """
    for layer in layers._modules.values():
        kind = type(layer)
        if kind is nn.Linear and not (layer._forward_hooks or layer._forward_pre_hooks):
            params = layer._parameters
            weight = params.get("weight")
            if weight is not None:
                x = F.linear(x, weight, params.get("bias"))
                continue
        fn = ACTIVATION_FNS.get(kind)
        if fn is not None and _plain(layer) and _default_args(layer):
            x = fn(x)
        else:
            x = layer(x)
    return x


def run_module(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``: its ``forward`` directly when it has no hooks of its own (skips ~2 us of module dispatch)."""
    return module.forward(x) if _plain(module) else module(x)


def run_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for a linear layer (the head) through ``F.linear``, as :func:`run_layers` does."""
    if type(layer) is nn.Linear and _plain(layer):
        params = layer._parameters
        weight = params.get("weight")
        if weight is not None:
            return F.linear(x, weight, params.get("bias"))
    return layer(x)


def _default_args(layer: nn.Module) -> bool:
    """Whether an activation module has the default arguments its function assumes (e.g. not ``ReLU(inplace)``)."""
    attrs = layer.__dict__  # plain attributes: no nn.Module.__getattr__
    if attrs.get("inplace", False):
        return False
    kind = type(layer)
    if kind is nn.ELU:
        return attrs.get("alpha") == 1.0
    if kind is nn.LeakyReLU:
        return attrs.get("negative_slope") == 0.01
    return True


@contextmanager
def init_rng(seed: int | None) -> Iterator[None]:
    """Weight initialisation inside the block draws from ``seed``, leaving torch's global CPU RNG state untouched;
    with ``None`` it draws from (and advances) the global RNG, so two unseeded models differ."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def check_architecture_args(
    hidden_sizes: Sequence[int], context_dim: int, activation: str, learn_context: bool = False
) -> tuple[int, ...]:
    """Refuse architecture arguments no network can be built from.

    Returns:
        ``hidden_sizes`` as a tuple of ints.

    Raises:
        InvalidArgumentError: Naming the argument, the value and what is allowed.
    """
    hidden = tuple(hidden_sizes)
    if not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise InvalidArgumentError(f"hidden_sizes={hidden_sizes!r} is not allowed: use a sequence of positive ints")
    if isinstance(context_dim, bool) or not isinstance(context_dim, (int, np.integer)) or context_dim < 0:
        raise InvalidArgumentError(f"context_dim={context_dim!r} is not allowed: use an int >= 0")
    if activation not in ACTIVATIONS:
        raise InvalidArgumentError(f"activation={activation!r} is not allowed: use one of {tuple(ACTIVATIONS)}")
    if learn_context and not context_dim:
        raise InvalidArgumentError("learn_context=True needs context_dim > 0")
    return tuple(int(h) for h in hidden)


def build_mlp(
    input_dim: int, hidden_sizes: Sequence[int], activation: str, seed: int | None
) -> tuple[nn.Sequential, nn.Linear, int]:
    """The trunk and head of a reward model, initialised from ``seed`` (layers in order, the head last, so a seed
    gives the same weights as every earlier rewardshare).

    Args:
        input_dim: Size of the concatenated features.
        hidden_sizes: Widths of the trunk's hidden layers (already checked).
        activation: A key of :data:`ACTIVATIONS`.
        seed: See :func:`init_rng`.

    Returns:
        ``(trunk, head, feature_dim)``: ``feature_dim`` is the trunk's output size (``input_dim`` without hidden
        layers).
    """
    with init_rng(seed):
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        trunk = nn.Sequential(*layers)
        head = nn.Linear(width, 1)
    return trunk, head, width


__all__ = [
    "ACTIVATIONS", "ACTIVATION_FNS", "build_mlp", "check_architecture_args", "init_rng", "run_layers", "run_linear",
    "run_module",
]
