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
