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
    scratch = select_budget(pretrained["scratch"], validation, 64, score, steps=[0, 100], lrs=[1e-2], max_widen=0)
    assert scratch.budget.steps == 100 and scratch.score < scratch.no_adapt_score - 0.3
    assert scratch.widenings == []


def test_a_winner_on_the_edge_of_the_grid_widens_it(pretrained, labels):
    groups = split_by_task(labels)
    validation = [(t, groups[t.id]) for t in FAMILY.train[:2]]
    scores = {t.id: _epic_free_score(groups[t.id]) for t, _ in validation}
    score = lambda model, task: scores[task.id](model, task)  # noqa: E731
    method = pretrained["scratch"]
    # 10 steps at lr 1e-3 barely move a fresh model: the most steps and the largest lr win, so both grids widen
    sel = select_budget(method, validation, 64, score, steps=[0, 5, 10], lrs=[1e-4, 1e-3], max_widen=2)
    first = sel.widenings[0]
    assert first["edge_of"]["steps"] == 10 and first["edge_of"]["lr"] == 1e-3
    assert first["steps"] == [30] and first["lrs"] == [pytest.approx(1e-2)]
    tried = {(row["budget"]["steps"], round(row["budget"]["lr"], 8)) for row in sel.table}
    # a line search per axis, not the cross product: the winner (10 steps, lr 1e-3) went on to 30 steps, and lr 1e-2
    # ran the old step grid
    assert {(30, 0.001), (5, 0.01), (10, 0.01)} <= tried
    assert len(sel.widenings) == 2  # bounded: max_widen rounds
    assert sel.budget.steps > 10 or sel.budget.lr > 1e-3
    narrow = select_budget(method, validation, 64, score, steps=[0, 5, 10], lrs=[1e-4, 1e-3], max_widen=0)
    assert sel.score < narrow.score - 0.3 and narrow.budget.steps == 10
    assert sel.to_dict()["widenings"] == sel.widenings
    # a winner inside its grid is left alone
    inside = select_budget(method, validation, 64, score, steps=[0, 100, 300], lrs=[1e-3, 1e-2, 1e-1], params=["all"])
    if inside.budget.steps < 300 and 1e-3 < inside.budget.lr < 1e-1:
        assert inside.widenings == []


def test_select_budget_validates_its_inputs(pretrained, labels):
    groups = split_by_task(labels)
    score = lambda model, task: 0.0  # noqa: E731
    with pytest.raises(ValueError, match="validation is empty"):
        select_budget(pretrained["transfer"], [], 4, score)
    with pytest.raises(ValueError, match="max_widen=-1 is not allowed"):
        select_budget(pretrained["transfer"], [(FAMILY.train[0], groups[FAMILY.train[0].id])], 4, score, max_widen=-1)
    with pytest.raises(ValueError, match="need at least k=1000"):
        select_budget(pretrained["transfer"], [(FAMILY.train[0], groups[FAMILY.train[0].id])], 1000, score)
