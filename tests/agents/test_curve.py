"""LearningCurve: columns, JSON/CSV round trips, and the artifact checks of saved curves (format version, seal,
column checksum, the files of rewardshare 0.1)."""

from __future__ import annotations

import json
import math

import pytest

from rewardshare import __version__
from rewardshare.agents import COLUMNS, CurveFormatError, LearningCurve
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError


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


def test_json_layout_is_a_sealed_artifact(tmp_path) -> None:
    c = _curve()
    data = json.loads(c.save(tmp_path / "c.json").read_text())
    assert data["format"] == "rewardshare.learning_curve" and data["format_version"] == 2
    assert data["kind"] == "learning_curve" and data["software"]["rewardshare"] == __version__
    assert data["provenance"] == c.metadata and data["n_evaluations"] == 3
    assert data["checksum"].startswith("sha256:") and len(data["columns_sha256"]) == 64
    assert list(data["columns"]) == list(COLUMNS)
    assert data["columns"]["success_rate"][2] is None  # NaN is written as null (strict JSON)
    csv_header = json.loads((c.save(tmp_path / "c.csv")).read_text().partition("\n")[0][2:])
    assert csv_header == {k: v for k, v in data.items() if k != "columns"}  # one header for both layouts


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_newer_format_is_refused_with_both_versions(tmp_path, suffix: str) -> None:
    path = _curve().save(tmp_path / f"c{suffix}")
    path.write_text(path.read_text().replace('"format_version": 2', '"format_version": 99', 1))
    with pytest.raises(IncompatibleArtifactError, match=r"learning curve format version 99 \(written by rewardshare "
                                                        r".*\) is newer than this rewardshare .* reads \(format "
                                                        r"version 2\): upgrade rewardshare"):
        LearningCurve.load(path)


def _edit_json(path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["columns"]["true_return"].__setitem__(1, 0.75),
         r"the columns' checksum does not match the header .*: the values were edited or damaged"),
        (lambda d: d["provenance"].__setitem__("seed", 4), r"the header's checksum .* does not match its content"),
        (lambda d: [d["columns"][c].pop() for c in COLUMNS], r"2 evaluations, but 3 were saved: the file is truncated"),
        (lambda d: d["columns"]["timesteps"].__setitem__(0, "soon"), r"the columns are damaged"),
        (lambda d: d["columns"].pop("wall_time"), r"the columns must be exactly"),
        (lambda d: d["columns"]["wall_time"].pop(), r"the columns are damaged \(.*different lengths"),
    ],
    ids=["value", "provenance", "truncated", "not-a-number", "missing-column", "ragged"],
)
def test_a_corrupt_json_curve_is_refused_with_the_reason(tmp_path, edit, match) -> None:
    path = _curve().save(tmp_path / "c.json")
    _edit_json(path, edit)
    with pytest.raises(CorruptArtifactError, match=match):
        LearningCurve.load(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda text: text.replace("\n512,0.5,", "\n512,0.25,"), r"the columns' checksum does not match"),
        (lambda text: text.rsplit("\n", 2)[0] + "\n", r"2 evaluations, but 3 were saved"),
        (lambda text: text.replace("\n512,", "\nhalf,"), r"the columns are damaged"),
        (lambda text: text.replace("\n512,", "\n"), r"line 4 has 6 fields, expected 7"),
        (lambda text: text.replace('"kind": "learning_curve"', '"kind": "learning_curve" x'),
         r"the header line is not JSON"),
    ],
    ids=["value", "truncated", "not-a-number", "short-row", "header"],
)
def test_a_corrupt_csv_curve_is_refused_with_the_reason(tmp_path, edit, match) -> None:
    path = _curve().save(tmp_path / "c.csv")
    path.write_text(edit(path.read_text()))
    with pytest.raises(CorruptArtifactError, match=match):
        LearningCurve.load(path)


def test_curve_files_of_rewardshare_0_1_still_load(tmp_path) -> None:
    """Version 1 files: no kind, no checksums, the metadata under "metadata" (as rewardshare 0.1 wrote them)."""
    old = {"format": "rewardshare.learning_curve", "format_version": 1, "rewardshare_version": "0.1.0",
           "metadata": {"algo": "dqn", "seed": 1}}
    cols = {"timesteps": [0, 256], "success_rate": [0.0, None], "true_return": [0.0, 1.0],
            "true_return_std": [0.0, 0.0], "learned_return": [-1.0, 2.5], "episode_length": [50.0, 7.0],
            "wall_time": [0.0, 0.5]}
    (tmp_path / "old.json").write_text(json.dumps({**old, "columns": cols}))
    (tmp_path / "old.csv").write_text("# " + json.dumps(old) + "\n" + ",".join(COLUMNS) + "\n"
                                      "0,0.0,0.0,0.0,-1.0,50.0,0.0\n256,nan,1.0,0.0,2.5,7.0,0.5\n")
    for name in ("old.json", "old.csv"):
        curve = LearningCurve.load(tmp_path / name)
        assert curve.metadata == {"algo": "dqn", "seed": 1} and curve.timesteps == [0, 256]
        assert math.isnan(curve.success_rate[1]) and curve.learned_return == [-1.0, 2.5]


def test_bad_files(tmp_path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(IncompatibleArtifactError, match=r"not a rewardshare learning curve"):
        LearningCurve.load(p)
    p.write_text("not json")
    with pytest.raises(CorruptArtifactError, match=r"not JSON"):
        LearningCurve.load(p)
    with pytest.raises(CorruptArtifactError, match=r"over the limit of 4 bytes"):
        LearningCurve.load(p, max_bytes=4)
    with pytest.raises(FileNotFoundError, match=r"no such file"):
        LearningCurve.load(tmp_path / "missing.json")
    q = tmp_path / "x.csv"
    q.write_text("timesteps,success_rate\n1,2\n")
    with pytest.raises(IncompatibleArtifactError, match=r"no '# ' header line"):
        LearningCurve.load(q)
    with pytest.raises(ValueError, match=r"use a .json or .csv file name"):
        _curve().save(tmp_path / "c.txt")
    # the 0.1 name still catches every problem of a curve file
    assert issubclass(IncompatibleArtifactError, CurveFormatError) and issubclass(CorruptArtifactError,
                                                                                   CurveFormatError)


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
