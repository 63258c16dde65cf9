"""CAVIA: meta-learn a network whose new task is found by adapting only a small context vector.

Fast context adaptation (CAVIA, Zintgraf et al. 2019) splits the parameters of MAML (:mod:`.maml_learner`) in two:
a context vector ``phi in R^d`` that is an extra input of the reward network ``R(s, a; theta, phi)``, and the network
weights ``theta``. For every task ``i`` of a meta-batch the inner loop adapts the context alone, from zero::

    phi_i^0 = 0,    phi_i^{k+1} = phi_i^k - alpha grad_phi L(theta, phi_i^k; S_i)

and the outer loop learns the network only, on the query loss of the adapted contexts::

    min_theta  (1 / T) sum_i L(theta, phi_i^K; Q_i)

(the context's start stays at zero: it is not a meta-parameter). The inner loop then searches a ``d``-dimensional
task space instead of every weight, which is cheap, hard to overfit with a few items, and has the shape of the task
family built in: a new task is a point of the space the source tasks were spread over. Both backends
(:mod:`.maml_backends`) compute the same meta-gradient.

At test time the adaptation budget (:func:`~.selection.select_budget`) chooses among the inner loop's own update of
the context (plain gradient steps at ``lr`` times ``alpha``), Adam on the context, and Adam on every weight (the
network released once there is enough feedback to move it); an adapted model's context becomes a fixed input, so it
is a plain :class:`~rewardshare.rewardmodels.model.RewardModel`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from torch import nn

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.maml import ADAM, CONFIG_FIELDS, MAMLMethod
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig
from rewardshare.rewardmodels.reuse.registry import register_method

#: The parameter the inner loop adapts.
CONTEXT = "context"


class CAVIA(MAML):
    """The CAVIA meta-learner: inner loop on the model's context, outer loop on everything else.

    Args:
        model: A :class:`RewardModel` with a learnable context (``context_dim > 0, learn_context=True``); its
            context is the inner loop's start (zeros) and is never meta-trained.
        config: MAML settings; ``inner_params`` must be ``None`` or ``("context",)`` (it is set to the latter).

    Raises:
        ValueError: If the model has no learnable context, or ``config.inner_params`` names other parameters.
    """

    def __init__(self, model: RewardModel, config: MAMLConfig | None = None) -> None:
        if not getattr(model, "learn_context", False):
            raise ValueError("CAVIA needs a model with a learnable context: build it with context_dim > 0, "
                             "learn_context=True")
        config = config or MAMLConfig()
        if config.inner_params not in (None, (CONTEXT,)):
            raise ValueError(f"inner_params={config.inner_params!r} is not allowed: CAVIA's inner loop adapts "
                             "('context',) only")
        super().__init__(model, dataclasses.replace(config, inner_params=(CONTEXT,)))

    def meta_parameters(self) -> Iterator[nn.Parameter]:
        """The network's weights (and, under Meta-SGD, the context's inner rates); not the context itself."""
        context = self.model.context
        yield from (p for p in self.model.parameters() if p.requires_grad and p is not context)
        if self.inner_lrs is not None:
            yield from self.inner_lrs.parameters()


class CAVIAMethod(MAMLMethod):
    """CAVIA as a reuse method (see the module docstring).

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        config: MAML settings (``inner_params`` is fixed to the context).
        context_dim: ``d``, the size of the context.
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel` (``hidden_sizes``, ...).

    Raises:
        ValueError: If ``context_dim < 1``.
    """

    name = "cavia"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: MAMLConfig | None = None,
        *,
        context_dim: int = 8,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        if isinstance(context_dim, bool) or not isinstance(context_dim, (int, np.integer)) or context_dim < 1:
            raise ValueError(f"context_dim={context_dim!r} is not allowed: use an int >= 1")
        config = dataclasses.replace(config or MAMLConfig(), inner_params=(CONTEXT,))
        super().__init__(observation_space, action_space, config, seed=seed, **model_kwargs)
        self.name = "cavia"
        self.context_dim = int(context_dim)

    def pretrain(
        self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int | None = None
    ) -> CAVIAMethod:
        """Meta-train the network on the source tasks (the context adapts in the inner loop only)."""
        seed = self.seed if seed is None else int(seed)
        model = RewardModel(
            self.observation_space, self.action_space, seed=seed, context_dim=self.context_dim, learn_context=True,
            **self.model_kwargs,
        )
        self.maml = CAVIA(model, self.maml_config)
        self.history = self.maml.meta_train(source, seed=seed)
        return self

    def _finish(self, model: RewardModel) -> None:
        # the new task's adapted context becomes a fixed input of the returned model
        if model.learn_context:
            model.set_context(model.context.detach(), learnable=False)  # type: ignore[union-attr]

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        """The inner loop's update of the context, Adam on the context, and Adam on every weight."""
        return [(CONTEXT,), (ADAM, CONTEXT), (ADAM, "all")]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "context_dim": self.context_dim}


@register_method("cavia")
def cavia(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    *,
    context_dim: int = 8,
    seed: int = 0,
    **settings: Any,
) -> CAVIAMethod:
    """CAVIA: the inner loop adapts a ``context_dim``-dimensional context, the outer loop the network.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        context_dim: The size of the context.
        seed: Seeds initialisation and sampling.
        **settings: Fields of :class:`~.maml_learner.MAMLConfig` (``iterations``, ``inner_steps``, ``inner_lr``,
            ``support_size``, ...; not ``inner_params``); the rest is passed to :class:`RewardModel`.

    Raises:
        TypeError: If ``inner_params`` is given.
    """
    if "inner_params" in settings:
        raise TypeError("inner_params is not a setting of cavia: its inner loop adapts the context")
    config = {k: settings.pop(k) for k in CONFIG_FIELDS if k in settings}
    return CAVIAMethod(
        observation_space, action_space, MAMLConfig(inner_params=(CONTEXT,), **config), context_dim=context_dim,
        seed=seed, **settings,
    )
