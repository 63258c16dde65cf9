"""Saving, loading, verifying, exporting and the model store: exact round trips, and refusals with reasons."""

from __future__ import annotations

import json
import os
import stat

import gymnasium as gym
import numpy as np
import pytest
import torch
from rm_data import make_transitions
from safetensors.torch import save as save_bytes

import rewardshare
from rewardshare.artifacts import seal, sha256_hex
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError, InvalidArgumentError
from rewardshare.rewardmodels import ModelStore, RewardModel, load_model
from rewardshare.rewardmodels.model_store import STORE_ENV_VAR, default_store_root
from rewardshare.rewardmodels.sharing import ModelFormatError, export_model, provenance, verify_model


def _inputs(env: gym.Env, n: int = 16):
    env.action_space.seed(0)
    obs = np.stack([env.observation_space.sample() for _ in range(n)])
    act = np.array([env.action_space.sample() for _ in range(n)])
    return obs, act


def _model(weights_seed: int = 0, **meta) -> RewardModel:
    env = gym.make("rewardshare/GridGoal-v0")
    return RewardModel(env.observation_space, env.action_space, seed=weights_seed, metadata=meta)


def _edit_config(path, change, reseal: bool = True) -> None:
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(seal(config) if reseal else config))


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
    assert config["format_version"] == 2 and config["software"]["rewardshare"] == rewardshare.__version__
    assert config["software"]["torch"] == torch.__version__ and config["checksum"].startswith("sha256:")
    assert config["architecture"]["featurizers"]["action"] == {"type": "onehot"}
    assert RewardModel.load(path).metadata == loaded.metadata
    assert sorted(os.listdir(path)) == ["README.md", "config.json", "model.safetensors"]


def test_version_1_models_still_load(tmp_path):
    model = _model()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    blob = save_bytes(state, metadata={"format": "rewardshare.reward_model"})
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "model.safetensors").write_bytes(blob)
    (tmp_path / "v1" / "config.json").write_text(json.dumps({
        "format": "rewardshare.reward_model", "format_version": 1, "package_version": "0.1.0",
        "architecture": model.config(), "metadata": {"method": "scratch"},
        "weights": {"file": "model.safetensors", "sha256": sha256_hex(blob), "tensors": {}}}))
    assert load_model(tmp_path / "v1").metadata == {"method": "scratch"}


def test_every_behaviour_changing_byte_is_checked(tmp_path):
    model = _model()
    path = model.save(tmp_path / "m")
    weights = path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CorruptArtifactError, match="do not match the sha256"):
        load_model(path)
    # editing config.json (architecture or provenance) without its checksum: refused
    path = model.save(tmp_path / "m", overwrite=True)
    _edit_config(path, lambda c: c["architecture"].update(normalize_obs=False), reseal=False)
    with pytest.raises(CorruptArtifactError, match=r"config.json: the header's checksum .* does not match"):
        load_model(path)
    path = model.save(tmp_path / "m", overwrite=True)
    _edit_config(path, lambda c: c["provenance"].update(env_id="rewardshare/GridGoal-Maze-v0"), reseal=False)
    with pytest.raises(ModelFormatError, match="does not match its content"):
        load_model(path)
    # a resealed edit still has to fit the weights
    path = model.save(tmp_path / "m", overwrite=True)
    _edit_config(path, lambda c: c["architecture"].update(hidden_sizes=[32, 32]))
    with pytest.raises(CorruptArtifactError, match=r"tensor 'trunk.0.weight' has shape \(64, 6\) but the architecture"):
        load_model(path)
    _edit_config(path, lambda c: c["architecture"].update(hidden_sizes=[10**9]))
    with pytest.raises(CorruptArtifactError, match="hidden_sizes is not plausible"):
        load_model(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="not valid JSON"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="not a saved reward model"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="not JSON-serializable"):
        model.save(tmp_path / "bad", metadata={"metrics": {"epic": float("nan")}})
    assert not (tmp_path / "bad").exists()


def test_future_format_versions_are_refused_with_both_numbers(tmp_path):
    path = _model().save(tmp_path / "m")
    _edit_config(path, lambda c: c.update(format_version=7))
    with pytest.raises(IncompatibleArtifactError, match=r"reward model format version 7 \(written by rewardshare "
                       r"0\.1\.0\) is newer than this rewardshare \S+ reads \(format version 2\): upgrade rewardshare"):
        load_model(path)
    _edit_config(path, lambda c: c.update(format_version=2, format="someone.else"))
    with pytest.raises(IncompatibleArtifactError, match="not a rewardshare reward model"):
        load_model(path)


@pytest.mark.parametrize("name", ["../secret.bin", "/etc/passwd", "sub/model.safetensors", ".hidden", ".."])
def test_weights_path_cannot_leave_the_model_directory(tmp_path, name):
    path = _model().save(tmp_path / "m")
    (tmp_path / "secret.bin").write_bytes(b"x" * 64)
    _edit_config(path, lambda c: c["weights"].update(file=name))
    with pytest.raises(CorruptArtifactError, match="is not a plain file name inside"):
        load_model(path)


def test_a_symlinked_weights_file_pointing_outside_is_refused(tmp_path):
    path = _model().save(tmp_path / "m")
    os.replace(path / "model.safetensors", tmp_path / "elsewhere.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", path / "model.safetensors")
    with pytest.raises(CorruptArtifactError, match="is not a plain file name inside"):
        load_model(path)


