"""Datasets: construction checks, selection operations, and the versioned file format."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rewardshare.artifacts import seal
from rewardshare.envs import TaskFamily
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError, InvalidArgumentError
from rewardshare.feedback import (
    FORMAT_VERSION,
    DatasetFormatError,
    Demonstrations,
    EnvOptions,
    FeedbackDataset,
    Preferences,
    Transitions,
    collect_demonstrations,
    collect_preferences,
    collect_transitions,
    load_dataset,
    read_header,
)

FAMILY = TaskFamily("four_rooms", 7)
TASKS = FAMILY.train[:3]


@pytest.fixture(scope="module")
def transitions() -> Transitions:
    return collect_transitions(TASKS, 300, coverage={"uniform": 0.5, "random": 0.5}, noise=0.1,
                               env=EnvOptions(obs_mode="onehot"))


@pytest.fixture(scope="module")
def preferences() -> Preferences:
    return collect_preferences(TASKS, 60, segment_length=4, beta=2.0,
                               env=EnvOptions(obs_mode="grid", observe_goal=True))


@pytest.fixture(scope="module")
def demonstrations() -> Demonstrations:
    return collect_demonstrations(TASKS, 12, noise_levels=(0.0, 0.5))


@pytest.fixture(params=["transitions", "preferences", "demonstrations"])
def dataset(request: pytest.FixtureRequest) -> FeedbackDataset:
    return request.getfixturevalue(request.param)


def test_shapes_and_repr(transitions: Transitions, preferences: Preferences, demonstrations: Demonstrations) -> None:
    assert transitions.obs_shape == (49,) and len(transitions) == 300
    assert preferences.obs_shape == (3, 7, 7) and preferences.segment_length == 4 and len(preferences) == 60
    assert demonstrations.obs_shape == (2,) and len(demonstrations) == 12
    assert repr(preferences).startswith("Preferences(n=60, obs_shape=(3, 7, 7), tasks=3")


def test_save_load_round_trips_exactly(dataset: FeedbackDataset, tmp_path: Path) -> None:
    path = dataset.save(tmp_path / "data.npz")
    for loaded in (type(dataset).load(path), load_dataset(path)):
        assert type(loaded) is type(dataset)
        assert loaded.equals(dataset)
        for name, arr in dataset.arrays().items():
            assert getattr(loaded, name).dtype == arr.dtype, name
    assert os.listdir(tmp_path) == ["data.npz"]  # the temp file was renamed, nothing left behind
    header = read_header(path)
    assert header["format_version"] == FORMAT_VERSION == 2 and header["kind"] == dataset.KIND
    assert header["checksum"].startswith("sha256:") and header["software"]["torch"]
    meta = header["provenance"]
    for key in ("env_id", "env_kwargs", "tasks", "teachers", "coverage", "seed", "budget_spent", "package_version"):
        assert key in meta, key
    assert meta["budget_spent"] == sum(t["spent"] for t in meta["teachers"])
    assert all(len(rec["sha256"]) == 64 for rec in header["fields"].values())


def test_loading_the_wrong_kind_names_the_right_loader(preferences: Preferences, tmp_path: Path) -> None:
    path = preferences.save(tmp_path / "prefs.npz")
    with pytest.raises(DatasetFormatError, match=r"prefs.npz: holds a 'preferences' dataset, not 'transitions'"):
        Transitions.load(path)


def rewrite(src: Path, dst: Path, header_patch: dict | None = None, arrays_patch: dict | None = None,
            drop: tuple[str, ...] = (), reseal: bool = True) -> Path:
    """Copy a dataset file with a patched header and/or arrays (as a tampering or buggy writer would). With
    ``reseal`` the header's checksum is recomputed (a careful tamperer), else left as it was."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["__header__"].tobytes())
    header.update(header_patch or {})
    arrays.update(arrays_patch or {})
    for name in drop:
        arrays.pop(name)
    if reseal:
        header = seal(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


def test_future_version_is_refused_with_both_numbers(transitions: Transitions, tmp_path: Path) -> None:
    path = rewrite(transitions.save(tmp_path / "a.npz"), tmp_path / "v99.npz", {"format_version": 99})
    with pytest.raises(IncompatibleArtifactError, match=r"v99.npz: feedback dataset format version 99 \(written by "
                       r"rewardshare .*\) is newer than this rewardshare .* reads \(format version 2\): upgrade"):
        load_dataset(path)


def test_version_1_files_still_load(transitions: Transitions, tmp_path: Path) -> None:
    arrays = dict(transitions.arrays())
    header = {"format": "rewardshare.feedback", "format_version": 1, "kind": "transitions", "package_version": "0.1.0",
              "fields": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
              "metadata": transitions.metadata}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(tmp_path / "v1.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    assert load_dataset(tmp_path / "v1.npz").equals(transitions)


def test_edits_after_saving_are_detected(transitions: Transitions, tmp_path: Path) -> None:
    src = transitions.save(tmp_path / "t.npz")
    meta = {**transitions.metadata, "env_id": "rewardshare/GridGoal-Maze-v0"}
    edited = rewrite(src, tmp_path / "edited.npz", {"provenance": meta}, reseal=False)
    with pytest.raises(CorruptArtifactError, match=r"edited.npz: the header's checksum .* does not match its content"):
        load_dataset(edited)
    flipped = transitions.label.copy()
    flipped[0] = -flipped[0] + 1
    relabelled = rewrite(src, tmp_path / "relabelled.npz", arrays_patch={"label": flipped}, reseal=False)
    with pytest.raises(CorruptArtifactError, match=r"relabelled.npz: field 'label' does not match the sha256"):
        load_dataset(relabelled)


def test_a_npy_file_or_a_directory_is_not_a_dataset(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(IncompatibleArtifactError, match=r"x.npy: a single numpy array \(.npy\), not a rewardshare "
                                                        "feedback dataset"):
        load_dataset(tmp_path / "x.npy")
    (tmp_path / "x.txt").write_text("labels")
    with pytest.raises(IncompatibleArtifactError, match=r"x.txt: not a rewardshare feedback dataset \(not an .npz"):
        load_dataset(tmp_path / "x.txt")
    with pytest.raises(IncompatibleArtifactError, match="is a directory: give a dataset .npz file"):
        load_dataset(tmp_path)


def test_sizes_are_checked_before_decompressing(transitions: Transitions, tmp_path: Path) -> None:
    src = transitions.save(tmp_path / "t.npz")
    # a small file whose 'label' entry expands to 40 MB while the header still declares 300 floats
    bomb = rewrite(src, tmp_path / "bomb.npz", arrays_patch={"label": np.zeros(10_000_000, np.float32)}, reseal=False)
    with np.load(src) as npz:
        header = json.loads(npz["__header__"].tobytes())
    header["fields"]["label"]["shape"] = [300]
    with np.load(bomb) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(bomb, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(CorruptArtifactError, match=r"bomb.npz: entry 'label' expands to 40000128 bytes but the header "
                                                   r"records shape \[300\] .* refused before decompressing"):
        load_dataset(bomb)
    with pytest.raises(CorruptArtifactError, match=r"t.npz: the arrays declare \d+ bytes uncompressed, over the limit "
                                                   "of max_bytes=1000"):
        load_dataset(src, max_bytes=1000)


def test_truncated_file_is_refused(demonstrations: Demonstrations, tmp_path: Path) -> None:
    path = demonstrations.save(tmp_path / "d.npz")
    raw = path.read_bytes()
    for cut in (len(raw) // 3, len(raw) - 10):
        short = tmp_path / f"cut{cut}.npz"
        short.write_bytes(raw[:cut])
        with pytest.raises(DatasetFormatError, match=rf"cut{cut}.npz: cannot read the dataset, the file is truncated"):
            load_dataset(short)


@pytest.mark.parametrize("member", ["label.npy", "obs.npy", "__header__.npy"])
def test_corrupted_file_is_refused(transitions: Transitions, tmp_path: Path, member: str) -> None:
    path = transitions.save(tmp_path / "t.npz")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo(member)
    # the member's data starts after its 30-byte local header, file name and extra field
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    middle = start + info.compress_size // 2
    raw[middle : middle + 4] = bytes(b ^ 0xFF for b in raw[middle : middle + 4])
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match=r"corrupt.npz: cannot read the dataset, .*corrupted"):
        Transitions.load(bad)


def test_mismatched_files_are_refused(transitions: Transitions, tmp_path: Path) -> None:
    src = transitions.save(tmp_path / "t.npz")
    short_label = rewrite(src, tmp_path / "short.npz", arrays_patch={"label": transitions.label[:-1]})
    with pytest.raises(DatasetFormatError, match=r"short.npz: field 'label' has dtype <f4 and shape \[299\] but the "
                                                 r"header records"):
        load_dataset(short_label)
    # header and arrays agree with each other but not with the schema
    fields = read_header(src)["fields"]
    fields["label"]["shape"] = [299]
    both = rewrite(src, tmp_path / "both.npz", {"fields": fields}, {"label": transitions.label[:-1]})
    with pytest.raises(DatasetFormatError, match=r"both.npz: field 'label' does not match the sha256"):
        load_dataset(both)
    fields["label"]["sha256"] = hashlib.sha256(transitions.label[:-1].tobytes()).hexdigest()
    both = rewrite(src, tmp_path / "both.npz", {"fields": fields}, {"label": transitions.label[:-1]})
    with pytest.raises(CorruptArtifactError, match=r"both.npz: arrays fail the 'transitions' schema: .*'label'"):
        load_dataset(both)
    missing = rewrite(src, tmp_path / "missing.npz", drop=("done",))
    with pytest.raises(DatasetFormatError, match=r"missing.npz: fields do not match the 'transitions' schema: "
                                                 r"missing \['done'\]"):
        load_dataset(missing)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    with pytest.raises(DatasetFormatError, match="plain.npz: not a rewardshare feedback dataset"):
        load_dataset(plain)
    other = rewrite(src, tmp_path / "other.npz", {"format": "someone.else"})
    with pytest.raises(DatasetFormatError, match="other.npz: not a rewardshare feedback dataset"):
        load_dataset(other)
    with pytest.raises(FileNotFoundError, match="nothere.npz: no such dataset file"):
        load_dataset(tmp_path / "nothere.npz")


def test_metadata_must_be_json(transitions: Transitions, tmp_path: Path) -> None:
    bad = transitions.select(np.arange(3))
    bad.metadata["oops"] = object()
    with pytest.raises(TypeError, match="metadata is not JSON-serializable"):
        bad.save(tmp_path / "x.npz")
    with pytest.raises(InvalidArgumentError, match="metadata is not JSON-serializable"):
        bad.save(tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())
    bad.metadata["oops"] = 1
    bad.save(tmp_path / "x.npz")
    with pytest.raises(FileExistsError, match="x.npz exists: nothing was written; pass overwrite=True"):
        bad.save(tmp_path / "x.npz", overwrite=False)


def test_constructor_checks_lengths_shapes_and_dtypes(transitions: Transitions) -> None:
    arrays = transitions.arrays()
    with pytest.raises(ValueError, match=r"field 'label' has shape \(299,\)"):
        Transitions(**{**arrays, "label": arrays["label"][:-1]})
    with pytest.raises(ValueError, match=r"field 'next_obs' has shape"):
        Transitions(**{**arrays, "next_obs": arrays["next_obs"][:, :-1]})
    with pytest.raises(TypeError, match="action has dtype float64: use an integer array"):
        Transitions(**{**arrays, "action": arrays["action"].astype(float)})
    with pytest.raises(TypeError, match="task_id has dtype int64: use strings"):
        Transitions(**{**arrays, "task_id": np.zeros(len(transitions), dtype=np.int64)})


def test_subsample_split_select(dataset: FeedbackDataset) -> None:
    n = len(dataset)
    sub = dataset.subsample(5, seed=1)
    assert len(sub) == 5 and sub.equals(dataset.subsample(5, seed=1))
    assert not sub.equals(dataset.subsample(5, seed=2))
    assert sub.metadata["history"][-1] == {"op": "subsample", "k": 5, "seed": 1}
    with pytest.raises(ValueError, match=rf"k={n + 1} is not allowed: use an int in 0..{n}"):
        dataset.subsample(n + 1)
    a, b = dataset.split(0.75, seed=0)
    assert len(a) + len(b) == n and len(a) == round(0.75 * n)
    with pytest.raises(ValueError, match=r"fraction=1.0 is not allowed: use a float in \(0, 1\)"):
        dataset.split(1.0)
    first, last = dataset.select(np.array([0])), dataset.select(np.arange(n) == n - 1)
    with pytest.raises(ValueError, match=rf"boolean mask needs shape \({n},\)"):
        dataset.select(np.ones(n + 1, dtype=bool))
    with pytest.raises(ValueError, match="out of range"):
        dataset.select(np.array([n]))
    assert len(first) == len(last) == 1


def test_split_parts_are_disjoint_and_complete(transitions: Transitions) -> None:
    a, b = transitions.split(0.8, seed=3)
    key = lambda d: {  # noqa: E731
        (tuple(p), int(x), i) for p, x, i in zip(d.agent_pos.tolist(), d.action, d.label.view(np.int32), strict=True)
    }
    assert key(a) | key(b) == key(transitions)
    assert len(key(a)) + len(key(b)) == len(key(transitions))


def test_concatenate_and_by_task(dataset: FeedbackDataset) -> None:
    parts = dataset.by_task()
    assert list(parts) == [t.id for t in TASKS]
    for tid, part in parts.items():
        assert set(part.task_ids) == {tid}
    joined = type(dataset).concatenate(list(parts.values()))
    assert len(joined) == len(dataset)
    for name, arr in dataset.arrays().items():
        assert np.array_equal(getattr(joined, name), arr), name  # by_task order = collection order here
    assert joined.metadata["budget_spent"] == sum(p.metadata["budget_spent"] for p in parts.values())
    assert len(joined.metadata["parts"]) == len(parts)


def test_concatenate_refuses_mixed_kinds_and_shapes(transitions: Transitions, preferences: Preferences) -> None:
    with pytest.raises(TypeError, match="cannot concatenate a Preferences into Transitions"):
        Transitions.concatenate([transitions, preferences])  # type: ignore[list-item]
    coords = collect_transitions(TASKS[0], 10)
    with pytest.raises(ValueError, match="field 'obs' has different shapes"):
        Transitions.concatenate([transitions, coords])
    with pytest.raises(ValueError, match="datasets=\\[\\] is not allowed"):
        Transitions.concatenate([])


def test_demonstrations_items_are_whole_episodes(demonstrations: Demonstrations) -> None:
    episodes = list(demonstrations.episodes())
    assert len(episodes) == len(demonstrations) == 12
    assert demonstrations.n_steps == sum(len(e.action) for e in episodes)
    pick = demonstrations.select(np.array([5, 2]))
    assert pick.episode.tolist() == [0] * len(episodes[5].action) + [1] * len(episodes[2].action)
    for got, want in zip(pick.episodes(), (episodes[5], episodes[2]), strict=True):
        assert np.array_equal(got.obs, want.obs) and np.array_equal(got.action, want.action)
        assert (got.task_id, got.episode_return, got.demonstrator_noise) == (
            want.task_id, want.episode_return, want.demonstrator_noise)
    arrays = demonstrations.arrays()
    broken = arrays["episode"].copy()
    broken[-1] = 0  # the last step no longer belongs with its episode
    with pytest.raises(ValueError, match="field 'episode' must number"):
        Demonstrations(**{**arrays, "episode": broken})
