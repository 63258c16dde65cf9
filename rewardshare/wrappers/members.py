"""The members of a posterior reward: ``M`` reward functions evaluated together on a batch, as an ``(M, B)`` array.

Three kinds, chosen by :class:`~rewardshare.wrappers.PosteriorReward`'s constructors:

- :class:`SourceMembers`: any reward sources (an ensemble of RewardModels); one call per member.
- :class:`LatentMembers`: one context-conditioned RewardModel at ``M`` latents; one forward for all members.
- :class:`CellTableMembers`: reward tables per grid cell and action (the goal hypotheses of a GoalPosterior); one
  array lookup for all members.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rewardshare.wrappers.sources import ModelReward, RewardSource, is_reward_model


class PosteriorMembers(ABC):
    """The ``M`` reward functions of a posterior, evaluated together.

    Attributes:
        n_members: ``M``.
        observation_space, action_space, uses_positions, uses_next_obs, uses_done: As for
            :class:`~rewardshare.wrappers.RewardSource` (what the members read).
    """

    n_members: int
    observation_space: spaces.Space | None = None
    action_space: spaces.Space | None = None
    uses_positions: bool = False
    uses_next_obs: bool = False
    uses_done: bool = False

    @abstractmethod
    def rewards(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        next_obs: np.ndarray,
        done: np.ndarray,
        agent_pos: np.ndarray | None,
        next_agent_pos: np.ndarray | None,
    ) -> np.ndarray:
        """Every member's reward for a batch of ``B`` transitions (arguments as for ``RewardSource.__call__``).

        Returns:
            float64 ``(M, B)``.
        """

    @abstractmethod
    def subset(self, keep: np.ndarray) -> PosteriorMembers:
        """The members at indices ``keep`` (int ``(M',)``)."""

    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise ``ValueError`` if the members cannot score this env's transitions (default: any env fits)."""
        return None

    def config(self) -> dict[str, Any]:
        """A JSON-ready description for provenance."""
        return {"n_members": self.n_members}


class SourceMembers(PosteriorMembers):
    """Members that are reward sources (a RewardModel becomes a :class:`~rewardshare.wrappers.ModelReward`); each is
    called once per batch.

    Raises:
        TypeError: On an item that is neither a RewardModel nor a RewardSource.
        ValueError: On an empty list, a source that returns the env's reward, or members built for different spaces.
    """

    def __init__(self, members: Sequence[Any]) -> None:
        if not members:
            raise ValueError("models=[] is not allowed: give at least one RewardModel or RewardSource")
        sources: list[RewardSource] = []
        for i, m in enumerate(members):
            if is_reward_model(m):
                m = ModelReward(m)
            if not isinstance(m, RewardSource):
                raise TypeError(
                    f"models[{i}]={type(m).__name__} is not allowed: use a RewardModel or a RewardSource"
                )
            if m.uses_env_reward:
                raise ValueError(f"models[{i}] ({m.name!r}) returns the env's reward: it cannot be a posterior member")
            sources.append(m)
        first = sources[0]
        for i, s in enumerate(sources[1:], start=1):
            if (s.observation_space, s.action_space) != (first.observation_space, first.action_space):
                raise ValueError(
                    f"models[{i}] has spaces ({s.observation_space!r}, {s.action_space!r}) but models[0] has "
                    f"({first.observation_space!r}, {first.action_space!r}): members must share spaces"
                )
        self.sources = sources
        self.n_members = len(sources)
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.uses_positions = any(s.uses_positions for s in sources)
        self.uses_next_obs = any(s.uses_next_obs for s in sources)
        self.uses_done = any(s.uses_done for s in sources)

    def rewards(self, obs, action, next_obs, done, agent_pos, next_agent_pos):  # noqa: D102
        zeros = np.zeros(len(obs))  # no member reads the env reward (checked in __init__)
        out = np.empty((self.n_members, len(obs)))
        for m, s in enumerate(self.sources):
            out[m] = s(obs, action, next_obs, done, zeros, agent_pos, next_agent_pos)
        return out

    def subset(self, keep):  # noqa: D102
        return SourceMembers([self.sources[i] for i in keep])

    def check_fits(self, observation_space, action_space):  # noqa: D102
        for s in self.sources:
            s.check_fits(observation_space, action_space)

    def config(self):  # noqa: D102
        return {"n_members": self.n_members, "members": [s.config() for s in self.sources]}


class LatentMembers(PosteriorMembers):
    """One context-conditioned RewardModel at ``M`` latents: ``r_m = model(..., context=z_m)``.

    All members run in one ``predict`` over ``M x B`` rows with a per-row context (the model's one inference path),
    so a posterior with many modes costs about one forward, not ``M``.

    Args:
        model: A RewardModel with ``context_dim > 0``.
        z: float ``(M, context_dim)``.

    Raises:
        ValueError: If the model has no context or ``z`` has the wrong shape or non-finite values.
    """

    def __init__(self, model: Any, z: Any) -> None:
        dim = int(getattr(model, "context_dim", 0) or 0)
        if not is_reward_model(model) or dim == 0:
            raise ValueError(
                "a latent posterior needs a RewardModel with context_dim > 0 (the latent-task method's model); "
                f"got {type(model).__name__} with context_dim={dim}"
            )
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != dim or len(z) == 0 or not np.isfinite(z).all():
            raise ValueError(
                f"latent_posterior z of shape {z.shape} is not allowed: use finite values of shape (M, {dim})"
            )
        self.model = model
        self.z = z
        self.n_members = len(z)
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.uses_next_obs = bool(getattr(model, "use_next_obs", False))
        self.uses_done = bool(getattr(model, "use_done", False))
        # per batch size B: row b of member m is input row b (member-major), and its context is z_m; rebuilt only
        # when B changes, so a step costs one gather per input, not M copies
        self._batch = -1
        self._rows = np.zeros(0, dtype=np.int64)
        self._context = np.zeros((0, z.shape[1]), dtype=np.float32)

    def _prepare(self, b: int) -> None:
        if b != self._batch:
            self._rows = np.tile(np.arange(b), self.n_members)
            self._context = np.repeat(self.z, b, axis=0)
            self._batch = b

    def rewards(self, obs, action, next_obs, done, agent_pos, next_agent_pos):  # noqa: D102
        b = len(obs)
        self._prepare(b)
        rows = self._rows
        out = self.model.predict(
            np.asarray(obs)[rows], np.asarray(action)[rows],
            # a missing input the model needs stays None, so the model's own message names it
            None if next_obs is None or not self.uses_next_obs else np.asarray(next_obs)[rows],
            None if done is None or not self.uses_done else np.asarray(done)[rows],
            context=self._context,
        )
        return np.asarray(out, dtype=np.float64).reshape(self.n_members, b)

    def subset(self, keep):  # noqa: D102
        return LatentMembers(self.model, self.z[keep])

    def check_fits(self, observation_space, action_space):  # noqa: D102
        check = getattr(self.model, "check_spaces", None)
        if callable(check):
            check(observation_space, action_space)

    def config(self):  # noqa: D102
        cfg = getattr(self.model, "config", None)
        return {"n_members": self.n_members, "z": self.z.tolist(), "model": cfg() if callable(cfg) else None}


class CellTableMembers(PosteriorMembers):
    """Rewards tabulated per grid cell and action, one table per member (the goal hypotheses of a posterior).

    ``r_m = tables[m, row * width + col, action]`` for the agent's cell before the step (like the teacher, the
    reward judges the action, so the cell after it is not read).

    Args:
        tables: float ``(M, H * W, A)``.
        width: The layout's width ``W``.
        names: Optional label per member (e.g. its goal cell), for provenance.

    Raises:
        ValueError: On a table that is not 3-D, has non-finite values, or a ``width`` that does not divide it.
    """

    uses_positions = True

    def __init__(self, tables: Any, width: int, names: Sequence[Any] | None = None) -> None:
        tables = np.asarray(tables, dtype=np.float64)
        width = int(width)
        if tables.ndim != 3 or len(tables) == 0 or width <= 0 or tables.shape[1] % width:
            raise ValueError(
                f"tables of shape {tables.shape} with width={width} are not allowed: use (M, H * W, A) tables, M >= 1"
            )
        if not np.isfinite(tables).all():
            raise ValueError("tables hold non-finite values: every member reward must be finite")
        self.tables = tables
        self.width = width
        self.names = None if names is None else list(names)
        self.n_members = len(tables)
        self.n_actions = tables.shape[2]

    def rewards(self, obs, action, next_obs, done, agent_pos, next_agent_pos):  # noqa: D102
        if agent_pos is None:
            raise ValueError(
                "a goal posterior reward needs the agent's cell before each step (info['agent_pos']); this env does "
                "not report it: use a GridGoal env"
            )
        pos = np.asarray(agent_pos, dtype=np.int64).reshape(-1, 2)
        flat = pos[:, 0] * self.width + pos[:, 1]
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        n_cells = self.tables.shape[1]
        # one bounds check per batch: a negative index would silently wrap to another cell
        if len(flat) and (flat.min() < 0 or flat.max() >= n_cells or a.min() < 0 or a.max() >= self.n_actions):
            raise ValueError(
                f"agent cells or actions outside the posterior's layout ({n_cells // self.width}x{self.width} "
                f"cells, {self.n_actions} actions): use the env of the posterior's layout"
            )
        return self.tables[:, flat, a]

    def subset(self, keep):  # noqa: D102
        names = None if self.names is None else [self.names[i] for i in keep]
        return CellTableMembers(self.tables[keep], self.width, names)

    def check_fits(self, observation_space, action_space):  # noqa: D102
        if not (isinstance(action_space, spaces.Discrete) and int(action_space.n) == self.n_actions
                and int(action_space.start) == 0):
            raise ValueError(
                f"the posterior's rewards are tabulated for Discrete({self.n_actions}) actions but the env has "
                f"action_space={action_space!r}: use a GridGoal env of the posterior's layout"
            )

    def config(self):  # noqa: D102
        return {"n_members": self.n_members, "members": self.names}
