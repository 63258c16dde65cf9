"""``BenchConfig.use_done``: reward models that read the env's episode-end flag, hash-neutral at its default."""

from __future__ import annotations

import numpy as np
import pytest

from rewardshare.envs import GridGoalEnv
from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import pipeline
from rewardshare.experiments.config import BenchConfig, get_profile
from rewardshare.rewardmodels import RewardModel


def test_default_is_hash_neutral_and_true_changes_the_hash() -> None:
    base = get_profile("agents_four_rooms")
    assert "use_done" in base.to_dict() and base.use_done is False
    # the committed results of agents_four_rooms were written before the field existed
    assert base.config_hash() == "283294fb5caecf22"
    done = get_profile("agents_four_rooms_done")
    assert done.use_done and done.config_hash() != base.config_hash()
    assert BenchConfig.from_dict(done.to_dict()).config_hash() == done.config_hash()


def test_methods_read_done_only_when_asked() -> None:
    env = GridGoalEnv(layout="open", size=5)
    spaces = (env.observation_space, env.action_space)
    for name in ("scratch", "latent"):
        assert "use_done" not in pipeline.method_settings(name, get_profile("smoke"))
        method = pipeline.make_method(name, get_profile("smoke", use_done=True), *spaces)
        assert method.model_kwargs["use_done"] is True
        model = RewardModel(*spaces, seed=0, **method.model_kwargs)
        # the flag is an input: the same move with and without it gets different rewards from an untrained net
        obs = np.zeros((1, *env.observation_space.shape), np.float32)
        r = [float(model.predict(obs, np.array([1]), obs, np.array([d]))[0]) for d in (False, True)]
        assert r[0] != r[1]


def test_refuses_a_non_bool() -> None:
    with pytest.raises(InvalidArgumentError, match="use_done=1 is not allowed: use true or false"):
        get_profile("smoke", use_done=1)
