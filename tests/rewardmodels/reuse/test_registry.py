"""The method registry: every registered name builds, pre-trains, adapts and returns a RewardModel; names are
canonical and unique; unknown names and duplicates are refused with messages that say what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from rm_data import FAMILY

from rewardshare.feedback import collect_transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget, ReuseMethod, Scratch, list_methods, make_method
from rewardshare.rewardmodels.reuse import registry as registry_mod
from rewardshare.rewardmodels.reuse.registry import register_method

#: Settings that make a registered method cheap enough for this test; a method missing here runs with its defaults
#: (add an entry for a new method whose defaults are slow).
FAST: dict[str, dict] = {
    "scratch": {},
    "transfer": {"steps": 5},
    "task_embedding": {"steps": 5, "embedding_dim": 2},
    "trunk_heads": {"steps": 5},
    "goal_conditioned": {"steps": 5},
    "maml": {"iterations": 2, "inner_steps": 1, "meta_batch_size": 2, "support_size": 4, "query_size": 4},
    "meta_sgd": {"iterations": 2, "inner_steps": 1, "meta_batch_size": 2, "support_size": 4, "query_size": 4},
    "map_prior": {"iterations": 2, "inner_steps": 1, "meta_batch_size": 2, "support_size": 4, "query_size": 4,
                  "prior_steps": 2, "max_prior_tasks": 2},
    "latent": {"steps": 5, "embedding_dim": 2, "infer_steps": 3},
    "amortized": {"steps": 5, "embedding_dim": 2, "infer_steps": 3, "encoder_hidden": 8},
    "cavia": {"iterations": 2, "inner_steps": 1, "meta_batch_size": 2, "support_size": (1, 4), "query_size": 4,
              "context_dim": 2},
}


@pytest.fixture(scope="module")
def tiny_source():
    """Three source tasks, 12 labels each."""
    tasks = list(FAMILY.train[:3])
    return tasks, make_loss("mse", collect_transitions(tasks, 36, seed=0))


def test_the_canonical_names_are_registered_in_report_order():
    assert list_methods()[:8] == (
        "scratch", "transfer", "task_embedding", "trunk_heads", "goal_conditioned", "maml", "meta_sgd", "map_prior",
    )


def test_the_readme_and_the_benchmark_config_use_the_registry_s_names():
    from rewardshare.experiments.config import REUSE_METHODS

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = tuple(re.findall(r"^\| `(\w+)` \| ", readme, flags=re.M))  # the README's method table
    assert table == list_methods()
    assert set(REUSE_METHODS) <= set(list_methods())


@pytest.mark.parametrize("name", list_methods())
def test_every_registered_method_builds_pretrains_and_adapts(spaces_, tiny_source, name):
    tasks, source = tiny_source
    method = make_method(name, *spaces_, seed=0, hidden_sizes=(8,), **FAST.get(name, {}))
    assert isinstance(method, ReuseMethod) and method.name == name
    assert method.pretrain(source, tasks) is method
    task = FAMILY.held_out[0]
    target = make_loss("mse", collect_transitions(task, 6, seed=1))
    model = method.adapt(target, AdaptationBudget(2, 1e-2, method.candidate_params()[0]), task)
    assert isinstance(model, RewardModel)
    assert model.metadata["reuse"]["method"] == name and model.metadata["reuse"]["config"]["method"] == name
    batch = target.batch()
    assert np.isfinite(model.predict(batch["obs"], batch["action"])).all()


def test_an_unknown_name_is_refused_with_the_allowed_names(spaces_):
    with pytest.raises(ValueError, match=r"method='multitask' is not allowed: use one of \('scratch', 'transfer'"):
        make_method("multitask", *spaces_)


def test_a_setting_the_method_does_not_take_is_refused(spaces_):
    with pytest.raises(TypeError, match="meta_sgd is not a setting"):
        make_method("maml", *spaces_, meta_sgd=True)
    with pytest.raises(ValueError, match="base='map_prior' is not allowed"):
        make_method("map_prior", *spaces_, base="map_prior")


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod._REGISTRY))


def test_duplicate_names_are_refused(scratch_registry):
    with pytest.raises(ValueError, match="'scratch' is already registered to .*Scratch"):

        @register_method("scratch")
        class Another(Scratch):
            pass


def test_malformed_names_and_mismatched_class_names_are_refused(scratch_registry):
    with pytest.raises(ValueError, match="method name 'Bad Name' is not allowed"):
        register_method("Bad Name")
    with pytest.raises(ValueError, match=r"Named.name='other' differs from its registered name 'named'"):

        @register_method("named")
        class Named(Scratch):
            name = "other"


def test_a_new_method_is_one_registration(scratch_registry, spaces_):
    @register_method("scratch_wide")
    class ScratchWide(Scratch):
        """Scratch with a wider default model."""

        def __init__(self, observation_space, action_space, seed=0, **kw):
            super().__init__(observation_space, action_space, seed=seed, **{"hidden_sizes": (128,), **kw})

    assert list_methods()[-1] == "scratch_wide" and ScratchWide.name == "scratch_wide"
    method = make_method("scratch_wide", *spaces_)
    assert method.start_model().hidden_sizes == (128,)


def test_a_factory_that_builds_another_method_is_caught(scratch_registry, spaces_):
    @register_method("liar")
    def liar(observation_space, action_space, **settings):
        return Scratch(observation_space, action_space, **settings)

    with pytest.raises(RuntimeError, match="registered as 'liar' built a method named 'scratch'"):
        make_method("liar", *spaces_)


def test_every_method_builds_from_the_few_shot_benchmark_s_default_settings(spaces_):
    import json

    from rewardshare.experiments.fewshot_config import FewShotConfig

    cfg = FewShotConfig()
    assert set(cfg.methods) <= set(list_methods()) and "cavia" in cfg.methods
    layout = FAMILY.train[0].resolve_layout()
    for name in cfg.methods:
        settings = dict(cfg.settings.get(name, {}))
        if name == "goal_conditioned":
            settings.update(height=layout.height, width=layout.width)
        # as the benchmark builds it (settings read back from JSON: tuples are lists there)
        settings = json.loads(json.dumps(settings))
        method = make_method(name, *spaces_, seed=0, hidden_sizes=tuple(cfg.hidden_sizes), **settings)
        assert method.name == name
        json.dumps(method.config())
