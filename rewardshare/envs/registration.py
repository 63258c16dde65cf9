"""Every env ID of rewardshare, registered in one place. Calling :func:`register_envs` twice is harmless."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENTRY_POINT = "rewardshare.envs.grid_env:GridGoalEnv"
VECTOR_ENTRY_POINT = "rewardshare.envs.vector_env:GridGoalVectorEnv"

#: ID -> default kwargs. The env enforces its own ``max_steps``, so no ``TimeLimit`` wrapper is added.
ENV_IDS: dict[str, dict[str, Any]] = {
    "rewardshare/GridGoal-v0": {"layout": "open", "size": 8},
    "rewardshare/GridGoal-FourRooms-v0": {"layout": "four_rooms", "size": 9},
    "rewardshare/GridGoal-Maze-v0": {"layout": "maze", "size": 9, "layout_seed": 0},
    "rewardshare/GridGoal-MultiGoal-v0": {
        "layout": "open", "size": 8, "goal": "random", "start": "random", "observe_goal": True,
    },
}


def register_envs() -> None:
    """Register every ID in :data:`ENV_IDS` with gymnasium (skipping IDs already registered)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
            disable_env_checker=True,  # check_env runs in the tests; the passive checker only slows step()
        )
