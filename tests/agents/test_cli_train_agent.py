"""`rewardshare train-agent`: a tiny run prints the curve and saves it; bad input exits with code 2."""

from __future__ import annotations

from typer.testing import CliRunner

from rewardshare.agents import LearningCurve
from rewardshare.cli import app

runner = CliRunner()
TINY = ["--timesteps", "256", "--eval-every", "128", "--eval-episodes", "2", "--n-envs", "2"]


def test_train_agent_tiny_run_writes_curve(tmp_path) -> None:
    out = tmp_path / "curve.json"
    res = runner.invoke(app, ["train-agent", "--env-id", "rewardshare/GridGoal-v0", "--goal", "2,3", "--reward",
                              "teacher", "--set", "n_steps=64", "--set", "batch_size=64", "--out", str(out),
                              *TINY])
    assert res.exit_code == 0, res.output
    assert "steps to 0.9 success" in res.output
    curve = LearningCurve.load(out)
    assert curve.timesteps == [0, 128, 256]
    assert curve.metadata["task"]["goal"] == [2, 3] and curve.metadata["agent_config"]["n_steps"] == 64


def test_train_agent_bad_input() -> None:
    res = runner.invoke(app, ["train-agent", "--algo", "sac", *TINY])
    assert res.exit_code == 2 and "--algo: 'sac' is not allowed: use ppo | dqn" in res.output
    res = runner.invoke(app, ["train-agent", "--timesteps", "0"])
    assert res.exit_code == 2 and "--timesteps: 0 is not allowed: use an int >= 1" in res.output
    res = runner.invoke(app, ["train-agent", "--reward", "no/such/dir"])
    assert res.exit_code == 2 and "saved model directory" in res.output
    res = runner.invoke(app, ["train-agent", "--env-id", "rewardshare/GridGoal-MultiGoal-v0"])
    assert res.exit_code == 2 and "--goal" in res.output


def test_train_agent_on_a_saved_model(tmp_path) -> None:
    from rewardshare.envs import GridGoalEnv
    from rewardshare.rewardmodels import RewardModel

    env = GridGoalEnv(size=8, obs_mode="onehot")
    RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=0).save(tmp_path / "m")
    res = runner.invoke(app, ["train-agent", "--reward", str(tmp_path / "m"), "--set", "n_steps=64", "--set",
                              "batch_size=64", "--out", str(tmp_path / "c.csv"), *TINY])
    assert res.exit_code == 0, res.output
    curve = LearningCurve.load(tmp_path / "c.csv")
    assert curve.metadata["reward"]["kind"] == "model"
    assert curve.metadata["env_kwargs"] == {"obs_mode": "onehot", "observe_goal": False}  # the model's obs mode
    res = runner.invoke(app, ["train-agent", "--reward", str(tmp_path / "m"), "--obs-mode", "coords", *TINY])
    assert res.exit_code == 2 and "does not fit" in res.output
