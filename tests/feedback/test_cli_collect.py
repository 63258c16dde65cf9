"""`rewardshare collect`: a smoke run per kind, and clear errors for bad arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardshare.cli import app
from rewardshare.envs import TaskFamily
from rewardshare.feedback import Demonstrations, Preferences, Transitions, load_dataset

FOUR_ROOMS = "rewardshare/GridGoal-FourRooms-v0"


@pytest.mark.parametrize(
    ("kind", "extra", "cls"),
    [
        ("labels", ["--coverage", "uniform=0.5,expert=0.5", "--noise", "0.1"], Transitions),
        ("preferences", ["--segment-length", "4", "--beta", "2"], Preferences),
        ("demos", ["--demo-noise", "0,0.2"], Demonstrations),
    ],
)
def test_collect_writes_a_dataset_for_the_split(tmp_path: Path, kind: str, extra: list[str], cls: type) -> None:
    out = tmp_path / f"{kind}.npz"
    args = ["collect", "--env-id", FOUR_ROOMS, "--split", "train", "--kind", kind, "--budget", "600", "--out",
            str(out), "--no-progress", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("collected ") and str(out) in lines[0]
    data = load_dataset(out)
    assert isinstance(data, cls)
    train = {t.id for t in TaskFamily("four_rooms", 9).train}
    assert set(data.task_ids) <= train
    assert data.metadata["env_id"] == FOUR_ROOMS and data.metadata["split"] == "train"
    assert data.metadata["budget_spent"] <= 600
    if kind != "demos":
        assert set(data.task_ids) == train and data.metadata["budget_spent"] == 600


def test_collect_one_task_and_refuse_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "one.npz"
    args = ["collect", "--kind", "labels", "--budget", "20", "--out", str(out), "--task-id", "open-8x8/g3_3",
            "--obs-mode", "onehot", "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    data = load_dataset(out)
    assert data.task_ids == ["open-8x8/g3_3"] and data.obs.shape == (20, 64)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kind", "demo"], "'demo' is not allowed: use labels | preferences | demos"),
        (["--kind", "labels", "--split", "test"], "'test' is not allowed: use train | held_out | all"),
        (["--kind", "labels", "--env-id", "CartPole-v1"], "'CartPole-v1' is not allowed"),
        (["--kind", "labels", "--obs-mode", "pixels"], "'pixels' is not allowed: use coords | onehot | grid"),
        (["--kind", "labels", "--coverage", "uniform=half"], "'uniform=half' is not allowed"),
        (["--kind", "labels", "--coverage", "everywhere"], "--coverage: 'everywhere' is not allowed: use uniform"),
        (["--kind", "labels", "--task-id", "nowhere"], "task_id='nowhere' is not in family"),
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["collect", "--budget", "10", "--out", str(tmp_path / "x.npz"), *args])
    assert result.exit_code == 2
    assert needle in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "x.npz").exists()
