"""``as_reward_source``: every accepted description of a reward (model, ensemble, posterior, teacher, ``"true"``) turned
into one :class:`~rewardshare.wrappers.RewardSource`, with the uncertainty options applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rewardshare.wrappers.posterior import (
    PosteriorReward,
    check_uncertainty,
    has_latent_posterior,
    is_goal_posterior,
)
from rewardshare.wrappers.sources import (
    REWARD_NAMES,
    ModelReward,
    RewardSource,
    TeacherReward,
    TrueReward,
    is_reward_model,
    is_teacher,
)

if TYPE_CHECKING:
    from rewardshare.feedback import Teacher

POSTERIOR_KINDS = (
    "a list of RewardModels (ensemble), a RewardModel with metadata['latent_posterior'] (latent-task method), "
    "a GoalPosterior or a PosteriorReward"
)


def _describe(reward: Any) -> str:
    if isinstance(reward, str):
        return f"reward={reward!r}"
    if is_reward_model(reward):
        return "a single RewardModel without metadata['latent_posterior']"
    if isinstance(reward, (list, tuple)):
        return f"a list of {len(reward)} model(s) (an ensemble needs at least 2)"
    return f"a {type(reward).__name__}"


def posterior_source(reward: Any, beta: float, uncertainty: str = "pessimistic") -> PosteriorReward:
    """The :class:`PosteriorReward` of ``reward`` with this ``beta``.

    Args:
        reward: A PosteriorReward; a RewardModel carrying ``metadata["latent_posterior"]``; a list of RewardModels or
            an ensemble :class:`ModelReward` (uniform weights); or a GoalPosterior.
        beta: ``0`` (posterior mean) or ``> 0`` (pessimistic).
        uncertainty: The option's name, for the error message.

    Raises:
        ValueError: If ``reward`` has no posterior (a single plain model, a teacher, ``"true"``).
    """
    if isinstance(reward, PosteriorReward):
        return reward if reward.beta == beta else reward.with_beta(beta)
    if isinstance(reward, ModelReward):
        if reward.spread_bonus:
            raise ValueError(f"a ModelReward with spread_bonus={reward.spread_bonus!r} cannot also take uncertainty")
        reward = reward.models if len(reward.models) > 1 else reward.models[0]
    if has_latent_posterior(reward):
        return PosteriorReward.from_latent(reward, beta)
    if isinstance(reward, (list, tuple)) and len(reward) > 1:
        return PosteriorReward.from_models(reward, beta=beta)
    if is_goal_posterior(reward):
        return PosteriorReward.from_goal_posterior(reward, beta)
    raise ValueError(
        f"uncertainty={uncertainty!r} needs a posterior over rewards ({POSTERIOR_KINDS}); got {_describe(reward)}"
    )


def as_reward_source(
    reward: Any,
    *,
    teacher: Teacher | None = None,
    spread_bonus: float = 0.0,
    uncertainty: str | None = None,
    beta: float | None = None,
) -> RewardSource:
    """Turn any accepted reward description into a :class:`RewardSource`.

    Args:
        reward: A :class:`RewardSource`; a RewardModel or a list of them (ensemble); a GoalPosterior (its
            posterior-mean reward); ``"true"``; ``"teacher"`` (needs ``teacher``); or a Teacher.
        teacher: The teacher used for ``reward="teacher"``.
        spread_bonus: Passed to :class:`ModelReward` for ensembles.
        uncertainty: ``None`` (the reward as given: a latent model at its MAP latent, an ensemble's mean),
            ``"mean"`` (the posterior-mean reward) or ``"pessimistic"`` (``mean - beta * std``); the last two need a
            posterior (see :func:`posterior_source`).
        beta: The pessimism coefficient of ``uncertainty="pessimistic"`` (default 1.0).

    Returns:
        The source.

    Raises:
        ValueError: On an unknown name, ``"teacher"`` without a teacher, bad uncertainty options, or an uncertainty
            option for a reward without a posterior.
        TypeError: On an object that is none of the above.
    """
    resolved_beta = check_uncertainty(uncertainty, beta, spread_bonus)
    if resolved_beta is not None:
        return posterior_source(reward, resolved_beta, str(uncertainty))
    if isinstance(reward, RewardSource):
        if spread_bonus:
            raise ValueError("spread_bonus is only allowed with a list of RewardModels, not with a RewardSource")
        return reward
    if isinstance(reward, str):
        if reward == "true":
            return TrueReward()
        if reward == "teacher":
            if teacher is None:
                raise ValueError(
                    "reward='teacher' needs a teacher: pass teacher=Teacher(task) (or a GoalTask to train_agent)"
                )
            return TeacherReward(teacher)
        raise ValueError(f"reward={reward!r} is not allowed: use a RewardModel, a list of them, one of {REWARD_NAMES}")
    if is_reward_model(reward) or (isinstance(reward, (list, tuple)) and reward):
        return ModelReward(reward, spread_bonus=spread_bonus)
    if is_goal_posterior(reward):
        if spread_bonus:
            raise ValueError("spread_bonus is only allowed with a list of RewardModels, not with a GoalPosterior")
        return PosteriorReward.from_goal_posterior(reward)
    if is_teacher(reward):
        return TeacherReward(reward)
    raise TypeError(
        f"reward={type(reward).__name__} is not allowed: use a RewardModel, a list of RewardModels, a GoalPosterior, "
        f"a Teacher, a RewardSource or one of {REWARD_NAMES}"
    )
