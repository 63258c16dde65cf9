"""``BenchConfig.query``: actively chosen target labels for methods with a belief (latent), uniform ones for the
rest. The field validates, is hash-neutral at its default, the new profiles fix what the report says, and the code
path (labels, their metadata, a sweep) works on a seconds-long budget."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import PROFILES, BenchConfig, ResultStore, get_profile, plan, run_sweep, task_split
from rewardshare.experiments.active import BELIEF_METHODS, QUERY_MODES, uses_active
from rewardshare.experiments.config import ADDED_FIELDS
from rewardshare.experiments.pipeline import collect_feedback, make_method, objective, spaces_for, target_feedback
from rewardshare.rewardmodels.reuse.queries import STRATEGIES

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
#: Profiles whose results were committed before the field existed: their hashes must not move.
COMMITTED = ("quick", "full", "collapse", "collapse_potential", "agents_four_rooms", "agents_dqn_open")


def test_query_modes_are_the_library_s_strategies():
    assert QUERY_MODES == STRATEGIES and BELIEF_METHODS == ("latent",)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"query": "entropy"}, r"query='entropy' is not allowed: use one of \('uniform', 'disagreement', "
                               r"'information_gain'\)"),
        ({"query": 3}, r"query=3 is not allowed: use a string"),
        ({"query": "information_gain", "methods": ("scratch", "teacher")},
         r"query='information_gain' is not allowed with methods=\('scratch', 'teacher'\): active queries need a "
         r"method with a belief, one of \('latent',\)"),
        ({"source_feedback": "episodes"}, r"source_feedback='episodes' is not allowed: use one of \('labels', "
                                          r"'preferences', 'demonstrations'\) or None"),
        ({"query": "disagreement", "methods": ("latent",), "feedback": "demonstrations"},
         r"query='disagreement' is not allowed with feedback='demonstrations': active queries choose reward labels"),
    ],
)
def test_bad_query_values_are_refused_naming_field_value_and_allowed(overrides, match):
    with pytest.raises(InvalidArgumentError, match=match):
        get_profile("smoke", **overrides)


def test_the_default_is_hash_neutral():
    assert ADDED_FIELDS["query"] == "uniform" == BenchConfig().query
    assert ADDED_FIELDS["source_feedback"] is None is BenchConfig().source_feedback
    for name in COMMITTED:
        c = PROFILES[name]
        stored = json.loads((RESULTS / f"learning_curves_{name}.json").read_text())
        old = {k: v for k, v in c.to_dict().items() if k not in ("query", "source_feedback")}  # written before them
        assert BenchConfig.from_dict(old).config_hash() == c.config_hash(), name
        if name not in ("full", "quick"):  # written under legacy method names: their stored configs keep the hash
            assert stored["config_hash"] == c.config_hash(), name
        stored_config = BenchConfig.from_dict(stored["config"])
        assert stored_config.query == "uniform" and stored_config.config_hash() == stored["config_hash"], name
    smoke = get_profile("smoke", methods=("scratch", "latent"))
    assert dataclasses.replace(smoke, query="information_gain").config_hash() != smoke.config_hash()
    assert uses_active(dataclasses.replace(smoke, query="disagreement"), "latent")
    assert not uses_active(dataclasses.replace(smoke, query="disagreement"), "scratch")
    assert not uses_active(smoke, "latent")
    assert smoke.source_kind == "labels" and get_profile("smoke", feedback="demonstrations").source_kind == (
        "demonstrations")
    mixed = get_profile("smoke", feedback="demonstrations", source_feedback="labels")
    assert mixed.source_kind == "labels" and mixed.config_hash() != get_profile(
        "smoke", feedback="demonstrations").config_hash()


def test_the_new_profiles_are_what_the_report_says():
    a, af = PROFILES["agents_active"], PROFILES["agents_active_four_rooms"]
    d, df = PROFILES["agents_demos"], PROFILES["agents_demos_four_rooms"]
    base_open, base_fr = PROFILES["agents_dqn_open"], PROFILES["agents_four_rooms"]
    for c in (a, af, d, df):
        assert (c.success_threshold, c.seeds, c.n_eval_tasks, c.methods) == (
            0.9, (0, 1), 6, ("scratch", "latent", "teacher"))
        assert c.algos == (("ppo",) if c in (d, df) else ("ppo", "dqn"))
        assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == (108 if c in (d, df) else 216)
        assert BenchConfig.from_dict(c.to_dict()) == c
    for c, base in ((a, base_open), (d, base_open), (af, base_fr), (df, base_fr)):
        assert [t.id for t in task_split(c)["eval"]] == [t.id for t in task_split(base)["eval"]]
        assert c.total_timesteps == base.total_timesteps
    assert (a.query, a.ks, a.rl_ks, a.reward_uncertainty) == ("information_gain", (4, 8), (4, 8),
                                                                ("none", "pessimistic"))
    assert (af.query, af.ks, af.reward_uncertainty) == (
        "information_gain", (8,), ("none", "pessimistic", "potential", "pessimistic+potential"))
    for c in (d, df):
        assert (c.feedback, c.source_kind, c.query, c.ks, c.rl_ks) == ("demonstrations", "labels", "uniform", (1, 2),
                                                                      (1, 2))


@pytest.fixture(scope="module")
def latent_smoke():
    c = get_profile("smoke", methods=("scratch", "latent", "teacher"), algos=("ppo",), query="information_gain")
    split = task_split(c)
    task = split["eval"][0]
    method = make_method("latent", c, *spaces_for(c, task))
    method.pretrain(objective(collect_feedback(c, split["source"], 8 * len(split["source"]), 0), c),
                    split["source"], seed=0)
    return c, method, task


def test_active_labels_record_their_strategy_and_differ_from_uniform_ones(latent_smoke):
    c, method, task = latent_smoke
    active = target_feedback(c, method, "latent", task, 4, seed=0)
    uniform = target_feedback(c, method, "scratch", task, 4, seed=0)  # no belief: the plain draw
    plain = target_feedback(dataclasses.replace(c, query="uniform"), method, "latent", task, 4, seed=0)
    assert len(active) == len(uniform) == 4
    assert active.metadata["query_strategy"] == "information_gain" and len(active.metadata["query_indices"]) == 4
    assert "query_strategy" not in uniform.metadata
    assert np.array_equal(uniform.obs, plain.obs) and np.array_equal(uniform.action, plain.action)
    pairs = lambda d: {(tuple(o), int(a)) for o, a in zip(d.obs.tolist(), d.action.tolist(), strict=True)}  # noqa: E731
    assert pairs(active) != pairs(uniform)
    again = target_feedback(c, method, "latent", task, 4, seed=0)  # seeded: the same queries again
    assert again.metadata["query_indices"] == active.metadata["query_indices"]


def test_a_sweep_with_active_queries_runs_end_to_end(tmp_path):
    c = get_profile("smoke", methods=("scratch", "latent", "teacher"), algos=("ppo",), query="information_gain",
                    selection_seeds=(0,))
    res = run_sweep(c, tmp_path, workers=1, progress=False)
    assert res.ok, res.failed
    store = ResultStore(tmp_path, c)
    latent = store.read(store.target_path("latent", 4, task_split(c)["eval"][0].id, 0))
    scratch = store.read(store.target_path("scratch", 4, task_split(c)["eval"][0].id, 0))
    assert latent["query"]["strategy"] == "information_gain" and len(latent["query"]["indices"]) == 4
    assert "query" not in scratch
    assert store.read(store.adapt_path("latent", 4))["query"] == "information_gain"
    assert len(list(store.run_files())) == 3
