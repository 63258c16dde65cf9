"""The reward model: ``R(s, a[, s'][, done][, context]) -> float``, a small MLP over featurized inputs.

Architecture::

    x = featurize(obs) ++ featurize(action) [++ featurize(next_obs)] [++ done] [++ context]
    R = head(trunk(x))            # trunk: Linear+activation blocks, head: Linear(., 1)

There is one inference path, :meth:`RewardModel.forward`; :meth:`RewardModel.predict` only converts numpy batches
and calls it under ``torch.inference_mode``. The network is built by :mod:`.model_layers`, the inputs are converted
and checked by :mod:`.model_inputs`, and the files are written and read by :mod:`.serialization`.

That path is called once per vector step by the reward wrappers, so it is kept lean (at batch 8 a predict of the
default 64x64 MLP costs ~23 us, down from ~40 us; the torch ops alone are ~15 us): the layers run as their functions
(:func:`.model_layers.run_layers`, bit-identical to calling the modules, hooks honoured), a Discrete one-hot is one
``index_select`` of a stored identity (which also range-checks), and parameters, buffers and submodules are read
from their dicts rather than through ``nn.Module.__getattr__``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardshare.artifacts import MAX_WEIGHTS_BYTES
from rewardshare.errors import CorruptArtifactError, InvalidArgumentError
from rewardshare.rewardmodels.featurizers import (
    Featurizer,
    make_featurizer,
    space_from_dict,
    space_to_dict,
    spaces_equal,
)
from rewardshare.rewardmodels.model_inputs import (
    ArrayLike,
    concat_features,
    element_shape,
    from_numpy,
    input_dim,
    space_str,
    spaces_mismatch,
)
from rewardshare.rewardmodels.model_layers import (
    ACTIVATIONS,
    build_mlp,
    check_architecture_args,
    init_rng,
    run_layers,
    run_linear,
)
from rewardshare.rewardmodels.serialization import (
    check_architecture,
    check_state,
    read_config,
    read_weights,
    write_model,
)

PARAMETER_GROUPS: tuple[str, ...] = ("all", "trunk", "head", "context", "head+context")


class RewardModel(nn.Module):
    """A reward model for any env with ``Discrete`` or ``Box`` observation and action spaces.

    Args:
        observation_space: The env's observation space (``Discrete`` -> one-hot, ``Box`` -> flat floats).
        action_space: The env's action space (``Discrete`` -> one-hot, ``Box`` -> flat floats).
        hidden_sizes: Widths of the trunk's hidden layers; ``()`` makes the model linear in its features.
        use_next_obs: Also read the next observation (``R(s, a, s')``).
        use_done: Also read the episode-end flag.
        context_dim: Size of the conditioning vector appended to the features (0: none). The context is a fixed
            buffer (a goal descriptor) or, with ``learn_context=True``, a learnable ``nn.Parameter`` (a task
            embedding). Both start at zeros; set it with :meth:`set_context`, or pass a per-sample ``context`` to
            :meth:`forward`.
        learn_context: Make the stored context a learnable parameter.
        normalize_obs: Rescale bounded ``Box`` observations to ``[-1, 1]``.
        activation: One of ``"relu"``, ``"tanh"``, ``"elu"``, ``"silu"``, ``"leaky_relu"``.
        seed: Seeds the weight initialization (same seed -> identical weights); ``None`` uses torch's global RNG.
        metadata: Provenance carried along and saved with the model (method, env id, tasks, feedback, metrics...).

    Attributes:
        trunk: ``nn.Sequential`` of ``Linear`` + activation blocks, ``(B, input_dim) -> (B, feature_dim)``.
        head: ``nn.Linear(feature_dim, 1)``.
        input_dim: Size of the concatenated features fed to the trunk.
        feature_dim: Size of the trunk's output (``input_dim`` when there are no hidden layers).
        obs_shape: Shape of one observation in a batch (``()`` for ``Discrete``); ``action_shape`` likewise.
        discrete_action: Whether the action space is ``Discrete`` (actions are int64 indices).

    Raises:
        TypeError: If a space is neither ``Discrete`` nor ``Box``.
        ValueError: On a bad ``hidden_sizes``, ``context_dim`` or ``activation``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        use_next_obs: bool = False,
        use_done: bool = False,
        context_dim: int = 0,
        learn_context: bool = False,
        normalize_obs: bool = True,
        activation: str = "relu",
        seed: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hidden = check_architecture_args(hidden_sizes, context_dim, activation, learn_context)
        self.observation_space = observation_space
        self.action_space = action_space
        self.hidden_sizes = hidden
        self.use_next_obs = bool(use_next_obs)
        self.use_done = bool(use_done)
        self.context_dim = int(context_dim)
        self.normalize_obs = bool(normalize_obs)
        self.activation = activation
        self.metadata: dict[str, Any] = dict(metadata or {})

        self.obs_featurizer: Featurizer = make_featurizer(observation_space, normalize=normalize_obs)
        # Actions are never rescaled: a Discrete action is one-hot, a Box action is used as is.
        self.action_featurizer: Featurizer = make_featurizer(action_space, normalize=False)
        # fixed by the spaces; read on every reward query (features() and predict())
        self.obs_shape: tuple[int, ...] = element_shape(observation_space)
        self.action_shape: tuple[int, ...] = element_shape(action_space)
        self.discrete_action = isinstance(action_space, spaces.Discrete)
        self.input_dim = input_dim(self.obs_featurizer, self.action_featurizer, self.use_next_obs, self.use_done,
                                   self.context_dim)
        self.trunk, self.head, self.feature_dim = build_mlp(self.input_dim, self.hidden_sizes, activation, seed)
        self.context: torch.Tensor | None
        if self.context_dim:
            # from numpy, not torch.zeros: also works while building on the meta device (see load)
            self.set_context(np.zeros(self.context_dim, np.float32), learnable=bool(learn_context))
        else:
            self.context = None

    # -- context and parameter groups ------------------------------------------------------------------------------
    @property
    def learn_context(self) -> bool:
        """Whether the stored context is a learnable parameter."""
        return isinstance(self.context, nn.Parameter)

    @property
    def device(self) -> torch.device:
        """The device holding the model's weights."""
        # read on every reward query: the parameter dicts, not self.head.weight (nn.Module.__getattr__, ~1 us each)
        return self._modules["head"]._parameters["weight"].device

    def set_context(self, value: ArrayLike, learnable: bool | None = None) -> None:
        """Set the stored context vector.

        Args:
            value: Shape ``(context_dim,)``.
            learnable: ``True`` stores it as an ``nn.Parameter`` (trained by :func:`fit`), ``False`` as a fixed
                buffer; ``None`` keeps the current kind.

        Raises:
            ValueError: If the model has no context or ``value`` has the wrong shape.
        """
        if not self.context_dim:
            raise InvalidArgumentError("this model has context_dim=0: build it with context_dim > 0 to use a context")
        if learnable is None:
            learnable = self.learn_context
        device = self.device
        raw = value.detach().cpu() if torch.is_tensor(value) else value
        tensor = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        if tensor.shape != (self.context_dim,):
            raise InvalidArgumentError(f"context has shape {tuple(tensor.shape)}: expected ({self.context_dim},)")
        tensor = tensor.to(device=device, dtype=self.head.weight.dtype)
        if "context" in self._parameters:
            del self._parameters["context"]
        if "context" in self._buffers:
            del self._buffers["context"]
        if learnable:
            self.context = nn.Parameter(tensor.clone())
        else:
            self.register_buffer("context", tensor.clone())

    def parameter_group(self, name: str = "all") -> list[nn.Parameter]:
        """The parameters of one part of the model, for training only that part (e.g. ``fit(..., params=...)``).

        Args:
            name: ``"all"``, ``"trunk"``, ``"head"`` (= all but the trunk's layers, i.e. the last layer),
                ``"context"`` (only a learnable context) or ``"head+context"`` (everything but the trunk).

        Raises:
            ValueError: On an unknown name, or ``"context"`` when the context is not learnable.
        """
        if name not in PARAMETER_GROUPS:
            raise InvalidArgumentError(f"name={name!r} is not allowed: use one of {PARAMETER_GROUPS}")
        ctx = [self.context] if isinstance(self.context, nn.Parameter) else []
        if name == "context" and not ctx:
            raise InvalidArgumentError(
                "parameter group 'context' is empty: the context is not learnable (learn_context=False)"
            )
        groups = {
            "all": list(self.parameters()),
            "trunk": list(self.trunk.parameters()),
            "head": list(self.head.parameters()),
            "context": ctx,
            "head+context": list(self.head.parameters()) + ctx,
        }
        return groups[name]

    def reset_head(self, seed: int | None = None) -> None:
        """Re-initialize the head (a new head on the existing trunk)."""
        with init_rng(seed):
            self.head.reset_parameters()

    # -- inference (input handling: rewardshare.rewardmodels.model_inputs) --------------------------------------------
    def features(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        next_obs: torch.Tensor | None = None,
        done: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The concatenated trunk input ``(B, input_dim)``; arguments as in :meth:`forward`."""
        return concat_features(self, obs, action, next_obs, done, context)

    def embed(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        next_obs: torch.Tensor | None = None,
        done: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The trunk's output ``(B, feature_dim)`` (what the head reads); arguments as in :meth:`forward`."""
        return run_layers(self.trunk, concat_features(self, obs, action, next_obs, done, context))

    def forward(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        next_obs: torch.Tensor | None = None,
        done: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards for a batch of transitions.

        Args:
            obs: ``(B, *obs_shape)`` (``(B,)`` for a ``Discrete`` observation space).
            action: ``(B,)`` int64 for ``Discrete`` actions (``(B, 1)`` accepted), ``(B, *action_shape)`` for ``Box``.
            next_obs: ``(B, *obs_shape)``; required when ``use_next_obs``, ignored otherwise.
            done: ``(B,)`` bool or float; required when ``use_done``, ignored otherwise.
            context: ``(B, context_dim)`` or ``(context_dim,)`` overriding the stored context for this call.

        Returns:
            ``(B,)`` float rewards. Inputs on another device are moved to the model's device.

        Raises:
            ValueError: On a shape that does not fit the spaces (the message names expected and actual shapes),
                an action or Discrete observation outside its space, or a missing required input.
            TypeError: On a float tensor as a Discrete action.
        """
        return self._column(obs, action, next_obs, done, context).squeeze(-1)

    def _column(self, obs, action, next_obs, done, context) -> torch.Tensor:
        """:meth:`forward` before its squeeze: the head's ``(B, 1)`` output (:meth:`predict` flattens it in numpy,
        one torch op fewer per reward query)."""
        # the layers' functions, not the modules: the same arithmetic without module dispatch (see run_layers); the
        # submodules from the dict, as self.trunk goes through nn.Module.__getattr__ (this runs on every query)
        modules = self._modules
        x = run_layers(modules["trunk"], concat_features(self, obs, action, next_obs, done, context))
        return run_linear(modules["head"], x)

    def predict(
        self,
        obs: ArrayLike,
        action: ArrayLike,
        next_obs: ArrayLike | None = None,
        done: ArrayLike | None = None,
        context: ArrayLike | None = None,
    ) -> np.ndarray:
        """:meth:`forward` for numpy batches, under ``torch.inference_mode``.

        Arrays are moved to the model's device. Discrete actions given as whole-number floats are cast to int64.

        Returns:
            float32 array of shape ``(B,)``.
        """
        # forward's (B, 1) column, flattened in numpy below (a subclass's own forward is honoured)
        run = self._column if type(self).forward is RewardModel.forward else self.forward
        # CPU tensors here; features() moves them to the model's device (one move, not two)
        with torch.inference_mode():
            out = run(
                from_numpy(obs), from_numpy(action, integer=self.discrete_action),
                None if next_obs is None else from_numpy(next_obs), None if done is None else from_numpy(done),
                None if context is None else from_numpy(context),
            )
        # an inference tensor never requires grad (no detach() needed); .cpu() only when it is elsewhere
        out = out if out.is_cpu else out.cpu()
        return out.numpy().reshape(-1).astype(np.float32, copy=False)

    # -- spaces, config, copies -----------------------------------------------------------------------------------
    def fits_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> bool:
        """Whether the model reads exactly these spaces."""
        return spaces_equal(observation_space, self.observation_space) and spaces_equal(action_space, self.action_space)

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Refuse spaces this model was not built for.

        Raises:
            ValueError: Naming both the model's spaces and the given ones.
        """
        if not self.fits_spaces(observation_space, action_space):
            raise InvalidArgumentError(spaces_mismatch(self, observation_space, action_space))

    def config(self) -> dict[str, Any]:
        """A JSON-ready description of the architecture; :meth:`from_config` rebuilds the model from it."""
        return {
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "hidden_sizes": list(self.hidden_sizes),
            "use_next_obs": self.use_next_obs,
            "use_done": self.use_done,
            "context_dim": self.context_dim,
            "learn_context": self.learn_context,
            "normalize_obs": self.normalize_obs,
            "activation": self.activation,
            "featurizers": {"obs": self.obs_featurizer.config(), "action": self.action_featurizer.config()},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], metadata: dict[str, Any] | None = None) -> RewardModel:
        """Build an (untrained) model from :meth:`config`'s output.

        Raises:
            ValueError: If the config is malformed.
        """
        try:
            return cls(
                space_from_dict(config["observation_space"]),
                space_from_dict(config["action_space"]),
                hidden_sizes=tuple(config["hidden_sizes"]),
                use_next_obs=bool(config["use_next_obs"]),
                use_done=bool(config["use_done"]),
                context_dim=int(config["context_dim"]),
                learn_context=bool(config.get("learn_context", False)),
                normalize_obs=bool(config.get("normalize_obs", True)),
                activation=str(config.get("activation", "relu")),
                metadata=metadata,
            )
        except KeyError as exc:
            raise InvalidArgumentError(f"model config is missing the key {exc.args[0]!r}") from exc

    def clone(self) -> RewardModel:
        """A deep copy (weights, context kind and value, metadata, device)."""
        return copy.deepcopy(self)

    def num_parameters(self, params: Iterable[nn.Parameter] | None = None) -> int:
        """Number of scalar parameters (of ``params``, default all)."""
        return sum(p.numel() for p in (self.parameters() if params is None else params))

    # -- persistence (file format: rewardshare.rewardmodels.serialization) -------------------------------------------
    def save(self, directory: str | Path, metadata: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
        """Write ``model.safetensors`` + sealed ``config.json`` + a model card ``README.md`` to ``directory``.

        Written into a temporary sibling directory and renamed into place, so a reader never sees half a model.

        Args:
            directory: Missing or empty; a directory holding a saved model only with ``overwrite=True``; a
                directory holding anything else is refused.
            metadata: Provenance merged over :attr:`metadata` (env id and kwargs, tasks, method, feedback, seed,
                metrics; see :func:`rewardshare.rewardmodels.sharing.provenance`).
            overwrite: Replace a model saved there before.

        Returns:
            The directory.

        Raises:
            FileExistsError: If ``directory`` holds a model (without ``overwrite``) or other files.
            NotJSONError: If the metadata is not JSON-serializable (NaN included; an ``InvalidArgumentError`` and a
                ``TypeError``).
        """
        meta = {**self.metadata, **(metadata or {})}
        return write_model(directory, self.config(), self.state_dict(), meta, overwrite=bool(overwrite))

    @classmethod
    def load(
        cls, directory: str | Path, device: str | torch.device | None = None, max_bytes: int = MAX_WEIGHTS_BYTES
    ) -> RewardModel:
        """Load a model written by :meth:`save`, without unpickling anything; every check runs before the model is
        built: format and version, the config's seal, the weights' size and SHA-256, the architecture's sizes,
        and every tensor's shape (against a model built on the ``meta`` device, which allocates nothing).

        Args:
            directory: The saved model's directory (or a directory exported for a model hub).
            device: Where to put the model (default CPU).
            max_bytes: Largest weights file accepted.

        Raises:
            FileNotFoundError: If the directory, its config or its weights are missing.
            IncompatibleArtifactError: Not a reward model, or a format version newer than this package reads.
            CorruptArtifactError: Edited or damaged files (checksums), sizes over the limits, a weights file name
                outside the directory, or weights that do not fit the architecture.
        """
        config = read_config(directory)
        source = Path(directory) / "config.json"
        check_architecture(config["architecture"], source)
        state = read_weights(directory, config, max_bytes=max_bytes)
        try:
            with torch.device("meta"):
                skeleton = cls.from_config(config["architecture"])
        except (ValueError, TypeError) as exc:
            raise CorruptArtifactError(f"{source}: the architecture cannot be rebuilt ({exc})") from exc
        check_state(skeleton.state_dict(), state, Path(directory) / "model.safetensors")
        model = cls.from_config(config["architecture"], metadata=config["provenance"])
        model.load_state_dict(state)
        return model if device is None else model.to(device)

    def extra_repr(self) -> str:
        return (
            f"obs={space_str(self.observation_space)}, action={space_str(self.action_space)}, "
            f"use_next_obs={self.use_next_obs}, use_done={self.use_done}, context_dim={self.context_dim}"
        )


__all__ = ["ACTIVATIONS", "PARAMETER_GROUPS", "ArrayLike", "RewardModel"]
