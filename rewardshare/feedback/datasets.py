"""Feedback datasets: :class:`Transitions`, :class:`Preferences` and :class:`Demonstrations`.

Each dataset is a set of numpy arrays plus a JSON-ready ``metadata`` dict (provenance). They share the operations
of :class:`~rewardshare.feedback.dataset_base.FeedbackDataset`: ``len()``, ``select``, ``subsample``, ``split``,
``concatenate``, ``by_task``, ``save`` and ``load``; :func:`load_dataset` opens any of them. The file format is
:mod:`rewardshare.feedback.dataset_io`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rewardshare.errors import InvalidArgumentError
from rewardshare.feedback.dataset_base import (
    FORMAT_VERSION,
    DatasetFormatError,
    FeedbackDataset,
    load_dataset,
    read_header,
    step_specs,
)


# -- the three kinds -------------------------------------------------------------------------------------------------
@dataclass(eq=False, repr=False, kw_only=True)
class Transitions(FeedbackDataset):
    """Labelled transitions ``(s, a, s', done) -> label``.

    Attributes:
        obs: float32 ``(N, *obs_shape)``, observations before the move.
        action: int64 ``(N,)``.
        next_obs: float32 ``(N, *obs_shape)``.
        done: bool ``(N,)``: the transition terminated the episode (reached the goal in a non-absorbing env).
        label: float32 ``(N,)``: the teacher's (noisy) reward label.
        task_id: str ``(N,)``.
        agent_pos: int64 ``(N, 2)`` cell before the move; next_agent_pos: int64 ``(N, 2)`` cell after it.
        metadata: Provenance (see the module docstring).
    """

    KIND: ClassVar[str] = "transitions"
    SPECS: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {
        **step_specs("N"),
        "label": ("float32", ("N",)),
        "task_id": ("U", ("N",)),
    }

    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray
    label: np.ndarray
    task_id: np.ndarray
    agent_pos: np.ndarray
    next_agent_pos: np.ndarray


@dataclass(eq=False, repr=False, kw_only=True)
class Preferences(FeedbackDataset):
    """Pairs of trajectory segments of length ``L`` with the teacher's preference.

    Attributes:
        obs_a, next_obs_a: float32 ``(N, L, *obs_shape)``; action_a: int64 ``(N, L)``; done_a: bool ``(N, L)``;
            agent_pos_a, next_agent_pos_a: int64 ``(N, L, 2)``. Same for segment B (``*_b``).
        label: float32 ``(N,)``: probability that A is preferred (1.0 A, 0.0 B, 0.5 tie).
        task_id: str ``(N,)``: both segments of a pair come from this task.
        metadata: Provenance (see the module docstring).
    """

    KIND: ClassVar[str] = "preferences"
    SPECS: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {
        **{f"{name}_{side}": spec for side in ("a", "b") for name, spec in step_specs("N", "L").items()},
        "label": ("float32", ("N",)),
        "task_id": ("U", ("N",)),
    }

    obs_a: np.ndarray
    action_a: np.ndarray
    next_obs_a: np.ndarray
    done_a: np.ndarray
    agent_pos_a: np.ndarray
    next_agent_pos_a: np.ndarray
    obs_b: np.ndarray
    action_b: np.ndarray
    next_obs_b: np.ndarray
    done_b: np.ndarray
    agent_pos_b: np.ndarray
    next_agent_pos_b: np.ndarray
    label: np.ndarray
    task_id: np.ndarray

    @property
    def segment_length(self) -> int:
        """``L``, the number of steps per segment."""
        return int(self.action_a.shape[1]) if self.action_a.ndim == 2 else 0


@dataclass(frozen=True)
class Episode:
    """One demonstration, a view into a :class:`Demonstrations` (arrays of shape ``(T, ...)``)."""

    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray
    agent_pos: np.ndarray
    next_agent_pos: np.ndarray
    task_id: str
    episode_return: float
    demonstrator_noise: float
    success: bool


@dataclass(eq=False, repr=False, kw_only=True)
class Demonstrations(FeedbackDataset):
    """Demonstrated episodes, stored as flat steps plus per-episode arrays.

    The *items* of a ``Demonstrations`` are its episodes: ``len()``, :meth:`select`, :meth:`subsample`,
    :meth:`split` and :meth:`by_task` work on whole episodes (and renumber ``episode`` from 0).

    Attributes:
        obs, next_obs: float32 ``(T, *obs_shape)``; action: int64 ``(T,)``; done: bool ``(T,)`` (the step that
            terminated the episode); agent_pos, next_agent_pos: int64 ``(T, 2)``; task_id: str ``(T,)``.
        episode: int64 ``(T,)``: the episode of each step, ``0..E-1``, steps of an episode contiguous and in order.
        episode_task_id: str ``(E,)``.
        episode_return: float32 ``(E,)``: return under the teacher's noiseless reward.
        demonstrator_noise: float32 ``(E,)``: the demonstrator's epsilon or temperature (see
            ``metadata["noise_kind"]``), for rankings such as T-REX.
        episode_success: bool ``(E,)``: the episode reached the goal (else it was truncated).
        metadata: Provenance (see the module docstring).
    """

    KIND: ClassVar[str] = "demonstrations"
    SPECS: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {
        **step_specs("T"),
        "task_id": ("U", ("T",)),
        "episode": ("int64", ("T",)),
        "episode_task_id": ("U", ("E",)),
        "episode_return": ("float32", ("E",)),
        "demonstrator_noise": ("float32", ("E",)),
        "episode_success": ("bool", ("E",)),
    }
    _EPISODE_FIELDS: ClassVar[tuple[str, ...]] = (
        "episode_task_id", "episode_return", "demonstrator_noise", "episode_success"
    )

    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray
    agent_pos: np.ndarray
    next_agent_pos: np.ndarray
    task_id: np.ndarray
    episode: np.ndarray
    episode_task_id: np.ndarray
    episode_return: np.ndarray
    demonstrator_noise: np.ndarray
    episode_success: np.ndarray

    def __post_init__(self) -> None:
        super().__post_init__()
        ep, n_ep = self.episode, self.episode_task_id.shape[0]
        if ep.size:
            if ep[0] != 0 or np.any(np.diff(ep) < 0) or np.any(np.diff(ep) > 1) or ep[-1] != n_ep - 1:
                raise InvalidArgumentError(
                    f"{self.KIND}: field 'episode' must number the {n_ep} episodes 0..{n_ep - 1} with each "
                    "episode's steps contiguous and in order"
                )
            if np.any(self.task_id != self.episode_task_id[ep]):
                raise InvalidArgumentError(
                    f"{self.KIND}: field 'task_id' disagrees with 'episode_task_id' of its episode"
                )
        elif n_ep:
            raise InvalidArgumentError(
                f"{self.KIND}: {n_ep} episodes but no steps: every episode needs at least one step"
            )

    def __len__(self) -> int:
        return int(self.episode_task_id.shape[0])

    @property
    def n_steps(self) -> int:
        """Total number of demonstrated steps ``T``."""
        return int(self.action.shape[0])

    @property
    def episode_lengths(self) -> np.ndarray:
        """int64 ``(E,)`` steps per episode."""
        return np.bincount(self.episode, minlength=len(self)).astype(np.int64)

    def _item_task_ids(self) -> np.ndarray:
        return self.episode_task_id

    def _take(self, index: np.ndarray, op: dict[str, Any]) -> Demonstrations:
        index = np.asarray(index, dtype=np.int64) % max(len(self), 1)
        starts = np.concatenate([[0], np.cumsum(self.episode_lengths)])
        steps = (
            np.concatenate([np.arange(starts[e], starts[e + 1]) for e in index]) if index.size
            else np.zeros(0, dtype=np.int64)
        )
        lengths = self.episode_lengths[index]
        meta = copy.deepcopy(self.metadata)
        meta["history"] = [*meta.get("history", []), op]
        kwargs = {name: getattr(self, name)[steps] for name in self.SPECS if name not in self._EPISODE_FIELDS}
        kwargs["episode"] = np.repeat(np.arange(index.size, dtype=np.int64), lengths)
        kwargs.update({name: getattr(self, name)[index] for name in self._EPISODE_FIELDS})
        return Demonstrations(metadata=meta, **kwargs)

    @classmethod
    def _join(cls, parts: list[Demonstrations], meta: dict[str, Any]) -> Demonstrations:  # type: ignore[override]
        kwargs = {name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.SPECS}
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        kwargs["episode"] = np.concatenate([p.episode + off for p, off in zip(parts, offsets, strict=True)])
        return cls(metadata=meta, **kwargs)

    def episodes(self) -> Iterator[Episode]:
        """Iterate over the episodes in order."""
        starts = np.concatenate([[0], np.cumsum(self.episode_lengths)])
        for e in range(len(self)):
            sl = slice(int(starts[e]), int(starts[e + 1]))
            yield Episode(
                obs=self.obs[sl], action=self.action[sl], next_obs=self.next_obs[sl], done=self.done[sl],
                agent_pos=self.agent_pos[sl], next_agent_pos=self.next_agent_pos[sl],
                task_id=str(self.episode_task_id[e]), episode_return=float(self.episode_return[e]),
                demonstrator_noise=float(self.demonstrator_noise[e]), success=bool(self.episode_success[e]),
            )


__all__ = [
    "FORMAT_VERSION", "DatasetFormatError", "Demonstrations", "Episode", "FeedbackDataset", "Preferences",
    "Transitions", "load_dataset", "read_header",
]
