"""LearningCurve: columns, JSON/CSV round trips, format checks."""

from __future__ import annotations

import json
import math

import pytest

from rewardshare import __version__
from rewardshare.agents import COLUMNS, CurveFormatError, LearningCurve


def _curve() -> LearningCurve:
    c = LearningCurve(metadata={"algo": "ppo", "seed": 3, "task": {"goal": [1, 2]}})
    c.append(timesteps=0, success_rate=0.0, true_return=0.0, true_return_std=0.0, learned_return=-3.5,
             episode_length=100.0, wall_time=0.0)
    c.append(timesteps=512, success_rate=0.5, true_return=0.5, true_return_std=0.5, learned_return=1.25,
             episode_length=51.5, wall_time=0.1)
    c.append(timesteps=1024, success_rate=math.nan, true_return=1.0, true_return_std=0.0, learned_return=0.1 + 0.2,
             episode_length=4.0, wall_time=0.2)
    return c


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_is_exact(tmp_path, suffix: str) -> None:
    c = _curve()
    path = c.save(tmp_path / f"curve{suffix}")
    back = LearningCurve.load(path)
    assert back.same_values(c) and back.wall_time == c.wall_time
    assert back.learned_return[2] == 0.1 + 0.2  # floats survive exactly (repr in CSV)
    assert math.isnan(back.success_rate[2])
    assert back.metadata == c.metadata
    assert back.timesteps == [0, 512, 1024] and all(isinstance(t, int) for t in back.timesteps)


def test_json_layout_and_version(tmp_path) -> None:
    path = _curve().save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["format"] == "rewardshare.learning_curve" and data["format_version"] == 1
    assert data["rewardshare_version"] == __version__
    assert list(data["columns"]) == list(COLUMNS)
    assert data["columns"]["success_rate"][2] is None  # NaN is written as null (strict JSON)
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(CurveFormatError, match=r"format_version=99"):
        LearningCurve.load(path)


def test_bad_files(tmp_path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(CurveFormatError, match=r"not a rewardshare learning curve"):
        LearningCurve.load(p)
    p.write_text("not json")
    with pytest.raises(CurveFormatError, match=r"not JSON"):
        LearningCurve.load(p)
    q = tmp_path / "x.csv"
    q.write_text("timesteps,success_rate\n1,2\n")
    with pytest.raises(CurveFormatError, match=r"no '# ' header line"):
        LearningCurve.load(q)
    with pytest.raises(ValueError, match=r"use a .json or .csv file name"):
        _curve().save(tmp_path / "c.txt")


def test_helpers() -> None:
    c = _curve()
    assert len(c) == 3
    assert c.timesteps_to(0.5) == 512 and c.timesteps_to(0.9) is None
    assert math.isnan(c.final_success_rate)
    other = _curve()
    other.wall_time[1] = 9.0
    assert c.same_values(other)  # wall time is not compared
    other.true_return[1] = 0.25
    assert not c.same_values(other)
    with pytest.raises(ValueError, match=r"missing \['wall_time'\]"):
        c.append(timesteps=1, success_rate=0, true_return=0, true_return_std=0, learned_return=0, episode_length=1)
    with pytest.raises(ValueError, match=r"different lengths"):
        LearningCurve(timesteps=[1], success_rate=[])
