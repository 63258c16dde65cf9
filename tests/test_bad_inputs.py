"""Bad input, as a new user would give it, through the CLI and the library: every case is refused before any work
with exit code 2 (CLI) or a RewardShareError (library), a message naming what is wrong and what is allowed, no
traceback, and nothing on disk changed (no partial file, no overwritten model or dataset).

Run as a script to regenerate the table in ``docs/bad_inputs.md`` from these very cases::

    .venv/bin/python tests/test_bad_inputs.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardshare.agents import LearningCurve
from rewardshare.artifacts import seal
from rewardshare.cli import app
from rewardshare.envs import TaskFamily
from rewardshare.errors import CorruptArtifactError, IncompatibleArtifactError, InvalidArgumentError
from rewardshare.experiments import ResultStore, get_profile
from rewardshare.feedback import CollectionOptions, EnvOptions, collect_transitions, load_dataset
from rewardshare.rewardmodels import ModelStore, RewardModel, load_model, provenance

OPEN = "rewardshare/GridGoal-v0"
FOUR_ROOMS = "rewardshare/GridGoal-FourRooms-v0"


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` (``{ws}`` is the workspace directory) and the message expected."""

    what: str
    args: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class LibCase:
    """One bad library call: ``call(ws)`` must raise ``error`` with ``message``."""

    what: str
    code: str
    call: Callable[[Path], object]
    error: type[BaseException]
    message: str


def _reseal(path: Path, change: Callable[[dict], None], reseal: bool = True) -> None:
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(seal(config) if reseal else config))


