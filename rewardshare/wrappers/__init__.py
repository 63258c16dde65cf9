"""Swap a learned reward into an environment: single-env and batched wrappers, reward sources, the table fast path.

- :class:`LearnedRewardWrapper`: a ``gymnasium.Wrapper``; ``step`` returns the learned reward, ``info`` keeps the
  true one.
- :class:`LearnedRewardVecEnvWrapper` (Stable-Baselines3 ``VecEnv``) and :class:`LearnedRewardVectorWrapper`
  (gymnasium ``VectorEnv``): one batched reward computation for all sub-envs.
- :class:`RewardOptions`: post-processing (normalise, scale, clip, add the env reward), ensemble bonus and table
  options, shared by every wrapper and by ``train_agent``.
- :func:`as_reward_source`: a RewardModel, a list of them (ensemble), a posterior, ``"true"`` or a Teacher, behind
  one interface.
- :class:`PosteriorReward`: a weighted set of reward functions (latent modes, ensemble members, goal hypotheses)
  giving the posterior-mean or the pessimistic ``mean - beta * std`` reward (``RewardOptions(uncertainty=...)``).
- ``RewardOptions(shaping="potential")`` (:mod:`~rewardshare.wrappers.shaping`): serve only the potential-based part
  ``phi(s') - phi(s)`` of a grid env's tabulated reward, so no cycle of moves pays.
- :mod:`~rewardshare.wrappers.table`: on finite envs the reward is tabulated once and looked up per step.
"""

from rewardshare.wrappers.learned_reward import EPISODE_INFO_KEYS, LearnedRewardWrapper
from rewardshare.wrappers.members import CellTableMembers, LatentMembers, PosteriorMembers, SourceMembers
from rewardshare.wrappers.options import RewardOptions
from rewardshare.wrappers.posterior import DEFAULT_BETA, UNCERTAINTY_CHOICES, PosteriorReward
from rewardshare.wrappers.resolve import as_reward_source
from rewardshare.wrappers.shaping import SHAPING_CHOICES, PotentialReward, fit_potential
from rewardshare.wrappers.sources import REWARD_NAMES, ModelReward, RewardSource, TeacherReward, TrueReward
from rewardshare.wrappers.table import MAX_TABLE_ROWS, FiniteStates, RewardTable, build_table, enumerate_states
from rewardshare.wrappers.transform import RewardTransform
from rewardshare.wrappers.vector import LearnedRewardVecEnvWrapper, LearnedRewardVectorWrapper

__all__ = [
    "DEFAULT_BETA", "EPISODE_INFO_KEYS", "MAX_TABLE_ROWS", "REWARD_NAMES", "SHAPING_CHOICES", "UNCERTAINTY_CHOICES",
    "CellTableMembers", "FiniteStates", "LatentMembers", "LearnedRewardVecEnvWrapper", "LearnedRewardVectorWrapper",
    "LearnedRewardWrapper", "ModelReward", "PosteriorMembers", "PotentialReward", "PosteriorReward", "RewardOptions",
    "RewardSource", "RewardTable", "RewardTransform", "SourceMembers", "TeacherReward", "TrueReward",
    "as_reward_source", "build_table", "enumerate_states", "fit_potential",
]
