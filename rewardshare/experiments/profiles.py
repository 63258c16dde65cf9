"""The learning-curve benchmark's named profiles (``BenchConfig.profile``; :data:`~.config.PROFILES`).

:func:`all_profiles` builds every one; :func:`issue12_profiles` (actively chosen labels and demonstrations) and
:func:`done_profiles` (reward models that read the env's episode-end flag) derive theirs from the ``agents_*``,
``collapse`` profiles, so pre-training, budget selection and the agents' settings are theirs and only what the new
question needs differs. Held-out goals, seeds, budgets and thresholds of every profile were fixed before any of its
results existed; sizes come from measured wall times of earlier profiles. No strategy, budget or variant was chosen
on held-out goals: ``information_gain`` is the issue's strategy.
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


def demo_end_profiles(agents_demos: Any, agents_demos_four_rooms: Any) -> dict[str, Any]:
    """Agents on the latent model inferred from one demonstration *with where it ended*: its likelihood scores each
    step's episode-end flag through the :class:`~rewardshare.rewardmodels.objectives.TerminationLink` the model fits
    on its source labels. Every other field is the base profile's, except the issue-12 statistics (8 held-out goals x
    5 seeds), both algorithms and k = 1:

    - ``agents_demos_end``: ``agents_demos`` (open 8x8, 20k steps), PPO and DQN; 400 runs.
    - ``agents_demos_end_four_rooms``: ``agents_demos_four_rooms`` (four rooms 9x9, 24k steps), PPO and DQN; 400 runs.

    Served plain and potential-shaped (scratch too: its ensemble's reward). Why potential (measured on *validation*
    goals before any of their runs, ``benchmarks/done_planning.py --feedback demonstrations --ks 1 2``, four rooms,
    pre-training seed 0, 6 goals x 2 draws): from 1-2 demonstrations the MAP latent is at EPIC 0.14 (0.25 without
    the episode ends), its plain table has positive two-step cycles (+1.4) and value iteration on it reaches the goal
    from no start, on its potential-shaped table from 92-100% of starts. Models that read ``done`` are further off
    there (EPIC 0.34) and are not used.

    Args:
        agents_demos: The ``agents_demos`` profile.
        agents_demos_four_rooms: The ``agents_demos_four_rooms`` profile.

    Returns:
        ``{name: BenchConfig}``.
    """
    end = {"ks": (1,), "rl_ks": (1,), "n_eval_tasks": 8, "seeds": (0, 1, 2, 3, 4), "algos": ("ppo", "dqn"),
           "reward_uncertainty": ("none", "potential")}
    return {"agents_demos_end": dataclasses.replace(agents_demos, profile="agents_demos_end", **end),
            "agents_demos_end_four_rooms": dataclasses.replace(
                agents_demos_four_rooms, profile="agents_demos_end_four_rooms", **end)}


def statistics_profiles(agents_dqn_open: Any, agents_four_rooms: Any, agents_demos_end_four_rooms: Any,
                        agents_active_four_rooms_done: Any, agents_active: Any) -> dict[str, Any]:
    """The issue-12 statistics (8 held-out goals x 5 seeds, PPO and DQN) for the label targets, and the four-rooms
    PPO runs again with a budget long enough for scratch (24k steps censored its PPO speedups):

    - ``agents_labels_open``: ``agents_dqn_open`` (open 8x8, 20k steps) at k = 16 uniform labels (where the few-shot
      benchmark puts the latent model's EPIC 0.2 on the open room); 400 runs.
    - ``agents_labels_four_rooms``: ``agents_four_rooms`` (four rooms 9x9, 24k steps) at k = 32 (the issue's label
      budget); 400 runs.
    - ``agents_demos_end_four_rooms_long``: ``agents_demos_end_four_rooms`` with PPO only and 36k steps instead of
      24k: at 24k scratch never reached 0.9, so its speedup read ">= 1.97"; 200 runs.
    - ``agents_labels_four_rooms_long``: ``agents_labels_four_rooms`` likewise (PPO, 36k steps; its 24k-step PPO
      speedup read ">= 1.96" for the same reason); 200 runs.
    - ``agents_active_four_rooms_stats``: ``agents_active_four_rooms_done`` (k = 8 labels chosen by information
      gain, done-reading models) with the statistics above; 400 runs.
    - ``agents_active_open_stats``: ``agents_active`` (open 8x8) at k = 8 chosen labels with the statistics above and
      done-reading models, as the open-room label profile; 400 runs.

    The label profiles' models read the env's episode-end flag and are served plain and potential-shaped, the
    setting ``agents_four_rooms_done`` and ``collapse_done`` measured (with 6 goals x 2-4 seeds). The k of each was
    fixed from the few-shot benchmark (reward-model EPIC, not agent results) before any of their runs.

    Args:
        agents_dqn_open: The ``agents_dqn_open`` profile.
        agents_four_rooms: The ``agents_four_rooms`` profile.
        agents_demos_end_four_rooms: The ``agents_demos_end_four_rooms`` profile.
        agents_active_four_rooms_done: The ``agents_active_four_rooms_done`` profile.
        agents_active: The ``agents_active`` profile.

    Returns:
        ``{name: BenchConfig}``.
    """
    stats = {"n_eval_tasks": 8, "seeds": (0, 1, 2, 3, 4), "algos": ("ppo", "dqn"), "use_done": True,
             "reward_uncertainty": ("none", "potential")}
    long = {"algos": ("ppo",), "total_timesteps": 36_000}
    return {"agents_labels_open": dataclasses.replace(agents_dqn_open, profile="agents_labels_open", ks=(16,),
                                                      rl_ks=(16,), **stats),
            "agents_labels_four_rooms": dataclasses.replace(agents_four_rooms, profile="agents_labels_four_rooms",
                                                            ks=(32,), rl_ks=(32,), **stats),
            "agents_demos_end_four_rooms_long": dataclasses.replace(
                agents_demos_end_four_rooms, profile="agents_demos_end_four_rooms_long", **long),
            "agents_labels_four_rooms_long": dataclasses.replace(
                agents_four_rooms, profile="agents_labels_four_rooms_long", ks=(32,), rl_ks=(32,),
                **{**stats, **long}),
            "agents_active_four_rooms_stats": dataclasses.replace(
                agents_active_four_rooms_done, profile="agents_active_four_rooms_stats", **stats),
            "agents_active_open_stats": dataclasses.replace(
                agents_active, profile="agents_active_open_stats", ks=(8,), rl_ks=(8,), **stats)}


def all_profiles(config_class: Any) -> dict[str, Any]:
    """Every named profile, ``{name: BenchConfig}``, built with the config class it is given (config builds
    :data:`~.config.PROFILES` with this, so this module does not import it back). ``smoke``: the test suite's
    seconds-long end-to-end run (every method, both algorithms, a few hundred agent steps). ``quick``: the default main
    job, 72 agent runs (9 methods x 2 algorithms x 2 held-out tasks x 2 seeds at k = 16), about 5-7 minutes on a 2-core
    CPU (measured 5.3-7.4 min). ``full``: the README's headline numbers, 480 agent runs (5 seeds x 3 held-out tasks per
    algorithm and method, agents at k = 16 and 64, EPIC at k = 4..256), about 30-40 minutes on a 2-core CPU (measured 31
    min); resumable across sessions. ``collapse``: the collapse rate with and without uncertainty-aware rewards, 312 PPO
    runs (scratch and latent x none / mean / pessimistic x k = 8, 16, plus the teacher, on 6 held-out goals x 4 seeds,
    40k steps each), about 20-25 minutes on one core. ``agents_four_rooms``: PPO and DQN on four rooms 9x9, 216 runs
    (scratch and latent x none / pessimistic x k = 16, 32, plus the teacher, on 6 held-out goals x 2 seeds, 24k steps
    each), about 20-25 minutes on one core. ``agents_dqn_open``: DQN on the open 8x8 room, 108 runs (the same methods at
    k = 8, 16, on the collapse profile's 6 held-out goals x 2 seeds, 20k steps each), about 12-15 minutes on one core.
    ``collapse_potential``: ``collapse``'s latent runs on the potential-shaped plain / mean / pessimistic reward plus
    the plain one again, 192 PPO runs (4 variants x k = 8, 16 x 6 goals x 4 seeds), about 15-17 minutes on one core.
    ``agents_active``, ``agents_active_four_rooms``, ``agents_demos``, ``agents_demos_four_rooms``: actively chosen
    labels and demonstrations: 216 PPO and DQN runs each for the active ones, 108 PPO runs each for the demonstrations
    (:func:`issue12_profiles`); measured on one worker with 2 cores shared by 3 jobs: 45, 29, 14 and 7 minutes.
    ``agents_four_rooms_done``, ``collapse_done``, ``agents_active_four_rooms_done``, ``agents_demos_four_rooms_done``:
    ``agents_four_rooms``, ``collapse``, ``agents_active_four_rooms`` and ``agents_demos_four_rooms`` with reward models
    that read the env's episode-end flag, served plain and potential-shaped (216, 216, 120 and 108 runs);
    ``agents_maze_done``: the first of them on the 9x9 maze (216 runs); ``agents_demos_done``: ``agents_demos``
    likewise, PPO and DQN (216). ``agents_demos_end``, ``agents_demos_end_four_rooms``: one demonstration read with
    where it ended, 8 held-out goals x 5 seeds, PPO and DQN (:func:`demo_end_profiles`). ``agents_labels_open``,
    ``agents_labels_four_rooms``, ``agents_demos_end_four_rooms_long``, ``agents_labels_four_rooms_long``,
    ``agents_active_four_rooms_stats``, ``agents_active_open_stats``: the issue-12 statistics for the label and
    active-label targets, and the four-rooms PPO runs with a budget that uncensors scratch
    (:func:`statistics_profiles`).
    """
    smoke = config_class(
        profile="smoke", size=5, n_eval_tasks=1, n_validation_tasks=1, source_budget=24, ks=(4,), rl_ks=(4,),
        hidden_sizes=(16,), pretrain_steps=10, maml_iterations=3, maml_support_size=4, maml_query_size=4,
        max_prior_tasks=4,
        adapt_steps=(0, 3), adapt_lrs=(1e-2,), prior_weights=(0.1,), validation_pool=8, seeds=(0,),
        total_timesteps=256, n_envs=2, eval_every=128, eval_episodes=2,
    )
    quick = config_class(profile="quick")
    full = config_class(
        profile="full", n_eval_tasks=3, n_validation_tasks=3, source_budget=512, ks=(4, 16, 64, 256),
        rl_ks=(16, 64), seeds=(0, 1, 2, 3, 4), selection_seeds=(0, 1), pretrain_steps=3000, maml_iterations=1500,
    )
    # does an uncertainty-aware reward stop "peaks, then collapses"? latent (its posterior over the task latent) and
    # scratch (a 5-network ensemble) at few labels, plain / posterior-mean / pessimistic reward, PPO only; the
    # teacher's reward as the reference. Goals, seeds and thresholds fixed here before any of its results existed.
    collapse = config_class(
        profile="collapse", n_eval_tasks=6, n_validation_tasks=3, source_budget=512, ks=(8, 16), rl_ks=(8, 16),
        methods=("scratch", "latent", "teacher"), algos=("ppo",), seeds=(0, 1, 2, 3), selection_seeds=(0, 1),
        pretrain_steps=3000, total_timesteps=40_000, eval_every=2_000, eval_episodes=20,
        reward_uncertainty=("none", "mean", "pessimistic"), pessimism_beta=1.0, ensemble_size=5, collapse_drop=0.5,
    )
    # the issue's agent targets beyond PPO on the open room: goal-agnostic reuse (latent, plain and pessimistic reward)
    # vs scratch and the teacher's reward, with PPO and DQN on four rooms 9x9 (k = 16, 32: the few-shot benchmark puts
    # latent's EPIC 0.2 on four rooms at ~24-48 labels) and with DQN on the open 8x8 room (k = 8, 16, as in
    # `collapse`, same 6 held-out goals). Goals, seeds, budgets and thresholds fixed here before any of their results
    # existed; sized from timing runs on validation tasks only (DQN 20-24k steps ~6-8 s, PPO 24k ~3 s on one core).
    agents = dict(
        n_validation_tasks=3, source_budget=512, methods=("scratch", "latent", "teacher"), seeds=(0, 1),
        selection_seeds=(0, 1), pretrain_steps=3000, eval_every=1_000, eval_episodes=20, success_threshold=0.9,
        reward_uncertainty=("none", "pessimistic"), pessimism_beta=1.0, ensemble_size=5, collapse_drop=0.5,
    )
    agents_four_rooms = config_class(
        profile="agents_four_rooms", layout="four_rooms", size=9, n_eval_tasks=6, ks=(16, 32), rl_ks=(16, 32),
        algos=("ppo", "dqn"), total_timesteps=24_000, **agents,  # type: ignore[arg-type]
    )
    agents_dqn_open = config_class(
        profile="agents_dqn_open", layout="open", size=8, n_eval_tasks=6, ks=(8, 16), rl_ks=(8, 16), algos=("dqn",),
        total_timesteps=20_000, **agents,  # type: ignore[arg-type]
    )
    # does serving only the potential-based part phi(s') - phi(s) of the latent reward stop the collapse? `collapse`'s
    # latent runs (same source feedback, pre-training, adapted models, goals, seeds and budgets: every field but these
    # three is `collapse`'s, so its units recompute the same models) on the shaped plain / mean / pessimistic reward;
    # its own `latent` runs re-run `collapse`'s (a reproduction check), the unshaped mean / pessimistic runs are
    # `collapse`'s. A separate profile: adding variants to `collapse` would change its hash and orphan its results.
    collapse_potential = dataclasses.replace(
        collapse, profile="collapse_potential", methods=("latent",),
        reward_uncertainty=("none", "potential", "mean+potential", "pessimistic+potential"),
    )
    issue12 = issue12_profiles(agents_dqn_open, agents_four_rooms)
    done = done_profiles(agents_four_rooms, collapse, issue12["agents_active_four_rooms"],
                         issue12["agents_demos_four_rooms"], issue12["agents_demos"])
    demo_end = demo_end_profiles(issue12["agents_demos"], issue12["agents_demos_four_rooms"])

    return {"smoke": smoke, "quick": quick, "full": full, "collapse": collapse,
            "collapse_potential": collapse_potential, "agents_four_rooms": agents_four_rooms,
            "agents_dqn_open": agents_dqn_open, **issue12,
            **done, **demo_end,
            **statistics_profiles(agents_dqn_open, agents_four_rooms, demo_end["agents_demos_end_four_rooms"],
                                  done["agents_active_four_rooms_done"], issue12["agents_active"])}


__all__ = ["all_profiles", "demo_end_profiles", "done_profiles", "issue12_profiles", "statistics_profiles"]
