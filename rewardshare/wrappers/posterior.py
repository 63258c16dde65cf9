"""Posterior rewards: a weighted set of reward functions, reduced to its mean or a pessimistic ``mean - beta * std``.

Reuse is inference (see DESIGN): after a few labels a new task's reward is a *posterior* over reward functions, not
one function. An agent trained on one point estimate of a wrong reward first finds the goal and then learns to
exploit the error. Rewarding the posterior mean, or penalising the posterior's spread where the members disagree, is
meant to take that incentive away (whether it does is measured, not assumed: the learning-curve benchmark's collapse
rate with and without these options).

A :class:`PosteriorReward` holds ``M`` members with weights ``w`` (summing to 1) and returns, per transition,

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
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rewardshare.wrappers.members import CellTableMembers, LatentMembers, PosteriorMembers, SourceMembers
from rewardshare.wrappers.sources import RewardSource, is_reward_model

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


class PosteriorReward(RewardSource):
    """A weighted set of reward functions; the reward is ``mean - beta * std`` under the weights.

    Args:
        members: The reward functions (:class:`~rewardshare.wrappers.members.PosteriorMembers`); usually built by
            :meth:`from_latent`, :meth:`from_models` or :meth:`from_goal_posterior`.
        weights: ``(M,)`` finite values ``>= 0`` with a positive sum (normalised here). Members of weight exactly 0
            change neither mean nor std, so they are dropped (not evaluated).
        beta: ``0`` for the posterior mean; ``> 0`` for the pessimistic ``mean - beta * std``.
        kind: A short name for provenance (``"latent_posterior"``, ``"ensemble_posterior"``, ...).

    Attributes:
        weights: float64 ``(M,)`` normalised weights of the kept members.
        beta: The pessimism coefficient.

    Raises:
        TypeError: If ``members`` is not a :class:`~rewardshare.wrappers.members.PosteriorMembers`.
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
        d = r - mean
        d *= d  # in place: this runs on every step of the forward path
        d *= self._w_col
        return np.sqrt(d.sum(axis=0))

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        r = self.members.rewards(obs, action, next_obs, done, agent_pos, next_agent_pos)
        mean = self._mean(r)
        if self.beta == 0.0 or len(r) == 1:
            return mean
        out = self._std(r, mean)
        out *= -self.beta
        out += mean
        return out

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
