"""Collecting feedback: labelled transitions, segment preferences and demonstrations, for one task or many.

One module per feedback kind (:mod:`.labels`, :mod:`.preferences`, :mod:`.demonstrations`), over shared rollout
machinery (:mod:`.rollouts`) and parameter objects (:mod:`.options`)::

    env = EnvOptions(obs_mode="onehot", absorbing_goal=True)        # the env the data is collected in (and used in)
    labels = collect_transitions(family.train, 5000, coverage="uniform", seed=0, env=env)
    prefs = collect_preferences(family.train, 500, segment_length=10, seed=0, env=env,
                                options=CollectionOptions(progress=True))

Coverage (which ``(s, a)`` pairs the teacher is asked about):

- ``"uniform"``: transitions — every (free cell, action) pair of a task equally often (the goal cell only with
  ``absorbing_goal=True``, where moves out of it are part of the episode); the remainder of ``n`` is spread over
  distinct random pairs. Preferences — segments of uniform random actions from uniform random start cells.
- ``"random"``: rollouts of the uniform random policy from the env's random starts.
- ``"expert"``: rollouts of the teacher's planner expert (``expert_epsilon`` / ``expert_temperature``).
- a mixture ``{"uniform": 0.5, "expert": 0.5}``: each task's items are split by these weights (largest remainder).

Budget: collection charges each task's teacher exactly what it returns (one query per label, per comparison, per
demonstrated step) and checks the remaining budgets before starting, so it never fails half-way.
"""

from rewardshare.feedback.collection.demonstrations import collect_demonstrations
from rewardshare.feedback.collection.labels import collect_transitions
from rewardshare.feedback.collection.options import (
    COVERAGES,
    DEFAULT_ENV_ID,
    NOISE_KINDS,
    CollectionOptions,
    EnvOptions,
    normalize_coverage,
    split_count,
)
from rewardshare.feedback.collection.preferences import collect_preferences

__all__ = [
    "COVERAGES", "DEFAULT_ENV_ID", "NOISE_KINDS", "CollectionOptions", "EnvOptions", "collect_demonstrations",
    "collect_preferences", "collect_transitions", "normalize_coverage", "split_count",
]
