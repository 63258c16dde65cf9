"""Feedback from a simulated teacher: reward labels, preferences and demonstrations, collected fast and saved as
self-describing datasets.

- :class:`Teacher` — judges transitions of one goal task (dense or sparse reward), compares segments
  (Bradley-Terry), demonstrates (planner-based expert), on a query budget.
- :class:`Transitions`, :class:`Preferences`, :class:`Demonstrations` — numpy datasets with versioned
  ``save``/``load``; :func:`load_dataset` opens any of them.
- :func:`collect_transitions`, :func:`collect_preferences`, :func:`collect_demonstrations` — collection over one task
  or many (e.g. a :class:`~rewardshare.envs.TaskFamily` split) with the native vector env; :class:`EnvOptions` and
  :class:`CollectionOptions` group the env and run settings they share.
"""

from rewardshare.feedback.collection import (
    COVERAGES,
    CollectionOptions,
    EnvOptions,
    collect_demonstrations,
    collect_preferences,
    collect_transitions,
)
from rewardshare.feedback.datasets import (
    FORMAT_VERSION,
    DatasetFormatError,
    Demonstrations,
    Episode,
    FeedbackDataset,
    Preferences,
    Transitions,
    load_dataset,
    read_header,
)
from rewardshare.feedback.teacher import (
    ABSORBING_REWARD,
    DENSE_CLOSER,
    DENSE_FARTHER,
    DENSE_GOAL_BONUS,
    REWARD_KINDS,
    TIE,
    BudgetExhausted,
    Teacher,
    expert_actions,
)

__all__ = [
    "ABSORBING_REWARD", "COVERAGES", "DENSE_CLOSER", "DENSE_FARTHER", "DENSE_GOAL_BONUS", "FORMAT_VERSION",
    "REWARD_KINDS", "TIE", "BudgetExhausted", "CollectionOptions", "DatasetFormatError", "Demonstrations", "EnvOptions",
    "Episode", "FeedbackDataset", "Preferences", "Teacher", "Transitions", "collect_demonstrations",
    "collect_preferences", "collect_transitions", "expert_actions", "load_dataset", "read_header",
]
