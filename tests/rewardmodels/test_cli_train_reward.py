"""`rewardshare train-reward`: dataset in, saved + stored model out, refusals with reasons."""

from __future__ import annotations

import numpy as np
from rm_data import TINY
from typer.testing import CliRunner

from rewardshare.cli import app
from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import ModelStore, load_model


def test_train_reward_saves_and_stores_a_model_with_provenance(tmp_path):
    data = collect_transitions(TINY, 200, seed=0)
    path = data.save(tmp_path / "labels.npz")
    runner = CliRunner()
    result = runner.invoke(app, [
        "train-reward", "--data", str(path), "--out", str(tmp_path / "m"), "--store", "tiny", "--store-root",
        str(tmp_path / "store"), "--tag", "cli", "--epochs", "40", "--lr", "0.003", "--hidden", "32,32",
        "--eval-tasks", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "EPIC" in result.output and "open-5x5/g4_4" in result.output
    model = load_model(tmp_path / "m")
    meta = model.metadata
    assert meta["method"] == "scratch" and meta["loss"] == "mse" and meta["tasks"] == [TINY.id]
    assert meta["feedback"]["kind"] == "transitions" and meta["feedback"]["budget"] == 200
    assert 0.0 <= meta["metrics"]["epic_median"] < 0.5
    stored = ModelStore(tmp_path / "store").find(tag="cli", task=TINY.id)
    assert [e.name for e in stored] == ["tiny"]
    obs = data.obs[:5]
    np.testing.assert_array_equal(ModelStore(tmp_path / "store").load("tiny").predict(obs, data.action[:5]),
                                  model.predict(obs, data.action[:5]))


def test_train_reward_refuses_bad_input(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["train-reward", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "no such dataset file" in missing.output
    path = collect_transitions(TINY, 20, seed=0).save(tmp_path / "labels.npz")
    no_target = runner.invoke(app, ["train-reward", "--data", str(path)])
    assert no_target.exit_code != 0 and "--out" in no_target.output
    bad_loss = runner.invoke(app, ["train-reward", "--data", str(path), "--out", str(tmp_path / "m"), "--loss", "l1"])
    assert bad_loss.exit_code == 2 and "--loss: 'l1' is not allowed: use auto | mse" in bad_loss.output
