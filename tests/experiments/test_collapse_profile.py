"""The ``collapse`` profile's code path end to end on a seconds-long budget (real feedback, latent and scratch models,
the scratch ensemble, PPO on the plain / posterior-mean / pessimistic rewards), demonstrations as a feedback kind, and
the benchmark script's report-only mode."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from rewardshare.experiments import PROFILES, ResultStore, get_profile, run_sweep
from rewardshare.experiments.pipeline import _draw_episodes, collect_feedback, objective
from rewardshare.experiments.runner import task_split
from rewardshare.rewardmodels import load_model

#: The collapse profile shrunk to seconds: one 5x5 goal, one seed, k = 4, a two-network ensemble, 256 agent steps.
TINY = dict(size=5, n_eval_tasks=1, n_validation_tasks=1, source_budget=24, ks=(4,), rl_ks=(4,), hidden_sizes=(16,),
            pretrain_steps=10, maml_support_size=4, maml_query_size=4, adapt_steps=(0, 3), adapt_lrs=(1e-2,),
            validation_pool=8, seeds=(0,), selection_seeds=(0,), total_timesteps=256, n_envs=2, eval_every=128,
            eval_episodes=2, ensemble_size=2)


def test_the_profile_is_what_the_report_says():
    c = PROFILES["collapse"]
    assert c.run_labels() == ("scratch", "scratch+mean", "scratch+pessimistic", "latent", "latent+mean",
                              "latent+pessimistic", "teacher")
    assert (c.algos, c.ks, c.rl_ks, c.layout, c.size) == (("ppo",), (8, 16), (8, 16), "open", 8)
    assert (c.collapse_drop, c.pessimism_beta, c.success_threshold) == (0.5, 1.0, 0.9)


@pytest.fixture(scope="module")
def tiny_collapse(tmp_path_factory):
    c = get_profile("collapse", **TINY)
    root = tmp_path_factory.mktemp("collapse")
    res = run_sweep(c, root, workers=1, progress=False)
    assert res.ok, res.failed
    return c, root


def test_every_variant_trains_on_its_own_reward_from_the_same_models(tiny_collapse):
    c, root = tiny_collapse
    store = ResultStore(root, c)
    tid = task_split(c)["eval"][0].id
    runs = {(r["method"], r["uncertainty"]): r for r in (store.read(p) for p in store.run_files())}
    assert set(runs) == {(m, u) for m in ("scratch", "latent") for u in c.reward_uncertainty} | {("teacher", "none")}
    for m in ("scratch", "latent"):
        assert len({runs[(m, u)]["epic"] for u in c.reward_uncertainty}) == 1  # one adapted model per (goal, seed)
        assert runs[(m, "none")]["reward"]["kind"] == "model"
        assert runs[(m, "none")]["agent"]["reward_options"]["uncertainty"] is None
    assert runs[("latent", "pessimistic")]["reward"]["kind"] == "latent_posterior"
    assert runs[("latent", "pessimistic")]["reward"]["beta"] == 1.0
    assert runs[("latent", "mean")]["reward"]["beta"] == 0.0
    assert runs[("scratch", "mean")]["reward"] == {"kind": "ensemble_posterior", "beta": 0.0, "n_members": 2}
    latent = load_model(store.target_model_dir("latent", 4, tid, 0))
    assert len(latent.metadata["latent_posterior"]["z"]) == len(latent.metadata["latent_posterior"]["weights"]) >= 2
    member = store.member_model_dir("scratch", 4, tid, 0, 1)
    assert (member / "model.safetensors").exists()
    target = store.read(store.target_path("scratch", 4, tid, 0))
    assert target["members"]["n_members"] == 2 and len(target["members"]["epic"]) == 1
    assert 0.0 <= target["members"]["epic"][0] <= 1.0


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="plots need matplotlib")
def test_report_only_mode_of_the_script(tiny_collapse, tmp_path, load_benchmark):
    c, root = tiny_collapse
    mod = load_benchmark("learning_curves")
    summary_path = tmp_path / "summary.json"
    summary = mod.main(["--profile", "collapse", "--report-only", "--out", str(root), "--json", str(summary_path)])
    assert json.loads(summary_path.read_text())["runs"] == summary["runs"]
    rates = {e["method"]: e["collapse_rate"] for e in summary["runs"]}
    assert set(rates) == set(c.run_labels()) and all(0.0 <= r["value"] <= 1.0 for r in rates.values())
    md = (root / "report.md").read_text()
    assert "## Collapse" in md and "| ppo | latent+pessimistic | 4 | 1 |" in md


def test_demonstrations_are_a_feedback_kind_counted_in_episodes(tmp_path):
    c = get_profile("collapse", **{**TINY, "reward_uncertainty": ("none",)}, feedback="demonstrations",
                    methods=("scratch", "latent"), irl_iterations=10)
    task = task_split(c)["validation"][0]
    pool = collect_feedback(c, task, 6, seed=3)
    assert len(pool) == 6  # episodes
    drawn = _draw_episodes(c)(pool, 3, 0)
    idx = np.sort(np.random.default_rng(0).choice(6, size=3, replace=False))
    assert len(drawn) == pool.select(idx).n_steps == len(objective(pool.select(idx), c))  # k episodes' steps
    res = run_sweep(c, tmp_path, workers=1, progress=False)
    assert res.ok, res.failed
    store = ResultStore(tmp_path, c)
    assert store.read(store.source_path())["kind"] == "demonstrations"
    epics = [store.read(p)["epic"] for p in sorted((tmp_path / "targets").glob("*/k4/*.json"))]
    assert len(epics) == 2 and all(math.isfinite(e) for e in epics)
