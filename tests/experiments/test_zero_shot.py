"""k = 0 (zero-shot) in the learning-curve benchmark: the config accepts it, scratch is skipped at k = 0 (it cannot
predict without feedback), a tiny real sweep runs and reports zero-shot runs against scratch; and a prep unit
interrupted between saving an adapted model and writing its result resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardshare.cli import app
from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import ResultStore, get_profile, plan
from rewardshare.experiments.pipeline import execute_unit
from rewardshare.rewardmodels import load_model

ZERO = {"ks": [0, 4], "rl_ks": [0, 4], "methods": ["scratch", "transfer", "true"], "algos": ["ppo"]}


def _sets(overrides: dict) -> list[str]:
    return [arg for k, v in overrides.items() for arg in ("--set", f"{k}={json.dumps(v)}")]


# -- the config ----------------------------------------------------------------------------------------------------
def test_config_accepts_zero_and_names_the_field_for_a_bad_k():
    assert get_profile("smoke", ks=(0, 4)).ks == (0, 4)
    with pytest.raises(InvalidArgumentError, match=r"ks=\(-1, 4\) is not allowed: use ints >= 0 \(0 = zero-shot"):
        get_profile("smoke", ks=(-1, 4))
    with pytest.raises(InvalidArgumentError, match=r"ks=\(4, 0\) is not allowed: use distinct ints in increasing"):
        get_profile("smoke", ks=(4, 0))


def test_zero_shot_with_scratch_alone_is_refused_naming_scratch():
    with pytest.raises(InvalidArgumentError, match=r"ks=\(0, 4\) is not allowed with methods=\('scratch', 'true'\): "
                                                   r"k=0 \(zero-shot\) needs a pre-trained reuse method, and 'scratch'"
                                                   r" cannot predict without target feedback"):
        get_profile("smoke", ks=(0, 4), methods=("scratch", "true"))


def test_cli_refuses_a_bad_k_before_anything_runs(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--out", str(out), "--no-progress",
                                      "--set", "ks=[-4]"])
    assert result.exit_code == 2
    assert "ks=(-4,) is not allowed: use ints >= 0" in " ".join(result.output.split())
    assert not out.exists()


def test_plan_skips_scratch_at_k0_only():
    c = get_profile("smoke", **ZERO)
    units = plan(c, "/nowhere")
    targets = {u.params["method"]: {t["k"] for t in u.params["targets"]} for u in units if u.stage == "prep"}
    assert targets == {"scratch": {4}, "transfer": {0, 4}}
    runs = {(u.params["method"], u.params["k"]) for u in units if u.stage == "run"}
    assert runs == {("scratch", 4), ("transfer", 0), ("transfer", 4), ("true", 0)}


def test_a_zero_shot_unit_for_scratch_is_refused_with_the_method_named(tmp_path):
    c = get_profile("smoke", ks=(0,), rl_ks=(0,), methods=("scratch", "transfer"), algos=("ppo",))
    unit = {"id": "prep/scratch", "stage": "prep", "output": str(tmp_path / "prep" / "scratch.json"),
            "params": {"method": "scratch", "targets": [{"k": 0, "task_id": "open-5x5/g2_1", "seed": 0}]}}
    with pytest.raises(InvalidArgumentError, match=r"k=0 with method='scratch' is not allowed: scratch cannot "
                                                   r"predict zero-shot"):
        execute_unit(str(tmp_path), c.to_dict(), unit)


# -- a tiny real sweep ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zero_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero") / "smoke"
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--out", str(out), "--workers", "1",
                                      "--no-progress", *_sets(ZERO)])
    assert result.exit_code == 0, result.output
    return out


def test_zero_shot_models_are_the_unadapted_start_models(zero_dir):
    c = get_profile("smoke", **ZERO)
    store = ResultStore(zero_dir, c)
    task = plan(c, zero_dir)[-1].params["task_id"]
    rec = store.read(store.target_path("transfer", 0, task, 0))
    assert rec["epic"] == rec["epic_unadapted"] and rec["budget"]["steps"] == 0
    model = load_model(store.target_model_dir("transfer", 0, task, 0))
    assert model.metadata["reuse"]["n_target_items"] == 0 and model.metadata["feedback"]["n_items"] == 0
    assert not store.target_path("scratch", 0, task, 0).exists()
    assert not (zero_dir / "runs" / "ppo" / "scratch" / "k0").exists()
    assert not (zero_dir / "adapt" / "transfer" / "k0.json").exists()  # nothing to choose at k = 0


def test_the_report_compares_zero_shot_runs_with_scratch(zero_dir):
    agg = json.loads((zero_dir / "aggregate.json").read_text())
    zero = [e for e in agg["runs"] if e["method"] == "transfer" and e["k"] == 0]
    assert [e["scratch_k"] for e in zero] == [4] and zero[0]["speedup"] is not None
    assert not [e for e in agg["runs"] if e["method"] == "scratch" and e["k"] == 0]
    assert {(e["method"], e["k"]) for e in agg["epic"]} == {("scratch", 4), ("transfer", 0), ("transfer", 4)}
    report = (zero_dir / "report.md").read_text()
    assert "| ppo | transfer | 0 (zero-shot, vs scratch k=4) |" in report
    assert "k = 0 is zero-shot" in report and "scratch cannot predict without feedback" in report


# -- resuming a prep unit interrupted after a model was saved --------------------------------------------------------
def test_prep_resumes_after_an_interruption_between_model_and_result(tmp_path, monkeypatch):
    c = get_profile("smoke", methods=("scratch",), algos=("ppo",))
    unit = next(u for u in plan(c, tmp_path) if u.id == "prep/scratch")
    ResultStore(tmp_path, c).init()
    write = ResultStore.write

    def interrupted(self, path: Path, payload):
        if "targets" in path.parts:
            raise KeyboardInterrupt("killed after the model was saved, before its result was written")
        return write(self, path, payload)

    monkeypatch.setattr(ResultStore, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute_unit(str(tmp_path), c.to_dict(), unit.to_dict())
    store = ResultStore(tmp_path, c)
    target = unit.params["targets"][0]
    model_dir = store.target_model_dir("scratch", target["k"], target["task_id"], target["seed"])
    assert (model_dir / "model.safetensors").exists()
    assert not store.target_path("scratch", target["k"], target["task_id"], target["seed"]).exists()

    monkeypatch.setattr(ResultStore, "write", write)
    execute_unit(str(tmp_path), c.to_dict(), unit.to_dict())  # used to fail: FileExistsError on the saved model
    assert store.done(Path(unit.output))
    assert store.done(store.target_path("scratch", target["k"], target["task_id"], target["seed"]))
