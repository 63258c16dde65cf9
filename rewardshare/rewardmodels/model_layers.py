"""How a reward model's network is built: the architecture arguments checked, and the seeded trunk + head.

:class:`~rewardshare.rewardmodels.model.RewardModel` builds its network here, so the construction rules (which
activations exist, what a valid layer list is, how a seed fixes the initial weights) live in one small module::

    trunk: Linear(input_dim, h1) + act, ..., Linear(h_{n-1}, h_n) + act     (empty for a linear model)
    head:  Linear(h_n, 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from rewardshare.errors import InvalidArgumentError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU,
}


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


__all__ = ["ACTIVATIONS", "build_mlp", "check_architecture_args", "init_rng"]
