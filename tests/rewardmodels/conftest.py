"""Shared settings and fixtures of the rewardmodels tests; the datasets are built in rm_data.py."""

from __future__ import annotations

import pytest
import torch
from rm_data import FAMILY

from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import make_loss


@pytest.fixture(autouse=True)
def _one_thread():
    # the test machines share 2 cores between several test runs
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def spaces_():
    """The observation and action spaces of :data:`rm_data.FAMILY`'s envs."""
    env = FAMILY.train[0].make_env()
    return env.observation_space, env.action_space


@pytest.fixture(scope="module")
def labels():
    """Every (cell, action) pair of every train task of :data:`rm_data.FAMILY` once: 100 labels per task."""
    return make_loss("mse", collect_transitions(list(FAMILY.train), 100 * len(FAMILY.train), seed=0))
