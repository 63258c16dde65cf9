"""Budget selection: chosen on validation tasks, never worse than not adapting there; inputs validated."""

from __future__ import annotations

import pytest
from rm_data import FAMILY, loss_of

from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.selection import select_budget


def _epic_free_score(pool):
    return lambda model, task: loss_of(pool, model)


def test_select_budget_never_prefers_adaptation_that_hurts(pretrained, labels):
    # validation tasks from the TRAIN split; scored on all their labels
    groups = split_by_task(labels)
    validation = [(t, groups[t.id]) for t in FAMILY.train[:3]]
    scores = {t.id: _epic_free_score(groups[t.id]) for t, _ in validation}
    score = lambda model, task: scores[task.id](model, task)  # noqa: E731
    method = pretrained["goal_conditioned"]
    sel = select_budget(method, validation, 4, score, steps=[0, 50], lrs=[0.3], params=["all"])
    # lr 0.3 for 50 steps on 4 labels destroys a good prior: no adaptation must win
    assert sel.budget.steps == 0 and sel.score == sel.no_adapt_score
    assert [row["budget"]["steps"] for row in sel.table] == [0, 50]
    assert sel.table[1]["score"] > sel.table[0]["score"]
    scratch = select_budget(pretrained["scratch"], validation, 64, score, steps=[0, 100], lrs=[1e-2])
    assert scratch.budget.steps == 100 and scratch.score < scratch.no_adapt_score - 0.3


def test_select_budget_validates_its_inputs(pretrained, labels):
    groups = split_by_task(labels)
    score = lambda model, task: 0.0  # noqa: E731
    with pytest.raises(ValueError, match="validation is empty"):
        select_budget(pretrained["transfer"], [], 4, score)
    with pytest.raises(ValueError, match="need at least k=1000"):
        select_budget(pretrained["transfer"], [(FAMILY.train[0], groups[FAMILY.train[0].id])], 1000, score)
