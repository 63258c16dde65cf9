"""`rewardshare envs` lists every registered ID."""

from __future__ import annotations

from typer.testing import CliRunner

from rewardshare.cli import app
from rewardshare.envs import ENV_IDS


def test_envs_command_lists_every_id_and_the_arguments() -> None:
    result = CliRunner().invoke(app, ["envs"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for env_id in ENV_IDS:
        assert any(env_id in line for line in lines), env_id
    assert "layout='four_rooms', size=9" in result.output
    for argument in ("obs_mode", "observe_goal", "absorbing_goal", "layout_seed"):
        assert argument in result.output
