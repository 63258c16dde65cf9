"""Reward sources: the one small interface every wrapper and the agents use to compute a reward.

A :class:`RewardSource` turns a batch of transitions into rewards. Three kinds exist:

- :class:`ModelReward`: a learned :class:`~rewardshare.rewardmodels.RewardModel` (or an ensemble of them: the mean,
  optionally plus a bonus times the members' spread), evaluated on ``(obs, action, next_obs, done)``.
- :class:`TrueReward`: the env's own reward, passed through (so "train on the true reward" takes the same code path).
- :class:`TeacherReward`: the simulated teacher's noiseless reward, computed from the agent's cells
  (``info["agent_pos"]`` before and after the step) with :meth:`Teacher.true_reward` — the oracle a learned reward
  tries to match.

:func:`~rewardshare.wrappers.as_reward_source` (in :mod:`~rewardshare.wrappers.resolve`) accepts any of a model, a
list of models, a posterior, ``"true"``, a teacher or a source, so the agent code has one path for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:  # the wrappers only need the contract (duck typing), not the module, at import time
    from rewardshare.feedback import Teacher
    from rewardshare.rewardmodels import RewardModel

REWARD_NAMES: tuple[str, ...] = ("true", "teacher")


def _space_str(space: spaces.Space | None) -> str:
    return "any" if space is None else repr(space)


def spaces_mismatch_message(
    what: str,
    model_obs: spaces.Space | None,
    model_act: spaces.Space | None,
    env_obs: spaces.Space,
    env_act: spaces.Space,
) -> str:
    """An error message naming both pairs of spaces (the model's and the env's)."""
    return (
        f"{what} does not fit the env: it was built for observation_space={_space_str(model_obs)}, "
        f"action_space={_space_str(model_act)}, but the env has observation_space={env_obs!r}, "
        f"action_space={env_act!r}. Use a reward model trained on this env's spaces "
        "(for GridGoal envs: the same layout size, obs_mode and observe_goal)."
    )


def is_reward_model(obj: Any) -> bool:
    """Whether ``obj`` follows the RewardModel contract (``predict`` plus the two spaces)."""
    return (
        callable(getattr(obj, "predict", None))
        and isinstance(getattr(obj, "observation_space", None), spaces.Space)
        and isinstance(getattr(obj, "action_space", None), spaces.Space)
    )


def is_teacher(obj: Any) -> bool:
    """Whether ``obj`` follows the Teacher contract (a noiseless vectorized ``true_reward``)."""
    return callable(getattr(obj, "true_reward", None)) and not is_reward_model(obj)


class RewardSource(ABC):
    """Computes rewards for a batch of transitions.

    Attributes:
        observation_space: The observation space the source was built for (``None``: any).
        action_space: The action space the source was built for (``None``: any).
        uses_positions: The source reads the agent's cells (``agent_pos`` / ``next_agent_pos``), taken from
            ``info["agent_pos"]`` before and after the step; the env must provide them.
        uses_env_reward: The source returns the env's reward (so it cannot be tabulated).
        uses_next_obs: The reward depends on the state after the step (``next_obs`` / ``next_agent_pos``).
        uses_done: The reward depends on the ``done`` flag.
        name: A short name for tables and provenance.
    """

    observation_space: spaces.Space | None = None
    action_space: spaces.Space | None = None
    uses_positions: bool = False
    uses_env_reward: bool = False
    uses_next_obs: bool = False
    uses_done: bool = False
    name: str = "source"

    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise ``ValueError`` (naming both pairs of spaces) if the source was built for other spaces."""
        obs_ok = self.observation_space is None or self.observation_space == observation_space
        act_ok = self.action_space is None or self.action_space == action_space
        if not (obs_ok and act_ok):
            raise ValueError(
                spaces_mismatch_message(
                    f"reward source {self.name!r}", self.observation_space, self.action_space,
                    observation_space, action_space,
                )
            )

    @abstractmethod
    def __call__(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        next_obs: np.ndarray,
        done: np.ndarray,
        env_reward: np.ndarray,
        agent_pos: np.ndarray | None = None,
        next_agent_pos: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rewards for a batch of ``B`` transitions.

        Args:
            obs: Observations before the step, ``(B, *obs_shape)``.
            action: Actions, ``(B,)`` (discrete) or ``(B, *action_shape)``.
            next_obs: Observations after the step (the terminal observation at an episode's end),
                ``(B, *obs_shape)``.
            done: ``(B,)`` bool, ``True`` where the step *terminated* the episode (truncation is not a property of
                the transition, so it is not passed).
            env_reward: The env's own rewards, ``(B,)``.
            agent_pos: Agent cells before the step, int64 ``(B, 2)``; ``None`` if the env does not report them.
            next_agent_pos: Agent cells after the step, int64 ``(B, 2)``, or ``None``.

        Returns:
            float64 array ``(B,)``.
        """

    def config(self) -> dict[str, Any]:
        """A JSON-ready description for provenance."""
        return {"kind": self.name}


class TrueReward(RewardSource):
    """The env's own reward, unchanged. Lets "train on the true reward" share the learned-reward code path."""

    uses_env_reward = True
    name = "true"

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        return np.asarray(env_reward, dtype=np.float64)


class TeacherReward(RewardSource):
    """The teacher's noiseless reward (``teacher.true_reward(agent_pos, action, next_agent_pos)``), spending no budget.

    Args:
        teacher: A :class:`rewardshare.feedback.Teacher` (anything with a vectorized ``true_reward(pos, action,
            next_pos) -> (N,) float32``).

    Raises:
        TypeError: If ``teacher`` has no ``true_reward`` method.
    """

    uses_positions = True
    uses_next_obs = True  # the reward depends on the cell after the move, so a table needs the next-state axis
    name = "teacher"

    def __init__(self, teacher: Teacher) -> None:
        if not callable(getattr(teacher, "true_reward", None)):
            raise TypeError(
                f"teacher={teacher!r} is not allowed: use a rewardshare.feedback.Teacher (it needs true_reward())"
            )
        self.teacher = teacher

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        if agent_pos is None or next_agent_pos is None:
            raise ValueError(
                "the teacher reward needs the agent's cells before and after each step (info['agent_pos']); "
                "this env does not report them: use a GridGoal env"
            )
        r = self.teacher.true_reward(
            np.asarray(agent_pos, dtype=np.int64).reshape(-1, 2),
            np.asarray(action, dtype=np.int64).reshape(-1),
            np.asarray(next_agent_pos, dtype=np.int64).reshape(-1, 2),
        )
        return np.asarray(r, dtype=np.float64)

    def config(self) -> dict[str, Any]:  # noqa: D102
        cfg = getattr(self.teacher, "config", None)
        return {"kind": self.name, "teacher": cfg() if callable(cfg) else repr(self.teacher)}


class ModelReward(RewardSource):
    """A learned reward: one RewardModel, or an ensemble's mean (optionally plus ``spread_bonus`` x its spread).

    The models are called through their one inference path (``predict``, which wraps ``forward``). ``next_obs`` and
    ``done`` are passed only to models built with ``use_next_obs`` / ``use_done``.

    Args:
        models: A RewardModel or a non-empty sequence of them (an ensemble; every member must have the same spaces).
        spread_bonus: Ensemble only: reward = mean + ``spread_bonus`` * std over members (population std); a positive
            value rewards disagreement (an exploration bonus), a negative one penalises it. ``0`` uses the mean.

    Raises:
        TypeError: If a member does not follow the RewardModel contract.
        ValueError: On an empty ensemble, members with different spaces, or a spread bonus without an ensemble.
    """

    name = "model"

    def __init__(self, models: RewardModel | Sequence[RewardModel], spread_bonus: float = 0.0) -> None:
        members = list(models) if isinstance(models, (list, tuple)) else [models]
        if not members:
            raise ValueError("models=[] is not allowed: give a RewardModel or a non-empty list of them")
        for i, m in enumerate(members):
            if not is_reward_model(m):
                raise TypeError(
                    f"models[{i}]={type(m).__name__} is not allowed: use a rewardshare.rewardmodels.RewardModel "
                    "(predict() plus observation_space and action_space)"
                )
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            if m.observation_space != first.observation_space or m.action_space != first.action_space:
                raise ValueError(
                    f"ensemble member models[{i}] has spaces ({m.observation_space!r}, {m.action_space!r}) but "
                    f"models[0] has ({first.observation_space!r}, {first.action_space!r}): members must share spaces"
                )
        spread_bonus = float(spread_bonus)
        if spread_bonus != 0.0 and len(members) < 2:
            raise ValueError(f"spread_bonus={spread_bonus!r} needs an ensemble: pass a list of at least 2 models")
        self.models = members
        self.spread_bonus = spread_bonus
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        # per member, whether it reads next_obs / done: fixed at construction, so looked up once, not per step
        self._reads = [
            (bool(getattr(m, "use_next_obs", False)), bool(getattr(m, "use_done", False))) for m in members
        ]
        self.uses_next_obs = any(r[0] for r in self._reads)
        self.uses_done = any(r[1] for r in self._reads)
        if len(members) > 1:
            self.name = f"ensemble{len(members)}"

    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:  # noqa: D102
        for m in self.models:
            check = getattr(m, "check_spaces", None)
            if callable(check):
                check(observation_space, action_space)  # the model's own message names both pairs
        super().check_fits(observation_space, action_space)

    def _predict(self, m: Any, reads: tuple[bool, bool], obs, action, next_obs, done) -> np.ndarray:
        """One member's prediction, float32 ``(B,)``; ``reads`` = (uses next_obs, uses done)."""
        nxt = next_obs if reads[0] else None
        dn = done if reads[1] else None
        return np.asarray(m.predict(obs, action, nxt, dn), dtype=np.float32).reshape(-1)

    def member_rewards(self, obs, action, next_obs=None, done=None) -> np.ndarray:
        """Every member's prediction, float32 ``(n_members, B)``."""
        members = zip(self.models, self._reads, strict=True)
        return np.stack([self._predict(m, reads, obs, action, next_obs, done) for m, reads in members])

    def __call__(self, obs, action, next_obs, done, env_reward, agent_pos=None, next_agent_pos=None):  # noqa: D102
        if len(self.models) == 1:  # a single model's output, exactly; no stacking on the per-step path
            return self._predict(self.models[0], self._reads[0], obs, action, next_obs, done).astype(np.float64)
        r64 = self.member_rewards(obs, action, next_obs, done).astype(np.float64)
        out = r64.mean(axis=0)
        if self.spread_bonus:
            out = out + self.spread_bonus * r64.std(axis=0)
        return out

    def config(self) -> dict[str, Any]:  # noqa: D102
        cfgs = []
        for m in self.models:
            cfg = getattr(m, "config", None)
            try:
                cfgs.append(cfg() if callable(cfg) else cfg if isinstance(cfg, dict) else type(m).__name__)
            except Exception:  # provenance is best effort; never fail a run over it
                cfgs.append(type(m).__name__)
        return {"kind": self.name, "n_members": len(self.models), "spread_bonus": self.spread_bonus, "models": cfgs}
