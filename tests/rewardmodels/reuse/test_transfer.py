"""Transfer: freeze options, and transfer from one source task or from an existing model."""

from __future__ import annotations

import pytest
import torch
from rm_data import FAMILY, loss_of

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.reuse.functional import split_by_task
from rewardshare.rewardmodels.reuse.transfer import Transfer, trainable_for_freeze


def test_freeze_options_map_to_parameter_names(spaces_):
    model = RewardModel(*spaces_, hidden_sizes=(8, 8))
    assert trainable_for_freeze(model, "none") == "all"
    assert trainable_for_freeze(model, "trunk") == trainable_for_freeze(model, "all_but_last_layer") == ("head",)
    assert trainable_for_freeze(model, "first_layer") == ("trunk.2", "head")
    with pytest.raises(ValueError, match="freeze='everything' is not allowed"):
        trainable_for_freeze(model, "everything")


def test_transfer_from_one_source_task_or_an_existing_model(spaces_, labels):
    source_id = FAMILY.train[3].id
    method = Transfer(*spaces_, source_task=source_id, hidden_sizes=(16,), steps=150, lr=1e-2).pretrain(labels)
    own = split_by_task(labels)[source_id]
    other = split_by_task(labels)[FAMILY.train[4].id]
    model = method.start_model()
    assert loss_of(own, model) < 0.5 * loss_of(other, model)  # it learned its one source task, not the pool
    assert model.metadata["reuse_pretrain"]["source_tasks"] == [source_id]
    reused = Transfer.from_model(model, freeze="trunk")
    assert reused.candidate_params() == [("head",)]
    torch.testing.assert_close(reused.start_model().head.weight, model.head.weight)
    with pytest.raises(ValueError, match="source_task='nowhere' is not in the source data"):
        Transfer(*spaces_, source_task="nowhere").pretrain(labels)


@pytest.fixture(scope="module")
def goal_store(tmp_path_factory, spaces_, labels):
    """A store with one model per goal of four train goals (two architectures), plus a model of other spaces."""
    from gymnasium import spaces

    from rewardshare.rewardmodels import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("store"))
    goals = [t for t in FAMILY.train if t.goal in {(0, 0), (1, 4), (4, 0), (4, 3)}]  # corners and an edge
    for i, task in enumerate(goals):
        hidden = (32,) if i % 2 == 0 else (32, 32)
        method = Transfer(*spaces_, source_task=task.id, hidden_sizes=hidden, steps=400, lr=1e-2).pretrain(labels)
        store.put(method.start_model(), f"goal-{i}", tags=["grid"])
    other = RewardModel(spaces.Box(-1.0, 1.0, (3,)), spaces_[1], hidden_sizes=(4,))
    store.put(other, "other-spaces", tags=["grid"])
    return store, goals


def test_transfer_from_a_store_picks_the_model_of_the_target_s_goal_from_a_few_labels(spaces_, goal_store):
    from rewardshare.feedback import collect_transitions
    from rewardshare.rewardmodels import make_loss
    from rewardshare.rewardmodels.reuse import AdaptationBudget, make_method

    store, goals = goal_store
    method = Transfer.from_store(store, *spaces_, tag="grid")
    assert [n for n, _ in method.candidates] == ["goal-0", "goal-1", "goal-2", "goal-3"]
    assert method.skipped == {"other-spaces": "reads other observation / action spaces"}
    targets = [make_loss("mse", collect_transitions(task, 6, seed=10 + i)) for i, task in enumerate(goals)]
    starts = method.start_models(targets, goals)
    assert [m.metadata["reuse_source"]["name"] for m in starts] == [f"goal-{i}" for i in range(4)]
    for i, (m, t) in enumerate(zip(starts, targets, strict=True)):
        losses = m.metadata["reuse_source"]["target_losses"]
        assert min(losses, key=losses.get) == f"goal-{i}" and loss_of(t, m) == pytest.approx(losses[f"goal-{i}"])
    # runs whose sources differ in architecture adapt together, each from its own source
    adapted = method.adapt_many(targets, AdaptationBudget(20, 1e-3, "all"), goals)
    for i, (m, t) in enumerate(zip(adapted, targets, strict=True)):
        assert m.metadata["reuse_source"]["name"] == f"goal-{i}" and m.metadata["reuse"]["method"] == "transfer"
        assert m.hidden_sizes == ((32,) if i % 2 == 0 else (32, 32))
        assert loss_of(t, m) <= loss_of(t, starts[i]) + 1e-6
    assert method.candidate_params() == ["all", ("head",)]  # "first_layer" names differ between the sources
    # budget selection sees every run at every checkpoint, whatever its source's architecture
    from rewardshare.rewardmodels.reuse.selection import select_budget

    pools = {t.id: make_loss("mse", collect_transitions(t, 40, seed=3)) for t in goals[:2]}
    seen = []

    def score(model, task):
        seen.append((task.id, model.hidden_sizes))
        return loss_of(pools[task.id], model)

    sel = select_budget(method, [(t, pools[t.id]) for t in goals[:2]], 6, score, steps=[0, 5, 10], lrs=[1e-3],
                        params=["all"], max_widen=0)
    assert len(sel.table) == 3 and all(len(row["scores"]) == 2 for row in sel.table)
    assert seen.count((goals[1].id, (32, 32))) == 3  # zero-shot, 5 and 10 steps
    # the same through the registry, as a config would build it
    built = make_method("transfer", *spaces_, store=store.root, store_filters={"tag": "grid"}).pretrain(None)
    assert built.start_models(targets[2:3], goals[2:3])[0].metadata["reuse_source"]["name"] == "goal-2"
    assert built.config()["n_candidates"] == 4


def test_transfer_from_a_store_refuses_what_it_cannot_use(spaces_, goal_store, tmp_path):
    from rewardshare.rewardmodels import ModelStore

    store, _ = goal_store
    with pytest.raises(ValueError, match="no model in .* fits these spaces"):
        Transfer.from_store(ModelStore(tmp_path / "empty"), *spaces_)
    with pytest.raises(ValueError, match="no model in .* fits these spaces and filters \\{'tag': 'absent'\\}"):
        Transfer.from_store(store, *spaces_, tag="absent")
    with pytest.raises(ValueError, match=r"store_filters \['colour'\] are not allowed"):
        Transfer(*spaces_, store=store, store_filters={"colour": "red"})
    with pytest.raises(ValueError, match="source_task cannot be combined with store"):
        Transfer(*spaces_, store=store, source_task="x")
    with pytest.raises(RuntimeError, match="Transfer is not pretrained"):
        Transfer(*spaces_, store=store).start_model()
