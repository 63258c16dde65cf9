"""Posterior rewards: a weighted set of reward functions, reduced to its mean or a pessimistic ``mean - beta * std``.

Reuse is inference (see DESIGN): after a few labels a new task's reward is a *posterior* over reward functions, not
one function. An agent trained on one point estimate of a wrong reward first finds the goal and then learns to
exploit the error; rewarding the posterior mean, or penalising the posterior's spread, removes much of that
incentive. A :class:`PosteriorReward` holds ``M`` members with weights ``w`` (summing to 1) and returns, per
transition,

- ``mean = sum_m w_m r_m`` (``beta = 0``: the posterior-mean reward, Bayes-optimal under squared error), or
- ``mean - beta * std`` with ``std = sqrt(sum_m w_m (r_m - mean)^2)`` (``beta > 0``: pessimistic).

Members come from:

- :meth:`PosteriorReward.from_latent`: a latent-task RewardModel's ``metadata["latent_posterior"]`` (modes ``z`` of
  the posterior over the task latent and their probabilities); every member is the same network at another context,
  so all members run in **one** forward over ``M x B`` rows (one call however many modes).
- :meth:`PosteriorReward.from_models`: reward models (an ensemble) or reward sources with weights (default uniform;
  uniform weights give exactly the population std an ensemble's ``spread_bonus`` uses).
- :meth:`PosteriorReward.from_goal_posterior`: the exact posterior over goal cells
  (:class:`~rewardshare.rewardmodels.reuse.bayes.GoalPosterior`): one reward table per goal hypothesis, looked up
  by the agent's cell.

A ``PosteriorReward`` is a :class:`~rewardshare.wrappers.RewardSource`, so on finite envs the wrappers tabulate
it (:mod:`rewardshare.wrappers.table`): mean and std are computed once per table entry and a step costs one lookup,
as for any reward. The weights are copied when the source is built; a posterior updated later needs a new source.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rewardshare.wrappers.sources import ModelReward, RewardSource, is_reward_model

#: ``beta`` of ``RewardOptions(uncertainty="pessimistic")`` when none is given: one posterior std below the mean.
DEFAULT_BETA = 1.0


def check_beta(beta: Any, name: str = "beta") -> float:
    """``beta`` as a float, checked to be finite and ``>= 0``.

    Raises:
        ValueError: Naming ``name``, the value and what is allowed.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) or not (
        math.isfinite(beta) and beta >= 0
    ):
        raise ValueError(
            f"{name}={beta!r} is not allowed: use a finite float >= 0 (the reward is mean - beta * std; "
            "for an optimism bonus use RewardOptions(spread_bonus=...))"
        )
    return float(beta)


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
        self._context: np.ndarray | None = None  # z repeated for the last batch size: rebuilt only when B changes

    def _repeat(self, x: np.ndarray) -> np.ndarray:
        # member-major rows (member m's batch is rows m*B .. (m+1)*B - 1), matching np.repeat(z, B) below
        return np.concatenate([x] * self.n_members) if self.n_members > 1 else x

    def rewards(self, obs, action, next_obs, done, agent_pos, next_agent_pos):  # noqa: D102
        b = len(obs)
        ctx = self._context
        if ctx is None or len(ctx) != b * self.n_members:
            ctx = self._context = np.repeat(self.z, b, axis=0)
        out = self.model.predict(
            self._repeat(np.asarray(obs)), self._repeat(np.asarray(action)),
            # a missing input the model needs stays None, so the model's own message names it
            None if next_obs is None or not self.uses_next_obs else self._repeat(np.asarray(next_obs)),
            None if done is None or not self.uses_done else self._repeat(np.asarray(done)),
            context=ctx,
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


class PosteriorReward(RewardSource):
    """A weighted set of reward functions; the reward is ``mean - beta * std`` under the weights.

    Args:
        members: The reward functions (:class:`PosteriorMembers`); usually built by :meth:`from_latent`,
            :meth:`from_models` or :meth:`from_goal_posterior`.
        weights: ``(M,)`` finite values ``>= 0`` with a positive sum (normalised here). Members of weight exactly 0
            change neither mean nor std, so they are dropped (not evaluated).
        beta: ``0`` for the posterior mean; ``> 0`` for the pessimistic ``mean - beta * std``.
        kind: A short name for provenance (``"latent_posterior"``, ``"ensemble_posterior"``, ...).

    Attributes:
        weights: float64 ``(M,)`` normalised weights of the kept members.
        beta: The pessimism coefficient.

    Raises:
        ValueError: On bad weights (the message names their shape and what is allowed) or a negative / non-finite
            ``beta``.
    """

    def __init__(self, members: PosteriorMembers, weights: Any, beta: float = 0.0, kind: str = "posterior") -> None:
        if not isinstance(members, PosteriorMembers):
            raise TypeError(
                f"members={type(members).__name__} is not allowed: use PosteriorReward.from_latent / from_models / "
                "from_goal_posterior"
            )
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (members.n_members,) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError(
                f"weights of shape {w.shape} are not allowed: use {members.n_members} finite values >= 0 with a "
                "positive sum (one per member)"
            )
        keep = np.flatnonzero(w > 0)
        if len(keep) < members.n_members:
            members = members.subset(keep)
        self.members = members
        self.weights = w[keep] / w[keep].sum()
        self.weights.flags.writeable = False
        self._w_col = self.weights[:, None]
        self.beta = check_beta(beta)
        self.kind = str(kind)
        self.name = f"{self.kind}{'' if self.beta == 0 else f'-pessimistic{self.beta:g}'}"
        self.observation_space = members.observation_space
        self.action_space = members.action_space
        self.uses_positions = members.uses_positions
        self.uses_next_obs = members.uses_next_obs
        self.uses_done = members.uses_done

    # -- constructors --------------------------------------------------------------------------------------------
    @classmethod
    def from_latent(cls, model: Any, beta: float = 0.0) -> PosteriorReward:
        """The posterior over a latent-task model's task latent: the model at each mode ``z_m`` with its probability.

        Args:
            model: A RewardModel adapted by the latent-task method, carrying ``metadata["latent_posterior"] =
                {"z": [[...], ...], "weights": [...]}``.
            beta: As for the class.

        Raises:
            ValueError: If the model carries no latent posterior, or its ``z`` / ``weights`` have bad shapes.
        """
        meta = getattr(model, "metadata", None)
        post = meta.get("latent_posterior") if isinstance(meta, dict) else None
        if not isinstance(post, dict) or "z" not in post or "weights" not in post:
            raise ValueError(
                "model.metadata has no 'latent_posterior' ({'z': [...], 'weights': [...]}): use a model adapted by "
                "the latent-task method (LatentTask), or PosteriorReward.from_models for an ensemble"
            )
        return cls(LatentMembers(model, post["z"]), post["weights"], beta, kind="latent_posterior")

    @classmethod
    def from_models(cls, models: Sequence[Any], weights: Any | None = None, beta: float = 0.0) -> PosteriorReward:
        """A weighted ensemble: RewardModels (or RewardSources), weights default uniform.

        Raises:
            TypeError: On an item that is neither a RewardModel nor a RewardSource.
            ValueError: On an empty list, members with different spaces, or bad weights.
        """
        if not isinstance(models, (list, tuple)):
            raise TypeError(f"models={type(models).__name__} is not allowed: use a list of RewardModels")
        members = SourceMembers(models)
        w = np.full(members.n_members, 1.0) if weights is None else weights
        return cls(members, w, beta, kind="ensemble_posterior")

    @classmethod
    def from_goal_posterior(cls, posterior: Any, beta: float = 0.0) -> PosteriorReward:
        """The exact posterior over goal cells: one member per candidate goal (its teacher reward table).

        Args:
            posterior: A :class:`~rewardshare.rewardmodels.reuse.bayes.GoalPosterior` (its current weights are
                copied).
            beta: As for the class.

        Raises:
            TypeError: If ``posterior`` has no ``rewards`` / ``weights`` / ``candidates`` / ``layout``.
        """
        if not is_goal_posterior(posterior):
            raise TypeError(
                f"posterior={type(posterior).__name__} is not allowed: use a rewardshare.rewardmodels.reuse.bayes."
                "GoalPosterior"
            )
        names = [[int(r), int(c)] for r, c in np.asarray(posterior.candidates)]
        members = CellTableMembers(posterior.rewards, posterior.layout.width, names)
        return cls(members, np.asarray(posterior.weights, dtype=np.float64), beta, kind="goal_posterior")

    def with_beta(self, beta: float) -> PosteriorReward:
        """The same members and weights with another ``beta`` (the members are shared, not copied)."""
        return PosteriorReward(self.members, self.weights, beta, kind=self.kind)

    # -- evaluation ----------------------------------------------------------------------------------------------
    @property
    def n_members(self) -> int:
        """Number of members with a positive weight."""
        return self.members.n_members

    def member_rewards(self, obs, action, next_obs=None, done=None, agent_pos=None, next_agent_pos=None) -> np.ndarray:
        """Every member's reward, float64 ``(M, B)`` (arguments as for :meth:`__call__`)."""
        return self.members.rewards(obs, action, next_obs, done, agent_pos, next_agent_pos)

    def moments(self, obs, action, next_obs=None, done=None, agent_pos=None, next_agent_pos=None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the reward of each transition: two float64 ``(B,)`` arrays."""
        r = self.member_rewards(obs, action, next_obs, done, agent_pos, next_agent_pos)
        mean = self._mean(r)
        return mean, self._std(r, mean)

    def _mean(self, r: np.ndarray) -> np.ndarray:
        # an axis-0 sum adds the rows elementwise in member order: a transition's value does not depend on which
        # other rows share its batch (so the table and the per-step path agree bit for bit)
        return r[0].copy() if len(r) == 1 else (self._w_col * r).sum(axis=0)

    def _std(self, r: np.ndarray, mean: np.ndarray) -> np.ndarray:
        if len(r) == 1:
            return np.zeros_like(mean)
        return np.sqrt((self._w_col * (r - mean) ** 2).sum(axis=0))

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        r = self.members.rewards(obs, action, next_obs, done, agent_pos, next_agent_pos)
        mean = self._mean(r)
        if self.beta == 0.0 or len(r) == 1:
            return mean
        return mean - self.beta * self._std(r, mean)

    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:  # noqa: D102
        self.members.check_fits(observation_space, action_space)
        super().check_fits(observation_space, action_space)

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"kind": self.kind, "beta": self.beta, "n_members": self.n_members,
                "weights": self.weights.tolist(), "members": self.members.config()}


def is_goal_posterior(obj: Any) -> bool:
    """Whether ``obj`` follows the GoalPosterior contract (reward tables, weights, candidate cells and a layout)."""
    return all(hasattr(obj, a) for a in ("rewards", "weights", "candidates", "layout")) and not isinstance(
        obj, RewardSource
    )


def has_latent_posterior(obj: Any) -> bool:
    """Whether ``obj`` is a RewardModel carrying ``metadata["latent_posterior"]``."""
    meta = getattr(obj, "metadata", None)
    return is_reward_model(obj) and isinstance(meta, dict) and "latent_posterior" in meta


#: Allowed values of ``RewardOptions.uncertainty`` (``None``: the reward source as given).
UNCERTAINTY_CHOICES: tuple[str, ...] = ("mean", "pessimistic")


def check_uncertainty(uncertainty: Any, beta: Any, spread_bonus: float = 0.0) -> float | None:
    """Validate the uncertainty options; return the ``beta`` they mean (``None`` when ``uncertainty`` is ``None``).

    Args:
        uncertainty: ``None``, ``"mean"`` or ``"pessimistic"``.
        beta: ``None`` or a finite float ``>= 0``; only read by ``"pessimistic"`` (default :data:`DEFAULT_BETA`).
        spread_bonus: The ensemble spread bonus, which an uncertainty option replaces (both at once is refused).

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    if uncertainty is not None and not (isinstance(uncertainty, str) and uncertainty in UNCERTAINTY_CHOICES):
        raise ValueError(
            f"uncertainty={uncertainty!r} is not allowed: use None, 'mean' (posterior-mean reward) or "
            "'pessimistic' (mean - beta * std)"
        )
    if beta is not None:
        beta = check_beta(beta)
        if uncertainty != "pessimistic":
            raise ValueError(
                f"beta={beta!r} is only read with uncertainty='pessimistic' (uncertainty={uncertainty!r}): "
                "drop beta or set uncertainty='pessimistic'"
            )
    if uncertainty is not None and spread_bonus:
        raise ValueError(
            f"spread_bonus={spread_bonus!r} and uncertainty={uncertainty!r} are both set: use one (spread_bonus is "
            "mean + bonus * std of an ensemble, uncertainty='pessimistic' is mean - beta * std of any posterior)"
        )
    if uncertainty is None:
        return None
    if uncertainty == "mean":
        return 0.0
    return DEFAULT_BETA if beta is None else beta
