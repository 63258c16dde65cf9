"""The whole pipeline (real feedback, reward models, agents) on the seconds-long ``smoke`` profile, via the CLI and
the benchmark script; plus the honesty invariants of a finished sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardshare.cli import app
from rewardshare.experiments import get_profile, plan, task_split
from rewardshare.experiments.store import ResultStore


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke"
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--out", str(out), "--workers", "1",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "units run" in result.output and "report:" in result.output
    return out


def test_every_unit_finished_with_sane_results(smoke_dir):
    c = get_profile("smoke")
    store = ResultStore(smoke_dir, c)
    units = plan(c, smoke_dir)
    assert all(store.done(Path(u.output)) for u in units)
    runs = [store.read(p) for p in store.run_files()]
    assert len(runs) == len(c.methods) * len(c.algos) * c.n_eval_tasks * len(c.seeds)
    for r in runs:
        t, s = r["curve"]["timesteps"], r["curve"]["success"]
        assert len(t) == len(s) >= 2 and t[-1] >= c.total_timesteps and all(0.0 <= x <= 1.0 for x in s)
        if r["method"] in c.reuse_methods:
            assert 0.0 <= r["epic"] <= 1.0
            assert (store.target_model_dir(r["method"], r["k"], r["task_id"], r["seed"]) / "model.safetensors").exists()
        else:
            assert r["epic"] is None and r["k"] == 0
    for name in ("report.md", "runs.csv", "aggregate.json", "learning_curves.png", "epic_vs_k.png"):
        assert (smoke_dir / name).stat().st_size > 0


def test_held_out_tasks_never_touch_training_or_selection(smoke_dir):
    c = get_profile("smoke")
    store = ResultStore(smoke_dir, c)
    held_out = {t.id for t in task_split(c)["eval"]}
    source = store.read(store.source_path())
    assert source["tasks"] and not held_out & set(source["tasks"])
    for p in sorted((smoke_dir / "adapt").glob("*/k*.json")):
        sel = store.read(p)
        assert sel["validation_tasks"] and not held_out & set(sel["validation_tasks"])
        # "no adaptation" was a candidate and the chosen budget is never worse than it on the validation tasks
        assert sel["selection"]["score"] <= sel["selection"]["no_adapt_score"] + 1e-12


def test_rerun_skips_everything(smoke_dir):
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--out", str(smoke_dir), "--workers", "1",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "0 units run" in result.output


def test_cli_refuses_another_config_in_the_same_dir(smoke_dir):
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--out", str(smoke_dir), "--set", "seeds=[3]",
                                      "--no-progress"])
    assert result.exit_code == 2
    assert "never mixed" in result.output


def test_cli_rejects_bad_options(tmp_path):
    runner = CliRunner()
    for args, hint in ((["--profile", "huge"], "--profile"), (["--backend", "slurm"], "--backend"),
                       (["--set", "colour=red"], "--set"), (["--set", "novalue"], "--set")):
        result = runner.invoke(app, ["bench", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2 and hint in result.output, (args, result.output)


def test_benchmark_script_writes_its_summary(smoke_dir, tmp_path, load_benchmark):
    mod = load_benchmark("learning_curves")
    summary_path = tmp_path / "summary.json"
    mod.main(["--smoke", "--out", str(smoke_dir), "--json", str(summary_path), "--workers", "1", "--no-progress"])
    summary = json.loads(summary_path.read_text())
    assert summary["profile"] == "smoke" and summary["config_hash"] == get_profile("smoke").config_hash()
    assert summary["units"]["failed"] == {} and summary["units"]["ran"] == 0  # everything was already finished
    assert summary["machine"]["cpu_count"] >= 1 and "torch" in summary["machine"]
    assert any(e["method"] == "scratch" for e in summary["runs"])
    assert all(math.isfinite(e["epic"]["value"]) for e in summary["epic"])
