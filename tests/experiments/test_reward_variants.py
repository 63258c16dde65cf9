"""Reward-uncertainty variants in the config, the plan and the store: validation naming field, value and what is
allowed; fields added later leave older configs' hashes alone; every variant has its own unit and result file."""

from __future__ import annotations

import pytest

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import BenchConfig, ResultStore, get_profile, plan
from rewardshare.experiments.config import ADDED_FIELDS, PROFILES
from rewardshare.experiments.names import run_label, split_label

VARIANTS = {"methods": ("scratch", "latent", "transfer", "true"), "reward_uncertainty": ("none", "mean", "pessimistic")}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"reward_uncertainty": ("pessimistic",)},
         r"reward_uncertainty=\('pessimistic',\) is not allowed: use distinct names from \('none', 'mean', "
         r"'pessimistic', 'potential', 'mean\+potential', 'pessimistic\+potential'\) in that order, including 'none'"),
        ({"reward_uncertainty": ("none", "potential+mean")}, r"reward_uncertainty=\('none', 'potential\+mean'\) is "
                                                             "not allowed"),
        ({"reward_uncertainty": ("none", "pessimistic+potential", "potential")}, "in that order"),
        ({"reward_uncertainty": ("none", "optimistic")}, r"reward_uncertainty=\('none', 'optimistic'\) is not allowed"),
        ({"reward_uncertainty": ("none", "pessimistic", "mean")}, "in that order"),
        ({"reward_uncertainty": ("none", "none")}, "distinct names"),
        ({"reward_uncertainty": ()}, r"reward_uncertainty=\(\) is not allowed"),
        ({"reward_uncertainty": "pessimistic"}, r"reward_uncertainty='pessimistic' is not allowed: use a list of "
                                                r"strings"),
        ({"pessimism_beta": -1.0}, r"pessimism_beta=-1.0 is not allowed: use a finite float >= 0"),
        ({"pessimism_beta": float("inf")}, r"pessimism_beta=inf is not allowed"),
        ({"pessimism_beta": "high"}, r"pessimism_beta='high' is not allowed: use a number"),
        ({"ensemble_size": 1}, r"ensemble_size=1 is not allowed: use an int >= 2"),
        ({"collapse_drop": 0.0}, r"collapse_drop=0.0 is not allowed: use a float in \(0, 1\]"),
        ({"collapse_drop": 1.5}, r"collapse_drop=1.5 is not allowed"),
        ({"irl_iterations": 0}, r"irl_iterations=0 is not allowed: use an int >= 1"),
        ({"feedback": "vibes"}, r"feedback='vibes' is not allowed: use one of \('labels', 'preferences', "
                                r"'demonstrations'\)"),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_allowed(overrides, match):
    with pytest.raises(InvalidArgumentError, match=match):
        get_profile("smoke", **{**VARIANTS, **overrides})


def test_variants_need_a_method_with_a_posterior_and_beta_needs_pessimistic():
    with pytest.raises(InvalidArgumentError, match=r"reward_uncertainty=\('none', 'mean'\) is not allowed with "
                                                   r"methods=\('transfer', 'true'\): the variants but 'none' need a "
                                                   r"method whose reward has a posterior, one of "
                                                   r"\('latent', 'scratch'\)"):
        get_profile("smoke", methods=("transfer", "true"), reward_uncertainty=("none", "mean"))
    with pytest.raises(InvalidArgumentError, match=r"pessimism_beta=2.0 is only read with 'pessimistic' in "
                                                   r"reward_uncertainty \(it is \('none', 'mean'\)\)"):
        get_profile("smoke", **{**VARIANTS, "reward_uncertainty": ("none", "mean"), "pessimism_beta": 2.0})
    c = get_profile("smoke", **VARIANTS, pessimism_beta=2)
    assert c.pessimism_beta == 2.0 and isinstance(c.pessimism_beta, float)


def test_fields_added_later_leave_older_hashes_alone():
    for name in ("smoke", "quick", "full"):  # the profiles that existed before the fields
        c = PROFILES[name]
        old = {k: v for k, v in c.to_dict().items() if k not in ADDED_FIELDS}  # as a config.json written before them
        assert BenchConfig.from_dict(old) == c and BenchConfig.from_dict(old).config_hash() == c.config_hash(), name
    smoke = get_profile("smoke")
    changed = [get_profile("smoke", collapse_drop=0.4), get_profile("smoke", ensemble_size=3),
               get_profile("smoke", irl_iterations=10), get_profile("smoke", **VARIANTS)]
    assert len({smoke.config_hash(), *(c.config_hash() for c in changed)}) == 1 + len(changed)
    assert get_profile("smoke", **VARIANTS, pessimism_beta=1).config_hash() == get_profile(
        "smoke", **VARIANTS, pessimism_beta=1.0).config_hash()


def test_labels_round_trip():
    assert run_label("latent", "pessimistic") == "latent+pessimistic" and run_label("latent") == "latent"
    assert split_label("latent+pessimistic") == ("latent", "pessimistic") and split_label("true") == ("true", "none")
    with pytest.raises(ValueError, match="uncertainty='optimistic' is not allowed"):
        run_label("latent", "optimistic")


def test_plan_and_store_keep_variants_apart(tmp_path):
    c = get_profile("smoke", **VARIANTS, ks=(0, 4), rl_ks=(0, 4))
    assert c.run_labels() == ("scratch", "scratch+mean", "scratch+pessimistic", "latent", "latent+mean",
                              "latent+pessimistic", "transfer", "true")
    runs = [u for u in plan(c, tmp_path) if u.stage == "run"]
    ids = [u.id for u in runs]
    outputs = [u.output for u in runs]
    assert len(set(ids)) == len(ids) and len(set(outputs)) == len(outputs)
    got = {(u.params["method"], u.params["uncertainty"], u.params["k"]) for u in runs}
    with_posterior = {(m, v, 4) for m in ("scratch", "latent") for v in c.reward_uncertainty}
    plain = {("latent", "none", 0), ("transfer", "none", 0), ("transfer", "none", 4), ("true", "none", 0)}
    assert got == with_posterior | plain  # k = 0 (zero-shot, no posterior) and methods without one: plain only
    store = ResultStore(tmp_path, c)
    tid = runs[0].params["task_id"]
    paths = {v: store.run_path("ppo", "latent", 4, tid, 0, v) for v in c.reward_uncertainty}
    assert paths["none"] == store.run_path("ppo", "latent", 4, tid, 0)  # plain runs keep the path they always had
    assert paths["pessimistic"].parent.parent.name == "latent+pessimistic" and len(set(paths.values())) == 3
    assert store.member_model_dir("scratch", 4, tid, 0, 1) != store.target_model_dir("scratch", 4, tid, 0)
    assert c.needs_ensemble("scratch") and not c.needs_ensemble("latent") and not c.needs_ensemble("transfer")
    assert not get_profile("smoke").needs_ensemble("scratch")