def make_workspace(ws: Path) -> Path:
    """Files a user could have made: datasets, models (sound and damaged), a store, a results dir, own notes."""
    task = TaskFamily("open", 8).task("open-8x8/g3_5")
    options = CollectionOptions(env_id=OPEN)
    one = collect_transitions(task, 40, seed=0, env=EnvOptions(), options=options)
    one.save(ws / "labels.npz")
    one.save(ws / "existing.npz")
    family = TaskFamily("four_rooms", 9)
    multi = collect_transitions(family.train[:3], 30, seed=0, options=CollectionOptions(env_id=FOUR_ROOMS))
    multi.save(ws / "multi.npz")
    env = task.make_env()
    model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=0,
                        metadata=provenance(one, method="scratch", seed=0))
    model.save(ws / "model")
    for name in ("corrupt", "future", "edited", "escape"):
        model.save(ws / name)
    weights = bytearray((ws / "corrupt" / "model.safetensors").read_bytes())
    weights[-2] ^= 0xFF
    (ws / "corrupt" / "model.safetensors").write_bytes(bytes(weights))
    _reseal(ws / "future", lambda c: c.update(format_version=99))
    _reseal(ws / "edited", lambda c: c["provenance"].update(tasks=["open-8x8/g7_7"]), reseal=False)
    _reseal(ws / "escape", lambda c: c["weights"].update(file="../labels.npz"))
    four = family.make_env(family.train[0])
    RewardModel(four.observation_space, four.action_space, hidden_sizes=(8,), seed=0,
                metadata=provenance(multi, method="scratch", seed=0)).save(ws / "multi-model")
    ModelStore(ws / "store").put(model, "taken")
    (ws / "notes").mkdir()
    (ws / "notes" / "todo.txt").write_text("my own notes")
    (ws / "curve.json").write_text("{}")
    np.save(ws / "x.npy", np.zeros(3))
    # a zip bomb: 'label' expands to 40 MB while the header declares 40 floats
    with np.load(ws / "labels.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["label"] = np.zeros(10_000_000, np.float32)
    with open(ws / "bomb.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    edited = {**arrays, "label": one.label}
    header = json.loads(arrays["__header__"].tobytes())
    header["provenance"]["env_id"] = FOUR_ROOMS  # edited, checksum not updated
    edited["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(ws / "edited.npz", "wb") as fh:
        np.savez_compressed(fh, **edited)
    ResultStore(ws / "results", get_profile("smoke", seeds=(0, 1))).init()
    curve = LearningCurve(metadata={"algo": "ppo", "seed": 0})
    for t in (0, 256):
        curve.append(timesteps=t, success_rate=t / 256, true_return=0.5, true_return_std=0.0, learned_return=1.0,
                     episode_length=9.0, wall_time=0.1)
    future = curve.save(ws / "future_curve.json")
    future.write_text(future.read_text().replace('"format_version": 2', '"format_version": 99'))
    edited_curve = curve.save(ws / "edited_curve.csv")
    edited_curve.write_text(edited_curve.read_text().replace("\n256,1.0,", "\n256,0.5,"))
    return ws


AGENT = ("train-agent", "--timesteps", "256", "--eval-every", "128", "--eval-episodes", "1", "--no-progress")
REWARD = ("train-reward", "--data", "{ws}/labels.npz", "--epochs", "1", "--no-progress")
COLLECT = ("collect", "--kind", "labels", "--budget", "10", "--no-progress", "--out")
BENCH = ("bench", "--profile", "smoke", "--no-progress", "--workers", "1", "--out", "{ws}/bench")

CASES: list[Case] = [
    # collect
    Case("collect: unknown feedback kind", ("collect", "--kind", "demo", "--budget", "10", "--out", "{ws}/n.npz"),
         r"--kind: 'demo' is not allowed: use labels \| preferences \| demos"),
    Case("collect: budget 0", (*COLLECT[:4], "0", *COLLECT[5:], "{ws}/n.npz"), r"--budget: 0 is not allowed: use an "
         "int >= 1"),
    Case("collect: negative label noise", (*COLLECT, "{ws}/n.npz", "--noise", "-1"), r"--noise: -1.0 is not "
         r"allowed: use a number in \[0.0, inf\]"),
    Case("collect: probability above 1", (*COLLECT, "{ws}/n.npz", "--flip-prob", "2"), r"--flip-prob: 2.0 is not "
         r"allowed: use a number in \[0.0, 1.0\]"),
    Case("collect: unknown coverage", (*COLLECT, "{ws}/n.npz", "--coverage", "everywhere"), r"--coverage: "
         r"'everywhere' is not allowed: use uniform \| random \| expert"),
    Case("collect: output in a missing directory", (*COLLECT, "{ws}/a/b/c.npz"), r"--out: .* is not allowed: use a "
         r"path in an existing directory: .*a/b' does not exist \(create it first\)"),
    Case("collect: output without .npz", (*COLLECT, "{ws}/n.txt"), r"--out: .* is not allowed: use a file name "
         r"ending in .npz"),
    Case("collect: output exists (no --force)", (*COLLECT, "{ws}/existing.npz"), r"--out: .* is not allowed: use a "
         r"path that does not exist yet, or add --force to overwrite it"),
    Case("collect: a non-rewardshare env id", (*COLLECT, "{ws}/n.npz", "--env-id", "CartPole-v1"),
         r"--env-id: 'CartPole-v1' is not allowed: use rewardshare/GridGoal-v0"),
    Case("collect: task not in the family", (*COLLECT, "{ws}/n.npz", "--task-id", "open-8x8/g9_9"),
         r"--task-id: task_id='open-8x8/g9_9' is not in family"),
    Case("collect: demonstrator noise not numbers", ("collect", "--kind", "demos", "--budget", "10", "--out",
                                                     "{ws}/n.npz", "--demo-noise", "a,b"),
         r"--demo-noise: 'a,b' is not allowed: use comma-separated numbers >= 0"),
    Case("collect: Bradley-Terry beta 0", ("collect", "--kind", "preferences", "--budget", "10", "--out",
                                           "{ws}/n.npz", "--beta", "0"), r"--beta: 0.0 is not allowed: use a number"),
    # train-reward
    Case("train-reward: a .npy file as data", ("train-reward", "--data", "{ws}/x.npy", "--out", "{ws}/m2"),
         r"x.npy: a single numpy array \(.npy\), not a rewardshare feedback dataset"),
    Case("train-reward: missing data file", ("train-reward", "--data", "{ws}/none.npz", "--out", "{ws}/m2"),
         r"none.npz: no such dataset file"),
    Case("train-reward: dataset that expands far past its header (zip bomb)",
         ("train-reward", "--data", "{ws}/bomb.npz", "--out", "{ws}/m2"),
         r"bomb.npz: entry 'label' expands to 40000128 bytes but the header records shape \[40\]"),
    Case("train-reward: dataset edited after saving", ("train-reward", "--data", "{ws}/edited.npz", "--out",
                                                       "{ws}/m2"), r"edited.npz: the header's checksum .* does not "
         "match its content"),
    Case("train-reward: store name with a path", (*REWARD, "--store", "../evil", "--store-root", "{ws}/store"),
         r"--store=.*'../evil' is not allowed: use 1-96 characters"),
    Case("train-reward: store name with a newline", (*REWARD, "--store", "two\nlines", "--store-root",
                                                     "{ws}/store"), r"'two\\nlines' is not allowed"),
    Case("train-reward: store name taken (no --overwrite)", (*REWARD, "--store", "taken", "--store-root",
                                                             "{ws}/store"),
         r"--store: 'taken' is not allowed: use a name not yet in .*, or add --overwrite"),
    Case("train-reward: --out holds a model (no --overwrite)", (*REWARD, "--out", "{ws}/model"),
         r"--out: .* is not allowed: use a new or empty directory, or add --overwrite"),
    Case("train-reward: --out holds the user's files", (*REWARD, "--out", "{ws}/notes", "--overwrite"),
         r"--out: .* is not allowed: use a new or empty directory \(it holds other files\)"),
    Case("train-reward: hidden sizes not ints", (*REWARD, "--out", "{ws}/m2", "--hidden", "64,abc"),
         r"--hidden: '64,abc' is not allowed: use comma-separated ints > 0"),
    Case("train-reward: learning rate 0", (*REWARD, "--out", "{ws}/m2", "--lr", "0"), r"--lr: 0.0 is not allowed"),
    Case("train-reward: validation fraction 1", (*REWARD, "--out", "{ws}/m2", "--val-fraction", "1"),
         r"--val-fraction: 1.0 is not allowed: use a number in \[0, 1\)"),
    Case("train-reward: unknown loss", (*REWARD, "--out", "{ws}/m2", "--loss", "l1"),
         r"--loss: 'l1' is not allowed: use auto \| mse \| bradley_terry \| trex \| maxent_irl"),
    # train-agent
    Case("train-agent: curve file of an unknown type", (*AGENT, "--out", "{ws}/curve.txt"),
         r"--out: .* is not allowed: use a file name ending in .json or .csv"),
    Case("train-agent: curve file exists (no --force)", (*AGENT, "--out", "{ws}/curve.json"),
         r"--out: .* is not allowed: use a path that does not exist yet, or add --force"),
    Case("train-agent: corrupt reward model", (*AGENT, "--reward", "{ws}/corrupt"),
         r"the weights do not match the sha256 recorded in config.json"),
    Case("train-agent: reward model of a future format", (*AGENT, "--reward", "{ws}/future"),
         r"reward model format version 99 \(written by rewardshare \S+\) is newer than this rewardshare \S+ reads "
         r"\(format version 2\): upgrade rewardshare"),
    Case("train-agent: reward model whose config was edited", (*AGENT, "--reward", "{ws}/edited"),
         r"config.json: the header's checksum .* does not match its content"),
    Case("train-agent: weights file outside the model directory", (*AGENT, "--reward", "{ws}/escape"),
         r"the file name '../labels.npz' is not a plain file name inside"),
    Case("train-agent: a directory that is not a model", (*AGENT, "--reward", "{ws}/notes"),
         r"notes/config.json: no such file; .*notes is not a saved reward model"),
    Case("train-agent: multi-task model without --goal", (*AGENT, "--reward", "{ws}/multi-model"),
         r"--goal: the reward model was trained on 3 tasks .* pick the one to train the agent on with --goal row,col"),
    Case("train-agent: hyperparameter not a number", (*AGENT, "--set", "learning_rate=abc"),
         r"--set: \"learning_rate='abc'\" is not allowed: use learning_rate=<a number>"),
    Case("train-agent: hyperparameter out of range", (*AGENT, "--set", "n_steps=0"),
         r"--set: 'n_steps=0' is not allowed: use n_steps in \[1, inf\]"),
    Case("train-agent: unknown hyperparameter", (*AGENT, "--set", "learning_rat=0.1"),
         r"use a ppo hyperparameter \(did you mean 'learning_rate'\?\)"),
    Case("train-agent: a device this machine lacks", (*AGENT, "--device", "tpu"),
         r"--device: 'tpu' is not allowed: use auto \| cpu \| cuda \| cuda:N \| mps"),
    Case("train-agent: goal not 'row,col'", (*AGENT, "--goal", "3"), r"--goal: '3' is not allowed: use 'row,col'"),
    Case("train-agent: goal on a wall", (*AGENT, "--env-id", FOUR_ROOMS, "--goal", "4,0"),
         r"--goal: '4,0' is not allowed: use a free cell 'row,col' .*not a wall"),
    Case("train-agent: 0 timesteps", ("train-agent", "--timesteps", "0"), r"--timesteps: 0 is not allowed: use an "
         "int >= 1"),
    # bench
    Case("bench --set: unknown layout", (*BENCH, "--set", "layout=spiral"), r"layout='spiral' is not allowed: use "
         r"one of \('open', 'four_rooms', 'maze'\)"),
    Case("bench --set: fraction out of range", (*BENCH, "--set", "held_out_fraction=5"),
         r"held_out_fraction=5 is not allowed: use a float in \(0, 1\)"),
    Case("bench --set: unknown observation mode", (*BENCH, "--set", "obs_mode=pixels"),
         r"obs_mode='pixels' is not allowed"),
    Case("bench --set: unknown teacher reward", (*BENCH, "--set", "teacher_reward=bogus"),
         r"teacher_reward='bogus' is not allowed: use one of \('dense', 'sparse'\)"),
    Case("bench --set: text for an int field", (*BENCH, "--set", "total_timesteps=abc"),
         r"total_timesteps='abc' is not allowed: use an int"),
    Case("bench --set: more held-out tasks than the family has", (*BENCH, "--set", "n_eval_tasks=50"),
         r"n_eval_tasks=50 is not allowed: family 'open-5x5/all' has \d+ held-out tasks"),
    Case("bench --set: a negative target budget k", (*BENCH, "--set", "ks=[-4,4]"),
         r"ks=\(-4, 4\) is not allowed: use ints >= 0 \(0 = zero-shot: no target feedback\)"),
    Case("bench --set: zero-shot (k=0) with scratch as the only reuse method",
         (*BENCH, "--set", "ks=[0,4]", "--set", 'methods=["scratch","true"]'),
         r"ks=\(0, 4\) is not allowed with methods=\('scratch', 'true'\): k=0 \(zero-shot\) needs a pre-trained "
         r"reuse method, and 'scratch' cannot predict without target feedback"),
    Case("bench: results directory of another config", ("bench", "--profile", "smoke", "--no-progress", "--out",
                                                        "{ws}/results"),
         r"holds results of another config .* differs in 1 field\(s\): seeds: \[0, 1\] there, \[0\] requested.* To "
         r"resume that run: rewardshare bench --profile smoke --set seeds=\[0,1\]"),
    Case("bench: --report-only on a missing directory", ("bench", "--report-only", "--out", "{ws}/nowhere"),
         r"nowhere is not a benchmark results directory \(no config.json\)"),
    Case("bench: unknown profile", ("bench", "--profile", "huge", "--out", "{ws}/bench"),
         r"--profile: 'huge' is not allowed: use smoke \| quick \| full"),
    Case("bench: 0 workers", ("bench", "--workers", "0", "--out", "{ws}/bench"), r"--workers: 0 is not allowed"),
    # models
    Case("models show: unknown name", ("models", "show", "nothing", "--store-root", "{ws}/store"),
         r"'nothing' is neither a directory nor a model in the store"),
    Case("models show: name with a newline", ("models", "show", "a\nb", "--store-root", "{ws}/store"),
         r"MODEL='a\\nb' is not allowed"),
    Case("models verify: damaged weights", ("models", "verify", "{ws}/corrupt"), r"FAILED corrupt: .*do not match "
         "the sha256"),
    Case("models export: into the user's own directory", ("models", "export", "{ws}/model", "--out", "{ws}/notes"),
         r"--out: .* is not allowed: use a new or empty directory \(it holds other files\)"),
]

LIB_CASES: list[LibCase] = [
    LibCase("load_dataset: a .npy file", "load_dataset('x.npy')", lambda ws: load_dataset(ws / "x.npy"),
            IncompatibleArtifactError, r"a single numpy array \(.npy\)"),
    LibCase("load_dataset: over the size limit", "load_dataset('labels.npz', max_bytes=100)",
            lambda ws: load_dataset(ws / "labels.npz", max_bytes=100), CorruptArtifactError,
            r"over the limit of max_bytes=100"),
    LibCase("load_model: future format version", "load_model('future')", lambda ws: load_model(ws / "future"),
            IncompatibleArtifactError, r"format version 99 .* \(format version 2\)"),
    LibCase("RewardModel.save: over a saved model", "model.save('model')",
            lambda ws: load_model(ws / "model").save(ws / "model"), FileExistsError,
            r"already holds a saved artifact: nothing was written; pass overwrite=True"),
    LibCase("ModelStore.put: name with a separator", "ModelStore('store').put(model, 'a/b')",
            lambda ws: ModelStore(ws / "store").put(load_model(ws / "model"), "a/b"), InvalidArgumentError,
            r"name='a/b' is not allowed"),
    LibCase("LearningCurve.load: future format version", "LearningCurve.load('future_curve.json')",
            lambda ws: LearningCurve.load(ws / "future_curve.json"), IncompatibleArtifactError,
            r"learning curve format version 99 \(written by rewardshare .*\) is newer than this rewardshare .* reads "
            r"\(format version 2\)"),
    LibCase("LearningCurve.load: a value edited after saving", "LearningCurve.load('edited_curve.csv')",
            lambda ws: LearningCurve.load(ws / "edited_curve.csv"), CorruptArtifactError,
            r"the columns' checksum does not match the header .*: the values were edited or damaged"),
    LibCase("get_profile: unknown layout", "get_profile('smoke', layout='spiral')",
            lambda ws: get_profile("smoke", layout="spiral"), InvalidArgumentError, r"layout='spiral' is not allowed"),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a digest of its bytes."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = ""
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def run_case(case: Case, ws: Path) -> tuple[int, str]:
    """Run one CLI case; returns the exit code and the output with line breaks and box characters flattened."""
    args = [a.replace("{ws}", str(ws)) for a in case.args]
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("ws"))


def test_there_are_enough_cases():
    assert len(CASES) + len(LIB_CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_cli_refuses_bad_input_before_any_work(case: Case, workspace: Path) -> None:
    before = snapshot(workspace)
    code, output = run_case(case, workspace)
    assert code == 2, output
    assert "Traceback" not in output
    assert re.search(case.message, output), output
    assert snapshot(workspace) == before  # nothing written, nothing lost


@pytest.mark.parametrize("case", LIB_CASES, ids=[c.what for c in LIB_CASES])
def test_library_refuses_bad_input(case: LibCase, workspace: Path) -> None:
    before = snapshot(workspace)
    with pytest.raises(case.error, match=case.message):
        case.call(workspace)
    assert snapshot(workspace) == before


def _shorten(text: str, ws: Path, limit: int = 230) -> str:
    text = text.replace(str(ws) + "/", "").replace(str(ws), ".")
    text = re.sub(r"Usage: .*? for help\. ", "", text).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_table(path: Path) -> int:
    """Run every case in a fresh workspace and write the Markdown table of what each input class gets."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp))
        rows = []
        for case in CASES:
            code, output = run_case(case, ws)
            args = " ".join(repr(a) if (" " in a or "\n" in a) else a for a in case.args).replace("{ws}/", "")
            rows.append(f"| {len(rows) + 1} | {case.what} | `rewardshare {args}` | exit {code} | "
                        f"{_shorten(output, ws)} |")
        for lib in LIB_CASES:
            try:
                lib.call(ws)
                got = "no error (!)"
            except Exception as exc:  # the table records whatever happened
                got = f"`{type(exc).__name__}`: {_shorten(str(exc), ws)}"
            rows.append(f"| {len(rows) + 1} | {lib.what} | `{lib.code}` | raises | {got} |")
    header = (
        "# Bad inputs and the errors they get\n\n"
        "Generated by `.venv/bin/python tests/test_bad_inputs.py` from the cases that `tests/test_bad_inputs.py` "
        "runs (each test also checks that nothing on disk changed: no partial file, no overwritten dataset or "
        "model). CLI errors exit with code 2 and print one message naming the option, the value and what is "
        "allowed; library errors are `rewardshare.errors` classes (all `ValueError`s except `FileExistsError`).\n\n"
        "| # | input class | what was run | result | message |\n| --- | --- | --- | --- | --- |\n"
    )
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
    target.parent.mkdir(exist_ok=True)
    print(f"{write_table(target)} rows -> {target}", file=sys.stderr)
