"""Fixtures of the reuse tests: held-out pools, preference / MaxEnt-IRL targets, and every method pre-trained once
per session (built through the registry with :data:`reuse_data.SETTINGS`)."""

from __future__ import annotations

import pytest
from reuse_data import SETTINGS
from rm_data import FAMILY

from rewardshare.feedback import collect_demonstrations, collect_preferences, collect_transitions
from rewardshare.rewardmodels import make_loss, make_method


@pytest.fixture(scope="session")
def pools():
    """Every held-out task with 100 labels (the 'known answer': the teacher's dense reward)."""
    return [(t, make_loss("mse", collect_transitions(t, 100, seed=11))) for t in FAMILY.held_out]


@pytest.fixture(scope="session")
def other_targets():
    """A held-out task with preference and MaxEnt-IRL targets."""
    task = FAMILY.held_out[0]
    prefs = make_loss("bradley_terry", collect_preferences(task, 24, segment_length=4, seed=0))
    irl = make_loss("maxent_irl", collect_demonstrations(task, 6, seed=0), env=task.make_env(), iterations=20)
    return task, {"bradley_terry": prefs, "maxent_irl": irl}


@pytest.fixture(scope="session")
def pretrained():
    """The methods of :data:`reuse_data.SETTINGS`, pre-trained on every train task's 100 labels."""
    env = FAMILY.train[0].make_env()
    spaces = (env.observation_space, env.action_space)
    labels = make_loss("mse", collect_transitions(list(FAMILY.train), 100 * len(FAMILY.train), seed=0))
    methods = {}
    for name, settings in SETTINGS.items():
        extra = {"base": methods["meta_sgd"]} if name == "map_prior" else {}
        methods[name] = make_method(name, *spaces, **settings, **extra).pretrain(labels, FAMILY.train)
        assert methods[name].name == name
    return methods
