"""rewardshare: learn reward models from a teacher's feedback, and reuse and share them across tasks.

Importing the package registers the GridGoal environments with gymnasium (``gym.make("rewardshare/GridGoal-v0")``).
"""

from rewardshare._version import __version__
from rewardshare.envs import GoalTask, GridGoalEnv, GridGoalVectorEnv, TaskFamily, register_envs

register_envs()

__all__ = ["GoalTask", "GridGoalEnv", "GridGoalVectorEnv", "TaskFamily", "__version__", "register_envs"]
