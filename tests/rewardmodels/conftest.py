"""Shared settings of the rewardmodels tests; the datasets are built in rm_data.py."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # the test machines share 2 cores between several test runs
    torch.set_num_threads(1)
