"""The ``+potential`` reward variants (``RewardOptions(shaping="potential")``) in the learning-curve benchmark: names,
the ``collapse_potential`` profile (``collapse``'s hash and results untouched), and the code path on a tiny budget."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rewardshare.experiments import PROFILES, ResultStore, get_profile, make_report, run_sweep
from rewardshare.experiments.names import run_label, split_label, split_variant
from rewardshare.experiments.runner import task_split

ROOT = Path(__file__).resolve().parents[2]
COLLAPSE_ROOT = ROOT / "benchmarks" / "results" / "learning_curves" / "collapse"
#: The hash every committed result of the `collapse` profile is stamped with.
COLLAPSE_HASH = "6f2f46d91eea0224"


def test_variant_names_split_into_posterior_and_shaping():
    assert split_variant("pessimistic+potential") == ("pessimistic", "potential")
    assert split_variant("mean+potential") == ("mean", "potential")
    assert split_variant("potential") == ("none", "potential")
    assert split_variant("pessimistic") == ("pessimistic", "none") and split_variant("none") == ("none", "none")
    assert run_label("latent", "pessimistic+potential") == "latent+pessimistic+potential"
    assert split_label("latent+pessimistic+potential") == ("latent", "pessimistic+potential")
    assert split_label("latent+potential") == ("latent", "potential")
    with pytest.raises(ValueError, match=r"uncertainty='potential\+mean' is not allowed: use one of"):
        split_variant("potential+mean")


def test_collapse_keeps_its_hash_and_collapse_potential_differs_only_in_its_variants():
    c, p = PROFILES["collapse"], PROFILES["collapse_potential"]
    assert c.config_hash() == COLLAPSE_HASH
    stored = json.loads((COLLAPSE_ROOT / "config.json").read_text())
    assert stored["config_hash"] == COLLAPSE_HASH and ResultStore.load_config(COLLAPSE_ROOT) == c
    differ = {f.name for f in dataclasses.fields(c) if getattr(c, f.name) != getattr(p, f.name)}
    assert differ == {"profile", "methods", "reward_uncertainty"}
    assert p.run_labels() == ("latent", "latent+potential", "latent+mean+potential", "latent+pessimistic+potential")
    assert p.config_hash() != c.config_hash()


def test_potential_alone_needs_no_scratch_ensemble():
    c = get_profile("smoke", methods=("scratch", "latent"), reward_uncertainty=("none", "potential"))
    assert not c.needs_ensemble("scratch")
    c = get_profile("smoke", methods=("scratch",), reward_uncertainty=("none", "mean+potential"))
    assert c.needs_ensemble("scratch")
    c = get_profile("smoke", methods=("latent",), reward_uncertainty=("none", "pessimistic+potential"),
                    pessimism_beta=2.0)
    assert c.pessimism_beta == 2.0  # beta is read by the pessimistic part of a shaped variant


def test_collapse_potential_code_path_on_a_tiny_budget(tmp_path):
    tiny = dict(size=5, n_eval_tasks=1, n_validation_tasks=1, source_budget=24, ks=(4,), rl_ks=(4,),
                hidden_sizes=(16,), pretrain_steps=10, maml_support_size=4, maml_query_size=4,
                adapt_steps=(0, 3), adapt_lrs=(1e-2,), validation_pool=8, seeds=(0,), selection_seeds=(0,),
                total_timesteps=256, n_envs=2, eval_every=128, eval_episodes=2)
    c = get_profile("collapse_potential", **tiny)
    res = run_sweep(c, tmp_path, workers=1, progress=False)
    assert res.ok, res.failed
    store = ResultStore(tmp_path, c)
    runs = {r["uncertainty"]: r for r in (store.read(p) for p in store.run_files())}
    assert set(runs) == set(c.reward_uncertainty)
    assert len({r["epic"] for r in runs.values()}) == 1  # one adapted model for every variant
    opts = {u: r["agent"]["reward_options"] for u, r in runs.items()}
    assert opts["none"]["shaping"] == "none" and opts["potential"]["shaping"] == "potential"
    assert (opts["potential"]["uncertainty"], opts["mean+potential"]["uncertainty"]) == (None, "mean")
    assert (opts["pessimistic+potential"]["uncertainty"], opts["pessimistic+potential"]["beta"]) == ("pessimistic",
                                                                                                     1.0)
    assert runs["pessimistic+potential"]["reward"]["kind"] == "latent_posterior"
    tid = task_split(c)["eval"][0].id
    assert store.run_path("ppo", "latent", 4, tid, 0, "pessimistic+potential").parent.parent.name == (
        "latent+pessimistic+potential")
    rep = make_report(tmp_path, n_boot=50)  # the figures have a line style for every variant
    assert "`+potential` = only the potential-based part" in Path(rep["paths"]["report"]).read_text()
    assert {r["method"] for r in rep["runs"]} == set(c.run_labels())
