"""Train Stable-Baselines3 agents on a (learned) reward and measure, on the true reward, how fast they learn.

- :func:`train_agent`: PPO or DQN on a RewardModel, ``"true"`` or ``"teacher"`` reward; returns a
  :class:`LearningCurve` evaluated on separate eval envs with the true reward.
- :func:`make_agent`, :class:`PPOConfig`, :class:`DQNConfig`: the SB3 agents with documented grid defaults.
- :class:`TrueRewardEvaluator`, :class:`TrueRewardEvalCallback`: the evaluation, usable with your own SB3 loop.
- :class:`InteractiveFeedback` (``train_agent(..., interactive=...)``), :class:`InteractiveFeedbackCallback`,
  :class:`TransitionRecorder`, :func:`relabel_replay_buffer`: feedback asked about the agent's own recent
  transitions during training, the reward model updated and swapped in (PEBBLE-style).
"""

from rewardshare.agents.algos import ALGOS, DQNConfig, PPOConfig, check_algo, make_agent, make_config
from rewardshare.agents.curve import COLUMNS, CurveFormatError, LearningCurve
from rewardshare.agents.evaluation import EvalResult, TrueRewardEvalCallback, TrueRewardEvaluator
from rewardshare.agents.interactive import INTERACTIVE_KINDS, InteractiveFeedback, InteractiveFeedbackCallback
from rewardshare.agents.recent_transitions import TransitionRecorder
from rewardshare.agents.relabel import relabel_replay_buffer
from rewardshare.agents.train import build_training_env, train_agent

__all__ = [
    "ALGOS", "COLUMNS", "INTERACTIVE_KINDS", "CurveFormatError", "DQNConfig", "EvalResult", "InteractiveFeedback",
    "InteractiveFeedbackCallback", "LearningCurve", "PPOConfig", "TransitionRecorder", "TrueRewardEvalCallback",
    "TrueRewardEvaluator", "build_training_env", "check_algo", "make_agent", "make_config", "relabel_replay_buffer",
    "train_agent",
]
