"""The command line as a new user meets it: --version, the collect -> train-reward -> train-agent chain on every
layout without repeating what the files know, the models commands, and output that stays readable when piped."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import rewardshare
from rewardshare.agents import LearningCurve
from rewardshare.cli import app
from rewardshare.rewardmodels import ModelStore, load_model

runner = CliRunner()
AGENT = ["--timesteps", "200", "--eval-every", "100", "--eval-episodes", "1", "--n-envs", "2", "--set", "n_steps=50",
         "--set", "batch_size=50"]


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_version():
    assert invoke("--version").strip() == f"rewardshare {rewardshare.__version__}"


@pytest.mark.parametrize(("env_id", "task_id"), [
    ("rewardshare/GridGoal-v0", "open-8x8/g3_5"),
    ("rewardshare/GridGoal-FourRooms-v0", "four_rooms-9x9/g1_7"),
    ("rewardshare/GridGoal-Maze-v0", "maze-9x9-s0/g8_8"),
])
def test_chain_works_on_every_layout_from_what_the_files_know(tmp_path, env_id, task_id):
    data, model, curve = tmp_path / "labels.npz", tmp_path / "model", tmp_path / "curve.json"
    invoke("collect", "--env-id", env_id, "--task-id", task_id, "--kind", "labels", "--budget", "100", "--out", data,
           "--obs-mode", "onehot")
    invoke("train-reward", "--data", data, "--out", model, "--epochs", "2", "--eval-tasks", "1")
    assert load_model(model).metadata["env_id"] == env_id
    invoke("train-agent", "--reward", model, "--out", curve, *AGENT)  # no --env-id, --goal or --obs-mode
    meta = LearningCurve.load(curve).metadata
    assert meta["task"]["id"] == task_id and meta["env_kwargs"]["obs_mode"] == "onehot"
    card = (model / "README.md").read_text()
    assert f"a learned reward model for {env_id}" in card and f"`{task_id}`" in card


def test_a_multi_task_model_trains_an_agent_on_the_goal_given(tmp_path):
    data, model = tmp_path / "labels.npz", tmp_path / "model"
    invoke("collect", "--env-id", "rewardshare/GridGoal-FourRooms-v0", "--kind", "labels", "--budget", "200",
           "--out", data)
    invoke("train-reward", "--data", data, "--out", model, "--epochs", "1", "--eval-tasks", "0")
    refused = runner.invoke(app, ["train-agent", "--reward", str(model), *AGENT])
    assert refused.exit_code == 2 and "was trained on 51 tasks" in refused.output
    invoke("train-agent", "--reward", model, "--goal", "1,7", "--out", tmp_path / "c.json", *AGENT)
    assert LearningCurve.load(tmp_path / "c.json").metadata["task"]["id"] == "four_rooms-9x9/g1_7"


def test_models_list_show_verify_export(tmp_path):
    data = tmp_path / "labels.npz"
    store = tmp_path / "store"
    invoke("collect", "--task-id", "open-8x8/g3_5", "--kind", "labels", "--budget", "50", "--out", data)
    invoke("train-reward", "--data", data, "--store", "open-g3-5", "--store-root", store, "--tag", "demo",
           "--epochs", "1")
    listing = invoke("models", "list", "--store-root", store)
    assert "open-g3-5" in listing and "scratch" in listing
    # piped (CliRunner is no terminal): one unfolded tab-separated line per model, greppable
    row = next(line for line in listing.splitlines() if line.startswith("open-g3-5\t")).split("\t")
    assert row[1:5] == ["scratch", "rewardshare/GridGoal-v0", "open-8x8/g3_5", "demo"] and row[6] == "v2"
    card = invoke("models", "show", "open-g3-5", "--store-root", store)
    assert "## Intended use" in card and "## Limits" in card and "| training seed | 0 |" in card
    config = json.loads(invoke("models", "show", "open-g3-5", "--store-root", store, "--json"))
    assert config["format_version"] == 2 and config["provenance"]["tags"] == ["demo"]
    assert "ok open-g3-5: format v2" in invoke("models", "verify", "--store-root", store)
    out = tmp_path / "hub"
    invoke("models", "export", "open-g3-5", "--store-root", store, "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert load_model(out).metadata["tasks"] == ["open-8x8/g3_5"]
    # a stored model is replaced only when asked
    again = runner.invoke(app, ["train-reward", "--data", str(data), "--store", "open-g3-5", "--store-root",
                                str(store), "--epochs", "1"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    invoke("train-reward", "--data", data, "--store", "open-g3-5", "--store-root", store, "--epochs", "1",
           "--overwrite", "--seed", "1")
    assert ModelStore(store).load("open-g3-5").metadata["seed"] == 1


def test_progress_is_one_line_per_stage_when_piped(tmp_path):
    # CliRunner's stderr is no terminal: what a user sees in `rewardshare ... 2>&1 | tee log`
    result = runner.invoke(app, ["collect", "--task-id", "open-8x8/g3_5", "--kind", "labels", "--budget", "50",
                                 "--out", str(tmp_path / "d.npz")])
    assert result.exit_code == 0 and "\r" not in result.output
    assert re.search(r"collect: collecting 50 labels for 1 task\(s\) of open-8x8/all \(at \d+\.\ds\)", result.output)
    result = runner.invoke(app, ["train-agent", "--reward", "teacher", "--goal", "3,5", *AGENT])
    assert result.exit_code == 0 and "\r" not in result.output
    assert re.findall(r"train-agent ppo on open-8x8/g3_5: (\d+)% \(\d+/200 steps", result.output)[-1] == "100"


def test_rounding_of_timesteps_and_unspent_budget_are_stated(tmp_path):
    result = runner.invoke(app, ["train-agent", "--reward", "teacher", "--goal", "3,5", "--timesteps", "150",
                                 "--eval-every", "100", "--eval-episodes", "1", "--n-envs", "2", "--set", "n_steps=50",
                                 "--set", "batch_size=50", "--no-progress"])
    assert result.exit_code == 0
    assert "note: ppo trains in rollouts of n_steps x n_envs = 50 x 2 = 100 env steps, so --timesteps 150 trains " \
           "200 steps" in result.output
    demos = runner.invoke(app, ["collect", "--kind", "demos", "--budget", "500", "--env-id",
                                "rewardshare/GridGoal-FourRooms-v0", "--out", str(tmp_path / "d.npz"),
                                "--no-progress"])
    assert demos.exit_code == 0
    spent = int(re.search(r"budget spent (\d+) of 500", demos.output).group(1))
    assert spent == 500 or "demonstrations are whole episodes" in demos.output


def test_train_agent_serves_a_done_reading_model_potential_shaped(tmp_path):
    data, model, curve = tmp_path / "labels.npz", tmp_path / "model", tmp_path / "curve.json"
    invoke("collect", "--env-id", "rewardshare/GridGoal-FourRooms-v0", "--task-id", "four_rooms-9x9/g1_7", "--kind",
           "labels", "--budget", "100", "--out", data)
    invoke("train-reward", "--data", data, "--out", model, "--epochs", "2", "--eval-tasks", "1", "--use-done")
    assert load_model(model).use_done
    invoke("train-agent", "--reward", model, "--shaping", "potential", "--out", curve, *AGENT)
    assert LearningCurve.load(curve).metadata["reward_options"]["shaping"] == "potential"


@pytest.mark.parametrize(("args", "message"), [
    (["--shaping", "cycles"], "--shaping"),
    (["--uncertainty", "optimistic"], "--uncertainty"),
    (["--beta", "2"], "--beta only together with --uncertainty pessimistic"),
    (["--uncertainty", "pessimistic", "--beta", "-1"], "--beta"),
    (["--shaping", "potential"], "a saved reward model directory with --uncertainty or --shaping"),
])
def test_train_agent_refuses_bad_reward_options(args, message):
    result = runner.invoke(app, ["train-agent", "--reward", "teacher", *args, *AGENT])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
