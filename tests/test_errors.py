"""One error hierarchy: every deliberate error is a RewardShareError, and the old except clauses keep working."""

from __future__ import annotations

import pytest

from rewardshare import errors
from rewardshare.errors import (
    ArtifactError,
    ConfigMismatchError,
    CorruptArtifactError,
    IncompatibleArtifactError,
    InvalidArgumentError,
    RewardShareError,
)
from rewardshare.experiments import ConfigMismatchError as ExperimentsConfigMismatch
from rewardshare.feedback import BudgetExhausted, DatasetFormatError, Teacher
from rewardshare.rewardmodels import ModelFormatError


def test_hierarchy():
    for cls in (InvalidArgumentError, ArtifactError, IncompatibleArtifactError, CorruptArtifactError,
                ConfigMismatchError, BudgetExhausted):
        assert issubclass(cls, RewardShareError), cls
    for cls in (InvalidArgumentError, ArtifactError, IncompatibleArtifactError, CorruptArtifactError,
                ConfigMismatchError):
        assert issubclass(cls, ValueError), cls  # code catching ValueError keeps working
    assert issubclass(BudgetExhausted, RuntimeError)
    assert issubclass(ConfigMismatchError, IncompatibleArtifactError)
    assert DatasetFormatError is ModelFormatError is ArtifactError  # the 0.1 names catch every artifact problem
    assert ExperimentsConfigMismatch is ConfigMismatchError
    assert set(errors.__all__) >= {"RewardShareError", "InvalidArgumentError", "IncompatibleArtifactError",
                                   "CorruptArtifactError"}


def test_budget_exhausted_is_caught_as_a_rewardshare_error():
    from rewardshare.envs import TaskFamily

    teacher = Teacher(TaskFamily("open", 5).train[0], budget=1)
    with pytest.raises(RewardShareError, match="only 1 of budget=1 are left"):
        teacher.label([[0, 0], [0, 0]], [0, 0], [[0, 1], [1, 0]])
