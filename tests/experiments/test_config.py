"""The benchmark config: profiles, validation, hashing, and the fixed task roles."""

from __future__ import annotations

import dataclasses

import pytest

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import PROFILES, BenchConfig, get_profile, task_split
from rewardshare.experiments.config import CONFIG_VERSION, field_docs


def test_every_field_has_a_docstring():
    names = [f.name for f in dataclasses.fields(BenchConfig)]
    docs = field_docs()
    assert [n for n in names if not docs.get(n)] == []


def test_profiles_meet_the_issue_minimums():
    full = PROFILES["full"]
    assert len(full.seeds) >= 5 and full.n_eval_tasks >= 3 and len(full.ks) >= 3
    assert set(full.algos) == {"ppo", "dqn"}
    for c in (PROFILES["quick"], full):
        assert set(c.methods) == {"scratch", "transfer", "task_embedding", "trunk_heads", "goal_conditioned", "maml",
                                  "map_prior", "true", "teacher"}
    assert get_profile() == PROFILES["quick"]


def test_hash_is_stable_and_sensitive():
    a, b = get_profile("quick"), get_profile("quick")
    assert a.config_hash() == b.config_hash() and len(a.config_hash()) == 16
    assert get_profile("quick", seeds=(0, 2)).config_hash() != a.config_hash()
    assert get_profile("quick", success_threshold=0.8).config_hash() != a.config_hash()


def test_round_trip_through_dict():
    c = get_profile("full")
    d = c.to_dict()
    assert d["config_version"] == CONFIG_VERSION
    assert BenchConfig.from_dict(d) == c
    assert BenchConfig.from_dict(d).config_hash() == c.config_hash()
    with pytest.raises(ValueError, match="config_version"):
        BenchConfig.from_dict({**d, "config_version": 999})
    with pytest.raises(ValueError, match="unknown config field"):
        BenchConfig.from_dict({**d, "colour": "red"})


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"methods": ("scratch", "magic")}, "methods="),
        ({"algos": ("a2c",)}, "algos="),
        ({"ks": (64, 8)}, "increasing"),
        ({"rl_ks": (7,)}, "rl_ks="),
        ({"seeds": (1, 1)}, "seeds="),
        ({"total_timesteps": 0}, "total_timesteps=0"),
        ({"eval_every": 10**9}, "eval_every="),
        ({"success_threshold": 0.0}, "success_threshold="),
        ({"feedback": "vibes"}, "feedback="),
    ],
)
def test_bad_values_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        get_profile("quick", **overrides)


def test_unknown_profile_and_field():
    with pytest.raises(ValueError, match="profile='huge'"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown config field"):
        get_profile("quick", colour="red")


@pytest.mark.parametrize("name", list(PROFILES))
def test_task_roles_are_fixed_and_disjoint(name):
    c = PROFILES[name]
    split = task_split(c)
    ids = {role: [t.id for t in tasks] for role, tasks in split.items()}
    assert ids == {role: [t.id for t in tasks] for role, tasks in task_split(c).items()}  # deterministic
    assert len(ids["eval"]) == c.n_eval_tasks and len(ids["validation"]) == c.n_validation_tasks
    # held-out tasks are never source or validation tasks; validation tasks are never source tasks
    assert not set(ids["eval"]) & (set(ids["source"]) | set(ids["validation"]))
    assert not set(ids["validation"]) & set(ids["source"])


def test_task_split_refuses_impossible_counts():
    with pytest.raises(ValueError, match="n_eval_tasks=99"):
        task_split(get_profile("quick", n_eval_tasks=99))
    with pytest.raises(ValueError, match="n_validation_tasks=999"):
        task_split(get_profile("quick", n_validation_tasks=999))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [  # values that used to pass and then fail unit by unit (issue 13)
        ({"layout": "spiral"}, r"layout='spiral' is not allowed: use one of \('open', 'four_rooms', 'maze'\)"),
        ({"held_out_fraction": 5}, r"held_out_fraction=5 is not allowed: use a float in \(0, 1\)"),
        ({"obs_mode": "pixels"}, r"obs_mode='pixels' is not allowed: use one of \('coords', 'onehot', 'grid'\)"),
        ({"teacher_reward": "bogus"}, r"teacher_reward='bogus' is not allowed: use one of \('dense', 'sparse'\)"),
        ({"subset": "diagonal"}, "subset='diagonal' is not allowed"),
        ({"total_timesteps": "abc"}, "total_timesteps='abc' is not allowed: use an int"),
        ({"total_timesteps": 1.5}, "total_timesteps=1.5 is not allowed: use an int"),
        ({"ks": "4,16"}, r"ks='4,16' is not allowed: use a list of ints, e.g. \[4, 16\]"),
        ({"ks": 4}, r"ks=4 is not allowed: use a list of ints"),
        ({"seeds": [0, "1"]}, r"seeds=\[0, '1'\] is not allowed: use a list of ints"),
        ({"max_steps": "none"}, "max_steps='none' is not allowed: use an int or null"),
        ({"adapt_lrs": ["fast"]}, r"adapt_lrs=\['fast'\] is not allowed: use a list of numbers, .* or null"),
        ({"maml_meta_sgd": 1}, "maml_meta_sgd=1 is not allowed: use true or false"),
        ({"teacher_noise": float("nan")}, "NaN or infinite"),
        ({"split_seed": -1}, "split_seed=-1 is not allowed: use an int >= 0"),
    ],
)
def test_every_override_is_checked_against_the_field(overrides, match):
    with pytest.raises(InvalidArgumentError, match=match):
        get_profile("smoke", **overrides)


def test_unknown_field_suggests_the_close_one():
    with pytest.raises(InvalidArgumentError, match=r"'total_timestep': did you mean 'total_timesteps'\?"):
        get_profile("smoke", total_timestep=100)


def test_a_family_too_small_for_the_config_is_an_argument_error():
    with pytest.raises(InvalidArgumentError, match="the config's task family cannot be built: .*size"):
        task_split(get_profile("smoke", size=1))
