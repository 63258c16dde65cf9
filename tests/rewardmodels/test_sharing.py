"""Saving, loading and the model store: exact round trips, and refusals with reasons."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from rm_data import make_transitions

import rewardshare
from rewardshare.rewardmodels import ModelStore, RewardModel, load_model
from rewardshare.rewardmodels.sharing import STORE_ENV_VAR, ModelFormatError, default_store_root, provenance


def _inputs(env: gym.Env, n: int = 16):
    env.action_space.seed(0)
    obs = np.stack([env.observation_space.sample() for _ in range(n)])
    act = np.array([env.action_space.sample() for _ in range(n)])
    return obs, act


@pytest.mark.parametrize("env_id", ["rewardshare/GridGoal-v0", "FrozenLake-v1", "CartPole-v1"])
def test_round_trip_gives_identical_predictions(tmp_path, env_id):
    env = gym.make(env_id)
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(16, 8), use_next_obs=True,
                        use_done=True, context_dim=3, learn_context=True, seed=1, metadata={"method": "scratch"})
    model.set_context([0.1, -0.2, 0.3])
    obs, act = _inputs(env)
    done = np.arange(16) % 2 == 0
    path = model.save(tmp_path / "m", metadata={"seed": 1})
    loaded = load_model(path)
    assert loaded.config() == model.config() and loaded.learn_context
    np.testing.assert_array_equal(loaded.predict(obs, act, obs, done), model.predict(obs, act, obs, done))
    assert loaded.metadata["method"] == "scratch" and loaded.metadata["seed"] == 1
    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == 1 and config["package_version"] == rewardshare.__version__
    assert config["architecture"]["featurizers"]["action"] == {"type": "onehot"}
    assert RewardModel.load(path).metadata == loaded.metadata


def test_loading_refuses_corrupted_or_mismatched_files(tmp_path):
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, seed=0)
    path = model.save(tmp_path / "m")
    weights = path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError, match="do not match the sha256"):
        load_model(path)

    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = 99
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="unsupported format version 99"):
        load_model(path)

    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["architecture"]["hidden_sizes"] = [32, 32]  # weights no longer fit
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=r"tensor 'trunk.0.weight' has shape \(64, 6\) but the architecture"):
        load_model(path)

    (path / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="not a saved reward model"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="not JSON-serializable"):
        model.save(tmp_path / "bad", metadata={"metrics": {"epic": float("nan")}})


def test_loading_into_an_env_with_other_spaces_names_both(tmp_path):
    small = gym.make("rewardshare/GridGoal-v0", obs_mode="onehot")
    big = gym.make("rewardshare/GridGoal-FourRooms-v0", obs_mode="onehot")
    path = RewardModel(small.observation_space, small.action_space).save(tmp_path / "m")
    load_model(path, observation_space=small.observation_space, action_space=small.action_space)
    with pytest.raises(ValueError, match=r"model reads observation_space=Box\(shape=\(64,\).*env has .*\(81,\)"):
        load_model(path, observation_space=big.observation_space, action_space=big.action_space)


def test_store_put_list_find_load(tmp_path, monkeypatch):
    env = gym.make("rewardshare/GridGoal-v0")
    data = make_transitions(n=10)
    data.metadata["env_id"] = "rewardshare/GridGoal-v0"
    meta = provenance(data, method="scratch", seed=0, metrics={"epic": 0.1})
    assert meta["tasks"] == ["open-5x5/g4_4"] and meta["feedback"]["kind"] == "transitions"
    assert meta["feedback"]["n_items"] == 10
    model = RewardModel(env.observation_space, env.action_space, seed=0, metadata=meta)
    store = ModelStore(tmp_path / "store")
    assert store.list() == [] and len(store) == 0
    name = store.put(model, "first", tags=["demo"])
    auto = store.put(RewardModel(env.observation_space, env.action_space, seed=1, metadata={"method": "maml"}))
    assert auto.startswith("maml-") and len(store) == 2
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        store.put(model, "first")
    store.put(model, "first", tags=["again"], overwrite=True)
    assert [e.name for e in store.find(method="scratch")] == ["first"]
    assert [e.name for e in store.find(task="open-5x5/g4_4", env_id="rewardshare/GridGoal-v0")] == ["first"]
    assert store.find(tag="demo") == []  # the overwrite replaced the entry, tags included
    assert store.find(tag="again")[0].tags == ["again"]
    assert store.find(method="transfer") == []
    loaded = store.load(name, observation_space=env.observation_space, action_space=env.action_space)
    obs = np.zeros((2, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, [0, 1]), model.predict(obs, [0, 1]))
    with pytest.raises(KeyError, match="no model named 'missing'"):
        store.load("missing")
    with pytest.raises(ValueError, match="name='../escape' is not allowed"):
        store.put(model, "../escape")
    store.remove(auto)
    assert store.names() == ["first"]
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".")]  # no temp dirs left

    monkeypatch.setenv(STORE_ENV_VAR, str(tmp_path / "env-store"))
    assert ModelStore().root == tmp_path / "env-store" == default_store_root()
    monkeypatch.delenv(STORE_ENV_VAR)
    assert "rewardshare" in str(ModelStore().root)


def test_saved_weights_are_cpu_tensors_and_load_to_a_device(tmp_path):
    env = gym.make("rewardshare/GridGoal-v0")
    model = RewardModel(env.observation_space, env.action_space, seed=0)
    path = model.save(tmp_path / "m")
    loaded = load_model(path, device="cpu")
    assert loaded.device == torch.device("cpu")
    if torch.cuda.is_available():  # exercised on the GPU machine
        gpu = load_model(path, device="cuda")
        obs = np.zeros((3, 2), np.float32)
        np.testing.assert_allclose(gpu.predict(obs, [0, 1, 2]), model.predict(obs, [0, 1, 2]), rtol=1e-5)
