"""Training objectives: a loss over a dataset, callable on any reward model.

An :class:`Objective` holds a dataset as tensors (one row per *item*: a labelled transition, a preference pair or a
demonstration step) and computes a scalar loss on a batch of items::

    objective = make_loss("bradley_terry", preferences)
    batch = objective.sample(32, generator)          # or objective.batch(indices), objective.batches(...)
    loss = objective(model, batch)                   # a scalar Tensor, differentiable w.r.t. the model

``model`` is anything called like :meth:`RewardModel.forward` (``model(obs, action, next_obs, done, context=...)``),
so reuse methods (transfer, multi-task, MAML, MAP) train with every kind of feedback through one interface.

Kinds (formulas, with ``R`` the model's reward):

- ``"mse"`` (reward labels ``y``): ``mean_i (R(s_i, a_i, s'_i) - y_i)^2``.
- ``"bradley_terry"`` (segment preferences, ``p_i`` = probability that A is preferred, ties 0.5):
  ``mean_i BCE(sigmoid(sum_t R(A_i,t) - sum_t R(B_i,t)), p_i)``.
- ``"trex"`` (demonstrations ranked by ``demonstrator_noise``): equal-length snippets of two episodes of the same task
  with different noise form a pair, the less noisy one preferred, then Bradley-Terry as above (Brown et al. 2019).
- ``"maxent_irl"`` (demonstrations on a known finite grid): ``-mean_t log pi_R(a_t | s_t)`` with ``pi_R`` the
  soft-optimal policy under ``R`` (see :mod:`rewardshare.rewardmodels.irl`).

Items may carry a per-item ``context`` (``(n, context_dim)``, see :meth:`Objective.with_context`) which is passed to the
model; every batch carries ``task_index`` (``(n,)`` int64 into :attr:`Objective.task_ids`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Batch = dict[str, torch.Tensor]
RewardFn = Callable[..., torch.Tensor]
LOSS_KINDS: tuple[str, ...] = ("mse", "bradley_terry", "trex", "maxent_irl")


def _field(data: Any, name: str, default: Any = None, required: bool = True) -> Any:
    """Read a field from a dataset object or a mapping of arrays."""
    value = data.get(name, default) if isinstance(data, Mapping) else getattr(data, name, default)
    if value is None and required:
        raise ValueError(f"data has no field {name!r} (got {type(data).__name__}); a dataset with {name!r} is needed")
    return value


def _obs_tensor(x: Any) -> torch.Tensor:
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return torch.as_tensor(arr.astype(np.float32, copy=False))
    return torch.as_tensor(arr.astype(np.int64, copy=False) if arr.dtype.kind in "iub" else arr)


def _check_finite(name: str, x: np.ndarray) -> None:
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise ValueError(f"data field {name!r} holds NaN or inf (first at item {bad}): clean the data before training")


def _task_index(task_id: Any, n: int) -> tuple[torch.Tensor, list[str]]:
    if task_id is None:
        return torch.zeros(n, dtype=torch.int64), [""]
    ids = np.asarray(task_id).astype(str)
    names, index = np.unique(ids, return_inverse=True)
    return torch.as_tensor(index.astype(np.int64)), [str(s) for s in names]


def call_reward(
    model: RewardFn,
    obs: torch.Tensor,
    action: torch.Tensor,
    next_obs: torch.Tensor | None,
    done: torch.Tensor | None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """Call ``model`` like :meth:`RewardModel.forward`, passing ``context`` only when there is one."""
    if context is None:
        return model(obs, action, next_obs, done)
    return model(obs, action, next_obs, done, context=context)


class Objective:
    """A loss over ``len(self)`` items, evaluated on batches (dicts of tensors whose first dim indexes items).

    Subclasses define :meth:`loss`. Item tensors live in ``self.items``; tensors shared by all items (e.g. a grid's
    per-cell observations) in ``self.shared`` and are passed along in every batch.

    Attributes:
        kind: The loss kind (one of :data:`LOSS_KINDS`).
        task_ids: Task id of each ``task_index`` value.
    """

    kind: str = ""

    def __init__(self, items: dict[str, torch.Tensor], task_ids: Sequence[str], shared: dict[str, Any] | None = None):
        sizes = {k: v.shape[0] for k, v in items.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"item fields have different lengths: {sizes}")
        self.items = items
        self.task_ids = list(task_ids)
        self.shared: dict[str, Any] = dict(shared or {})

    def __len__(self) -> int:
        return int(next(iter(self.items.values())).shape[0]) if self.items else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, n={len(self)}, tasks={len(self.task_ids)})"

    def _new(self, items: dict[str, torch.Tensor], shared: dict[str, Any] | None = None) -> Objective:
        obj = object.__new__(type(self))
        obj.__dict__.update(self.__dict__)
        obj.items = items
        obj.shared = dict(self.shared if shared is None else shared)
        return obj

    @property
    def device(self) -> torch.device:
        """Where the item tensors live."""
        return next(iter(self.items.values())).device

    def to(self, device: str | torch.device) -> Objective:
        """A copy with every tensor on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if self.items and self.device == device:
            return self

        def move(x: Any) -> Any:
            if torch.is_tensor(x):
                return x.to(device)
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            if isinstance(x, list):
                return [move(v) for v in x]
            return x

        return self._new(move(self.items), move(self.shared))

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> Objective:
        """The objective over the selected items (indices or a boolean mask)."""
        idx = torch.as_tensor(np.asarray(indices.cpu() if torch.is_tensor(indices) else indices))
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        idx = idx.to(torch.int64).to(self.device)
        return self._new({k: v[idx] for k, v in self.items.items()})

    def split(self, fraction: float, seed: int = 0) -> tuple[Objective, Objective | None]:
        """Split items into ``(train, validation)``; validation gets ``round(fraction * n)`` random items.

        Returns ``(self, None)`` when that leaves either side empty (too few items to validate).

        Raises:
            ValueError: If ``fraction`` is outside ``[0, 1)``.
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"val_fraction={fraction!r} is not allowed: use a float in [0, 1)")
        n = len(self)
        n_val = int(round(fraction * n))
        if n_val < 1 or n - n_val < 1:
            return self, None
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    def with_context(self, context: np.ndarray | torch.Tensor | Mapping[str, Any]) -> Objective:
        """A copy whose items carry a context vector, passed to the model as ``context=``.

        Args:
            context: ``(n, context_dim)`` per item, or ``{task_id: (context_dim,)}`` per task.
        """
        if isinstance(context, Mapping):
            missing = [t for t in self.task_ids if t not in context]
            if missing:
                raise ValueError(f"context has no entry for task(s) {missing}; it has {sorted(context)}")
            table = torch.as_tensor(np.stack([np.asarray(context[t], dtype=np.float32) for t in self.task_ids]))
            ctx = table.to(self.device)[self.items["task_index"]]
        else:
            ctx = torch.as_tensor(np.asarray(context, dtype=np.float32)).to(self.device)
            if ctx.dim() != 2 or ctx.shape[0] != len(self):
                raise ValueError(f"context has shape {tuple(ctx.shape)}: expected ({len(self)}, context_dim)")
        items = dict(self.items)
        items["context"] = ctx
        return self._new(items)

    # -- batches -------------------------------------------------------------------------------------------------
    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None) -> Batch:
        """The items at ``indices`` (all items if ``None``) plus the shared tensors."""
        if indices is None:
            out = dict(self.items)
        else:
            idx = torch.as_tensor(indices, device=self.device) if not torch.is_tensor(indices) else indices
            out = {k: v[idx] for k, v in self.items.items()}
        out.update(self.shared)
        return out

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch: every item once, in a random order drawn from ``generator``, in batches of ``batch_size``."""
        n = len(self)
        order = torch.randperm(n, generator=generator).to(self.device)
        for start in range(0, n, max(1, int(batch_size))):
            yield self.batch(order[start : start + batch_size])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``min(batch_size, n)`` distinct random items."""
        n = len(self)
        idx = torch.randperm(n, generator=generator)[: min(int(batch_size), n)]
        return self.batch(idx.to(self.device))

    # -- the loss ------------------------------------------------------------------------------------------------
    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """The mean loss of ``model`` over ``batch`` (a scalar tensor)."""
        raise NotImplementedError

    def __call__(self, model: RewardFn, batch: Batch | None = None) -> torch.Tensor:
        return self.loss(model, self.batch() if batch is None else batch)


class LabelObjective(Objective):
    """``"mse"``: squared error between the model's reward and reward labels.

    Items: ``obs (n, *obs)``, ``action (n,)``, ``next_obs (n, *obs)``, ``done (n,)``, ``label (n,)``.
    """

    kind = "mse"

    @classmethod
    def from_data(cls, data: Any) -> LabelObjective:
        """Build from a ``Transitions`` dataset (or a mapping with the same fields)."""
        label = np.asarray(_field(data, "label"), dtype=np.float32)
        obs = np.asarray(_field(data, "obs"))
        n = len(label)
        if len(obs) != n:
            raise ValueError(f"data has {len(obs)} observations but {n} labels")
        _check_finite("label", label)
        _check_finite("obs", obs)
        action = np.asarray(_field(data, "action"))
        next_obs = _field(data, "next_obs", required=False)
        done = _field(data, "done", required=False)
        task_index, task_ids = _task_index(_field(data, "task_id", required=False), n)
        items = {
            "obs": _obs_tensor(obs),
            "action": _obs_tensor(action),
            "next_obs": _obs_tensor(obs if next_obs is None else next_obs),
            "done": torch.as_tensor(np.zeros(n, bool) if done is None else np.asarray(done, dtype=bool)),
            "label": torch.as_tensor(label),
            "task_index": task_index,
        }
        return cls(items, task_ids)

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        pred = call_reward(model, batch["obs"], batch["action"], batch["next_obs"], batch["done"], batch.get("context"))
        return torch.mean((pred - batch["label"].to(pred.dtype)) ** 2)


class PreferenceObjective(Objective):
    """``"bradley_terry"``: cross-entropy of the Bradley-Terry model on segment return differences.

    Items: per side ``s`` in ``a``, ``b``: ``obs_s (n, L, *obs)``, ``action_s (n, L)``, ``next_obs_s``, ``done_s
    (n, L)``, ``mask_s (n, L)`` (1 for real steps, 0 for padding); ``label (n,)`` = P(A preferred).
    """

    kind = "bradley_terry"

    @classmethod
    def from_data(cls, data: Any) -> PreferenceObjective:
        """Build from a ``Preferences`` dataset (or a mapping with the same fields)."""
        label = np.asarray(_field(data, "label"), dtype=np.float32)
        n = len(label)
        _check_finite("label", label)
        if n and (label.min() < 0 or label.max() > 1):
            raise ValueError(
                f"preference labels must lie in [0, 1] (P(A preferred)); got min {label.min()}, max {label.max()}"
            )
        items: dict[str, torch.Tensor] = {"label": torch.as_tensor(label)}
        for side in ("a", "b"):
            obs = np.asarray(_field(data, f"obs_{side}"))
            if len(obs) != n:
                raise ValueError(f"data has {len(obs)} segments obs_{side} but {n} labels")
            _check_finite(f"obs_{side}", obs)
            next_obs = _field(data, f"next_obs_{side}", required=False)
            done = _field(data, f"done_{side}", required=False)
            length = obs.shape[1] if obs.ndim > 1 else 0
            items[f"obs_{side}"] = _obs_tensor(obs)
            items[f"action_{side}"] = _obs_tensor(np.asarray(_field(data, f"action_{side}")))
            items[f"next_obs_{side}"] = _obs_tensor(obs if next_obs is None else next_obs)
            items[f"done_{side}"] = torch.as_tensor(
                np.zeros((n, length), bool) if done is None else np.asarray(done, dtype=bool)
            )
            mask = _field(data, f"mask_{side}", required=False)
            items[f"mask_{side}"] = torch.as_tensor(
                np.ones((n, length), np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
            )
        items["task_index"], task_ids = _task_index(_field(data, "task_id", required=False), n)
        return cls(items, task_ids)

    @staticmethod
    def segment_returns(model: RewardFn, batch: Batch, side: str) -> torch.Tensor:
        """Masked sum of rewards over each segment of ``side`` (``"a"`` or ``"b"``): shape ``(n,)``."""
        obs = batch[f"obs_{side}"]
        n, length = obs.shape[:2]
        flat = lambda x: x.reshape(n * length, *x.shape[2:])  # noqa: E731
        ctx = batch.get("context")
        if ctx is not None:
            ctx = ctx.repeat_interleave(length, dim=0)
        r = call_reward(
            model, flat(obs), flat(batch[f"action_{side}"]), flat(batch[f"next_obs_{side}"]),
            flat(batch[f"done_{side}"]), ctx,
        ).reshape(n, length)
        return (r * batch[f"mask_{side}"].to(r.dtype)).sum(dim=1)

    def logits(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """``sum R(A) - sum R(B)`` per pair, shape ``(n,)``: the log-odds that A is preferred."""
        return self.segment_returns(model, batch, "a") - self.segment_returns(model, batch, "b")

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        logits = self.logits(model, batch)
        return nn.functional.binary_cross_entropy_with_logits(logits, batch["label"].to(logits.dtype))


def trex_pairs(
    data: Any, n_pairs: int = 1000, segment_length: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """T-REX preference pairs from demonstrations ranked by ``demonstrator_noise`` (less noise is better).

    Each pair takes two episodes of the same task with different noise and an equal-length random snippet of
    each (``min(segment_length, both lengths)`` steps, padded to ``segment_length`` with ``mask`` 0). The less noisy
    episode's snippet is side A with label 1, or side B with label 0 (sides drawn at random).

    Returns:
        A mapping with the fields of a ``Preferences`` dataset plus ``mask_a`` / ``mask_b``.

    Raises:
        ValueError: If no task has episodes of two different noise levels.
    """
    episode = np.asarray(_field(data, "episode"), dtype=np.int64)
    noise = np.asarray(_field(data, "demonstrator_noise"), dtype=np.float64)
    ep_task = _field(data, "episode_task_id", required=False)
    n_ep = len(noise)
    ep_task = np.zeros(n_ep, dtype=str) if ep_task is None else np.asarray(ep_task).astype(str)
    obs = np.asarray(_field(data, "obs"))
    action = np.asarray(_field(data, "action"))
    next_obs = np.asarray(_field(data, "next_obs", default=obs, required=False))
    done = np.asarray(_field(data, "done", default=np.zeros(len(obs), bool), required=False), dtype=bool)
    steps = [np.flatnonzero(episode == e) for e in range(n_ep)]
    candidates = []  # (i, j) episode pairs of one task with noise_i < noise_j
    for i in range(n_ep):
        for j in range(n_ep):
            if ep_task[i] == ep_task[j] and noise[i] < noise[j] and len(steps[i]) and len(steps[j]):
                candidates.append((i, j))
    if not candidates:
        raise ValueError(
            "T-REX needs demonstrations of one task from at least two demonstrator_noise levels; "
            f"got noise levels {sorted(set(noise.tolist()))}"
        )
    rng = np.random.default_rng(seed)
    L = int(segment_length)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "next_obs", "done", "mask")}
    sides: dict[str, dict[str, list[np.ndarray]]] = {"a": {k: [] for k in out}, "b": {k: [] for k in out}}
    labels, tasks = [], []
    for k in rng.integers(len(candidates), size=int(n_pairs)):
        better, worse = candidates[k]
        length = min(L, len(steps[better]), len(steps[worse]))
        snippets = []
        for e in (better, worse):
            start = int(rng.integers(len(steps[e]) - length + 1))
            idx = steps[e][start : start + length]
            pad = np.full(L - length, idx[-1])
            full = np.concatenate([idx, pad])
            mask = np.concatenate([np.ones(length, np.float32), np.zeros(L - length, np.float32)])
            snippets.append({"obs": obs[full], "action": action[full], "next_obs": next_obs[full],
                             "done": done[full], "mask": mask})
        a_first = bool(rng.integers(2))
        first, second = (snippets[0], snippets[1]) if a_first else (snippets[1], snippets[0])
        for key in out:
            sides["a"][key].append(first[key])
            sides["b"][key].append(second[key])
        labels.append(1.0 if a_first else 0.0)
        tasks.append(ep_task[better])
    result = {f"{key}_{side}": np.stack(sides[side][key]) for side in ("a", "b") for key in out}
    result["label"] = np.asarray(labels, dtype=np.float32)
    result["task_id"] = np.asarray(tasks)
    return result


def infer_kind(data: Any, env: Any = None) -> str:
    """The default loss for a dataset: labels -> ``"mse"``, preferences -> ``"bradley_terry"``, demonstrations ->
    ``"maxent_irl"`` when a grid env is given (or recorded in the data) and else ``"trex"``."""
    if isinstance(data, Objective):
        return data.kind
    has = lambda name: _field(data, name, required=False) is not None  # noqa: E731
    if has("obs_a"):
        return "bradley_terry"
    if has("episode") and has("demonstrator_noise"):
        from rewardshare.rewardmodels.irl import env_from_metadata

        if env is not None or env_from_metadata(data) is not None:
            return "maxent_irl"
        return "trex"
    if has("label"):
        return "mse"
    raise ValueError(
        f"cannot tell the feedback kind of {type(data).__name__}: expected Transitions (label), Preferences "
        "(obs_a/obs_b/label) or Demonstrations (episode/demonstrator_noise)"
    )


def make_loss(kind: str, data: Any, **kwargs: Any) -> Objective:
    """Build the :class:`Objective` of ``kind`` over ``data``.

    Args:
        kind: ``"auto"`` (see :func:`infer_kind`) or one of :data:`LOSS_KINDS`.
        data: ``Transitions`` (mse), ``Preferences`` (bradley_terry), ``Demonstrations`` (trex, maxent_irl), a
            mapping of arrays with the same fields, or an :class:`Objective` (returned as is).
        **kwargs: Per kind. ``trex``: ``n_pairs`` (1000), ``segment_length`` (10), ``seed`` (0).
            ``maxent_irl``: ``env`` (a :class:`GridGoalEnv` with the data's observation mode), ``tasks``,
            ``gamma`` (0.9), ``iterations`` (None: until ``gamma**k < 1e-4``); see :class:`irl.MaxEntIRLObjective`.
            ``env`` is accepted and ignored by the other kinds.

    Raises:
        ValueError: On an unknown kind, empty data, data of the wrong kind, or NaN/inf in the data.
    """
    if isinstance(data, Objective):
        if kind not in ("auto", data.kind):
            raise ValueError(f"loss={kind!r} does not match the given objective of kind {data.kind!r}")
        return data
    env = kwargs.pop("env", None)
    if kind == "auto":
        kind = infer_kind(data, env)
    if kind not in LOSS_KINDS:
        raise ValueError(f"loss={kind!r} is not allowed: use 'auto' or one of {LOSS_KINDS}")
    if kind == "mse":
        _reject(kwargs, kind)
        obj: Objective = LabelObjective.from_data(data)
    elif kind == "bradley_terry":
        _reject(kwargs, kind)
        obj = PreferenceObjective.from_data(data)
    elif kind == "trex":
        if not len(np.asarray(_field(data, "episode"))):
            raise ValueError("data is empty: no demonstration steps to build T-REX pairs from")
        pairs = trex_pairs(data, **kwargs)
        obj = PreferenceObjective.from_data(pairs)
        obj.kind = "trex"
    else:
        from rewardshare.rewardmodels.irl import MaxEntIRLObjective

        obj = MaxEntIRLObjective.from_data(data, env=env, **kwargs)
    if len(obj) == 0:
        raise ValueError(f"data is empty: {type(data).__name__} has no items to train the {kind!r} loss on")
    return obj


def _reject(kwargs: dict[str, Any], kind: str) -> None:
    if kwargs:
        raise TypeError(f"loss {kind!r} takes no options; got {sorted(kwargs)}")
