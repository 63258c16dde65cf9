"""Smoke test of benchmarks/fewshot_reward.py with tiny settings, and its resume and summary logic."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "fewshot_reward.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("fewshot_reward", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_quick_run_writes_results_and_plot(bench, tmp_path: Path) -> None:
    out = tmp_path / "fewshot_reward.json"
    result = bench.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert out.with_suffix(".png").stat().st_size > 1000
    assert not (tmp_path / "fewshot_reward_parts").exists()  # removed once the run is complete
    (fam,) = saved["families"]
    assert set(fam["methods"]) == {"uniform", "expert"}
    assert set(fam["methods"]["uniform"]) == set(bench.QUICK["methods"])
    assert set(fam["methods"]["expert"]) == {"scratch", "goal_conditioned"}
    # held-out tasks are never source or validation tasks
    assert not set(fam["held_out_tasks"]) & (set(fam["source_tasks"]) | set(fam["validation_tasks"]))
    assert not set(fam["validation_tasks"]) & set(fam["source_tasks"])
    for k in ("4", "16"):
        row = fam["methods"]["uniform"]["scratch"]["k"][k]
        assert len(row["epic_runs"]) == 2 * 2  # tasks x seeds
        assert row["epic"]["ci_low"] <= row["epic"]["mean"] <= row["epic"]["ci_high"]
        assert 0.0 <= row["epic"]["mean"] <= 1.0
        assert row["validation_score"] <= row["validation_no_adapt_score"]
    timing = fam["maml_backend_timing"]
    assert timing["second_order"]["func_ms"] > 0 and timing["first_order"]["higher_ms"] > 0
    assert saved["machine"]["torch_threads"] == 1 and "--quick" in saved["command"]


def test_an_interrupted_run_resumes_from_stored_families(bench, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "fewshot_reward.json"
    cfg, _, _ = bench.parse_args(["--quick"])
    parts = tmp_path / "fewshot_reward_parts"
    stored = {"family": "stored", "held_out_tasks": [], "methods": {}, "summary": {}}
    bench._atomic_json(parts / "open_5.json", {"config_digest": cfg.digest(), "result": stored})
    monkeypatch.setattr(bench, "plot", lambda result, path: None)
    monkeypatch.setattr(bench, "run_family", lambda cfg, spec: pytest.fail("a stored family was recomputed"))
    result = bench.main(["--quick", "--out", str(out)])
    assert result["families"] == [stored]


def test_labels_to_threshold_and_ratios(bench) -> None:
    def entry(zero, epics):
        return {"zero_shot": {"epic": {"mean": zero}}, "k": {str(k): {"epic": {"mean": e}} for k, e in epics.items()}}

    ks = (4, 16, 64)
    assert bench.labels_to_threshold(entry(0.5, {4: 0.4, 16: 0.19, 64: 0.1}), ks, 0.2) == 16
    assert bench.labels_to_threshold(entry(0.1, {4: 0.4, 16: 0.3, 64: 0.1}), ks, 0.2) == 0
    assert bench.labels_to_threshold(entry(0.5, {4: 0.4, 16: 0.3, 64: 0.25}), ks, 0.2) is None
    cfg = bench.Config(ks=ks, threshold=0.2)
    result = {"methods": {"uniform": {
        "scratch": entry(0.6, {4: 0.5, 16: 0.4, 64: 0.15}),
        "good": entry(0.6, {4: 0.15, 16: 0.1, 64: 0.05}),
        "zero": entry(0.1, {4: 0.1, 16: 0.1, 64: 0.1}),
    }}}
    bench.summarize_family(cfg, result)
    s = result["summary"]["uniform"]
    assert s["scratch"]["scratch_over_method_labels"] == 1.0
    assert s["good"]["scratch_over_method_labels"] == 64 / 4
    assert s["zero"]["scratch_over_method_labels"] == "inf (zero-shot)"
    assert s["good"]["scratch_over_method_epic"]["4"] == pytest.approx(0.5 / 0.15)


def test_fast_scorer_matches_the_library_evaluation(bench) -> None:
    from rewardshare.envs import TaskFamily
    from rewardshare.feedback import Teacher
    from rewardshare.rewardmodels import RewardModel, evaluate

    task = TaskFamily("four_rooms", 5).held_out[0]
    env = task.make_env()
    for kw in ({}, {"use_next_obs": True}):
        model = RewardModel(env.observation_space, env.action_space, hidden_sizes=(8,), seed=3, **kw)
        epic, mse = bench.Scorer(task, model)(model)
        ref = evaluate(model, task, Teacher(task))
        assert epic == pytest.approx(ref.epic, abs=1e-9) and mse == pytest.approx(ref.mse, rel=1e-6)
