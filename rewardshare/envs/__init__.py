"""Grid-world goal-finding environments: layouts, the env, task families, the planner, the vector env and the
grid's tabular MDP."""

from rewardshare.envs.grid_env import OBS_MODES, GridGoalEnv, goal_from_task_id, task_id_for
from rewardshare.envs.layouts import LAYOUT_NAMES, Cell, Layout, make_layout, parse_ascii
from rewardshare.envs.mdp import (
    GridMDP,
    GridStates,
    env_from_metadata,
    goal_distances,
    grid_env_of,
    grid_states,
    layout_transitions,
)
from rewardshare.envs.planner import (
    ACTION_DELTAS,
    ACTION_NAMES,
    N_ACTIONS,
    UNREACHABLE,
    connected_components,
    distances_to,
    move,
    optimal_actions,
    transition_table,
)
from rewardshare.envs.registration import ENV_IDS, register_envs
from rewardshare.envs.tasks import SUBSETS, GoalTask, TaskFamily
from rewardshare.envs.vector_env import GridGoalVectorEnv

__all__ = [
    "ACTION_DELTAS", "ACTION_NAMES", "ENV_IDS", "LAYOUT_NAMES", "N_ACTIONS", "OBS_MODES", "SUBSETS", "UNREACHABLE",
    "Cell", "GoalTask", "GridGoalEnv", "GridGoalVectorEnv", "GridMDP", "GridStates", "Layout", "TaskFamily",
    "connected_components", "distances_to", "env_from_metadata", "goal_distances", "goal_from_task_id", "grid_env_of",
    "grid_states", "layout_transitions", "make_layout", "move", "optimal_actions", "parse_ascii", "register_envs",
    "task_id_for", "transition_table",
]
