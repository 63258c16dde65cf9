"""The learning-curve profiles of issue 12's remaining agent targets: actively chosen labels and demonstrations.

Built from the ``agents_*`` profiles' shared settings (:func:`issue12_profiles` is called by
:func:`rewardshare.experiments.config._profiles`, which re-exports them in ``PROFILES``), so pre-training, budget
selection and the agents' settings are theirs; only what the new question needs differs. Held-out goals, seeds,
budgets and thresholds of every profile here were fixed before any of its results existed; the sizes come from the
measured wall times of ``agents_dqn_open`` (108 runs, 10 min) and ``agents_four_rooms`` (216 runs, 19 min) on one
worker. No strategy, budget or variant was chosen on held-out goals: ``information_gain`` is the issue's strategy.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def issue12_profiles(agents_dqn_open: Any, agents_four_rooms: Any) -> dict[str, Any]:
    """The profiles ``agents_active``, ``agents_active_four_rooms``, ``agents_demos`` and
    ``agents_demos_four_rooms``.

    - ``agents_active``: open 8x8, ``agents_dqn_open``'s (and ``collapse``'s) 6 held-out goals x 2 seeds; latent on
      k = 4 and 8 labels chosen by information gain under its own posterior (validation draws too), scratch on k
      uniform labels (the same budget), the teacher's reward; plain and pessimistic reward; PPO and DQN, 20k
      steps; 216 runs.
    - ``agents_active_four_rooms``: the same on four rooms 9x9 (``agents_four_rooms``'s goals and 24k steps) at k =
      8, with the potential-shaped plain and pessimistic rewards as well (collapse is the failure mode there); 216
      runs.
    - ``agents_demos`` / ``agents_demos_four_rooms``: k = 1 and 2 demonstrations (whole episodes of the teacher
      from random starts, MaxEnt IRL) per held-out goal, pre-trained on 512 reward labels per source goal;
      latent (plain, pessimistic), scratch, teacher; PPO only (108 runs each: a time cut, fixed before any
      result).

    Args:
        agents_dqn_open: The ``agents_dqn_open`` profile (open 8x8).
        agents_four_rooms: The ``agents_four_rooms`` profile (four rooms 9x9).

    Returns:
        ``{name: BenchConfig}``.
    """
    both = ("ppo", "dqn")
    active = {"query": "information_gain"}
    # pre-trained on the agents profiles' 512 reward labels per source goal (as the few-shot benchmark pre-trains
    # before its demonstrations), adapted to 1-2 demonstrations: MaxEnt IRL pre-training on the source goals loops
    # over them (no vmap), minutes per thousand steps
    demos = {"feedback": "demonstrations", "source_feedback": "labels", "ks": (1, 2), "rl_ks": (1, 2),
             "validation_pool": 32}
    return {
        "agents_active": dataclasses.replace(
            agents_dqn_open, profile="agents_active", ks=(4, 8), rl_ks=(4, 8), algos=both, **active),
        "agents_active_four_rooms": dataclasses.replace(
            agents_four_rooms, profile="agents_active_four_rooms", ks=(8,), rl_ks=(8,), algos=both,
            reward_uncertainty=("none", "pessimistic", "potential", "pessimistic+potential"), **active),
        # PPO only: a time cut (three engineers share 2 cores; DQN runs cost 3-4x PPO's), fixed before any result
        "agents_demos": dataclasses.replace(agents_dqn_open, profile="agents_demos", algos=("ppo",), **demos),
        "agents_demos_four_rooms": dataclasses.replace(
            agents_four_rooms, profile="agents_demos_four_rooms", algos=("ppo",), **demos),
    }


def done_profiles(agents_four_rooms: Any, collapse: Any, agents_active_four_rooms: Any,
                  agents_demos_four_rooms: Any, agents_demos: Any) -> dict[str, Any]:
    """Profiles whose reward models read the env's episode-end flag (``use_done``), each served plain and
    potential-shaped (``reward_uncertainty=("none", "potential")``); every other field is the base profile's:

    - ``agents_four_rooms_done``: ``agents_four_rooms`` (four rooms 9x9, 6 held-out goals x 2 seeds, k = 16 and 32
      uniform labels, scratch / latent / teacher, PPO and DQN, 24k steps); 216 runs.
    - ``collapse_done``: ``collapse`` (open 8x8, 6 held-out goals x 4 seeds, k = 8 and 16, PPO, 40k steps); 216 runs:
      does it stop the collapse?
    - ``agents_active_four_rooms_done``: ``agents_active_four_rooms`` (k = 8 labels chosen by information gain); 120
      runs.
    - ``agents_demos_four_rooms_done``: ``agents_demos_four_rooms`` (1-2 demonstrations, PPO); 108 runs.
    - ``agents_maze_done``: ``agents_four_rooms_done`` on the 9x9 maze (layout seed 0); 216 runs.
    - ``agents_demos_done``: ``agents_demos`` (open 8x8, 1-2 demonstrations) with PPO and DQN; 216 runs.

    Why (measured on *validation* goals before any of their runs, ``benchmarks/done_planning.py``: latent
    pre-training seed 0, 6 goals x 2 draws x k = 8 / 16 / 32): value iteration on the MAP reward table reaches the
    true goal from 0-8% of start cells whether or not the model reads ``done`` (positive two-step cycles pay more
    than the goal); on its potential-shaped table from 25-62% without ``done`` and 93-100% with it, because the goal
    bonus the source goals taught the model is then paid on the env's own terminal move, so the fitted potential
    peaks at the true goal.

    Args:
        agents_four_rooms: The ``agents_four_rooms`` profile.
        collapse: The ``collapse`` profile.
        agents_active_four_rooms: The ``agents_active_four_rooms`` profile.
        agents_demos_four_rooms: The ``agents_demos_four_rooms`` profile.
        agents_demos: The ``agents_demos`` profile.

    Returns:
        ``{name: BenchConfig}``.
    """
    done = {"use_done": True, "reward_uncertainty": ("none", "potential")}
    return {"agents_four_rooms_done": dataclasses.replace(agents_four_rooms, profile="agents_four_rooms_done", **done),
            "collapse_done": dataclasses.replace(collapse, profile="collapse_done", **done),
            "agents_active_four_rooms_done": dataclasses.replace(
                agents_active_four_rooms, profile="agents_active_four_rooms_done", **done),
            "agents_demos_four_rooms_done": dataclasses.replace(
                agents_demos_four_rooms, profile="agents_demos_four_rooms_done", **done),
            "agents_maze_done": dataclasses.replace(
                agents_four_rooms, profile="agents_maze_done", layout="maze", size=9, layout_seed=0, **done),
            "agents_demos_done": dataclasses.replace(
                agents_demos, profile="agents_demos_done", algos=("ppo", "dqn"), **done)}


__all__ = ["done_profiles", "issue12_profiles"]