def test_weights_size_is_checked_before_reading(tmp_path):
    path = _model().save(tmp_path / "m")
    with pytest.raises(CorruptArtifactError, match=r"the weights file is \d+ bytes, over the limit of 100 bytes"):
        load_model(path, max_bytes=100)
    with open(path / "model.safetensors", "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(CorruptArtifactError, match=r"were saved: truncated or replaced"):
        load_model(path)


def test_saving_never_overwrites_without_being_asked(tmp_path):
    model = _model()
    path = model.save(tmp_path / "m")
    before = (path / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a saved artifact: nothing was written; pass "
                                              r"overwrite=True \(CLI: --overwrite\)"):
        _model(weights_seed=5).save(path)
    assert (path / "model.safetensors").read_bytes() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="is not empty and does not hold a saved artifact only"):
            model.save(tmp_path / "mine", overwrite=overwrite)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")  # an empty directory (e.g. tempfile.TemporaryDirectory) is fine
    _model(weights_seed=5).save(path, overwrite=True)
    assert (path / "model.safetensors").read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_loading_into_an_env_with_other_spaces_names_both(tmp_path):
    small = gym.make("rewardshare/GridGoal-v0", obs_mode="onehot")
    big = gym.make("rewardshare/GridGoal-FourRooms-v0", obs_mode="onehot")
    path = RewardModel(small.observation_space, small.action_space).save(tmp_path / "m")
    load_model(path, observation_space=small.observation_space, action_space=small.action_space)
    with pytest.raises(IncompatibleArtifactError,
                       match=r"model reads observation_space=Box\(shape=\(64,\).*env has .*\(81,\)"):
        load_model(path, observation_space=big.observation_space, action_space=big.action_space)
    with pytest.raises(InvalidArgumentError, match="give both observation_space and action_space"):
        load_model(path, observation_space=big.observation_space)


def test_model_card_records_provenance_and_limits(tmp_path):
    data = make_transitions(n=10)
    data.metadata.update(env_id="rewardshare/GridGoal-v0", env_kwargs={"obs_mode": "coords"},
                         teachers=[{"reward": "dense", "noise": 0.1, "flip_prob": 0.0, "beta": "inf"}],
                         budget_spent=10)
    meta = provenance(data, method="transfer", seed=3, metrics={"heldout_epic": 0.125},
                      sources=["open-5x5/g1_1", "open-5x5/g2_2"])
    card = (_model(**meta).save(tmp_path / "open5-transfer") / "README.md").read_text()
    for text in ("library_name: rewardshare", "# open5-transfer: a learned reward model for rewardshare/GridGoal-v0",
                 '| env kwargs | `{"obs_mode": "coords"}` |', "| task(s) | `open-5x5/g4_4` |",
                 "| reuse method | transfer |", "2 source task(s): `open-5x5/g1_1`, `open-5x5/g2_2`",
                 "| feedback | transitions, 10 item(s), 10 teacher queries spent |",
                 "1 simulated teacher(s), reward=dense, noise=0.1, flip_prob=0.0, beta=inf",
                 "| training seed | 3 |", "| held-out EPIC | 0.125 |", f"| rewardshare / torch | "
                 f"{rewardshare.__version__} / {torch.__version__} |", "## Intended use", "## Limits"):
        assert text in card, text
    bare = (_model().save(tmp_path / "bare") / "README.md").read_text()
    assert "| training seed | not recorded |" in bare and "| held-out EPIC | not measured |" in bare


def test_verify_and_export_for_a_model_hub(tmp_path):
    model = _model(method="scratch")
    path = model.save(tmp_path / "m")
    report = verify_model(path)
    assert report["format_version"] == 2 and report["card"] and report["parameters"] == model.num_parameters()
    out = export_model(path, tmp_path / "hub-upload")
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors"]
    assert (out / "config.json").read_bytes() == (path / "config.json").read_bytes()
    assert "# hub-upload:" in (out / "README.md").read_text()
    obs = np.zeros((2, 2), np.float32)
    np.testing.assert_array_equal(load_model(out).predict(obs, [0, 1]), model.predict(obs, [0, 1]))
    with pytest.raises(FileExistsError, match="already holds a saved artifact"):
        export_model(path, out)
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CorruptArtifactError, match="were saved: truncated or replaced"):
        export_model(path, tmp_path / "second")
    assert not (tmp_path / "second").exists()


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
    with pytest.raises(FileExistsError, match="exists; nothing was written; pass overwrite=True"):
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


@pytest.mark.parametrize("name", ["bad\nname", "two words", "a/b", "", "x" * 97, "-leading", "a..b", "tab\t"])
def test_store_names_are_validated_before_anything_is_written(tmp_path, name):
    store = ModelStore(tmp_path / "store")
    with pytest.raises(InvalidArgumentError, match=r"name=.* is not allowed: use 1-96 characters"):
        store.put(_model(), name)
    assert not (tmp_path / "store").exists()


def test_store_names_are_deterministic_and_entries_shareable(tmp_path):
    store = ModelStore(tmp_path / "store")
    first = store.put(_model(method="scratch"))
    assert store.default_name(_model(method="scratch")) == first  # an identical model, built again
    assert store.default_name(_model(weights_seed=1, method="scratch")) != first
    with pytest.raises(FileExistsError, match="exists; nothing was written"):
        store.put(_model(method="scratch"))
    mode = stat.S_IMODE(os.stat(store.path(first)).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not owner-only like a tempfile.mkdtemp directory
    (store.path(first) / "model.safetensors").write_bytes(b"broken")
    assert store.names() == [first]  # the config is intact; verify finds the damage
    with pytest.raises(CorruptArtifactError):
        verify_model(store.path(first))
    (store.root / "junk").mkdir()
    assert "junk" in store.broken()


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
