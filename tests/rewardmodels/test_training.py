"""fit and the losses: each lowers its loss below an untrained model and recovers the known reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rm_data import TINY, make_demonstrations, make_preferences, make_transitions

from rewardshare.feedback import Teacher, collect_demonstrations, collect_preferences
from rewardshare.rewardmodels import FitResult, RewardModel, fit, make_loss
from rewardshare.rewardmodels.evaluation import evaluate
from rewardshare.rewardmodels.objectives import LabelObjective, PreferenceObjective, trex_pairs


def _value(objective, model) -> float:
    with torch.no_grad():
        return float(objective(model))


def _model(seed: int = 0, **kw) -> RewardModel:
    env = TINY.make_env()
    return RewardModel(env.observation_space, env.action_space, hidden_sizes=(32, 32), seed=seed, **kw)


def test_mse_learns_the_dense_reward():
    train, test = make_transitions(n=300, seed=0), make_transitions(n=200, seed=1)
    model = _model()
    held_out = make_loss("mse", test)
    before = _value(held_out, model)
    result = fit(model, train, loss="auto", epochs=150, lr=3e-3, batch_size=64)
    after = _value(held_out, model)
    assert result.loss == "mse" and result.steps == 150 * 5 and len(result.train_loss) == 150
    assert after < 0.15 * before and after < 0.3
    judged = evaluate(model, TINY, Teacher(TINY))
    assert judged.pearson > 0.9
    # a model blind to s' cannot go below ~0.20 EPIC against this teacher (see test_evaluation), so 0.25 is close
    assert judged.epic < 0.25 < evaluate(_model(), TINY, Teacher(TINY)).epic


def test_bradley_terry_learns_from_preferences_with_ties():
    prefs = collect_preferences(TINY, 300, segment_length=4, seed=0)
    assert (prefs.label == 0.5).any()  # ties are part of the data
    model = _model()
    objective = make_loss("auto", prefs)
    assert isinstance(objective, PreferenceObjective) and objective.kind == "bradley_terry"
    held_out = make_loss("bradley_terry", collect_preferences(TINY, 200, segment_length=4, seed=1))
    before = _value(held_out, model)
    fit(model, prefs, epochs=60, lr=3e-3, batch_size=32)
    after = _value(held_out, model)
    assert after < 0.75 * before
    untrained = evaluate(_model(), TINY, Teacher(TINY)).epic
    assert evaluate(model, TINY, Teacher(TINY)).epic < min(0.35, untrained)


def test_trex_ranks_less_noisy_demonstrators_higher():
    demos = collect_demonstrations(TINY, n_episodes=24, noise_levels=(0.0, 0.3, 0.8), seed=0)
    pairs = trex_pairs(demos, n_pairs=50, segment_length=5, seed=0)
    assert pairs["obs_a"].shape == (50, 5, 2) and set(np.unique(pairs["label"])) <= {0.0, 1.0}
    model = _model()
    objective = make_loss("trex", demos, n_pairs=300, segment_length=6, seed=0)
    before = _value(objective, model)
    result = fit(model, demos, loss="trex", epochs=30, lr=3e-3, batch_size=32, loss_kwargs={"n_pairs": 300})
    assert result.loss == "trex"
    assert _value(objective, model) < 0.8 * before
    # the learned reward prefers the teacher's good moves: positive correlation with the dense reward
    assert evaluate(model, TINY, Teacher(TINY)).pearson > 0.3
    with pytest.raises(ValueError, match="two demonstrator_noise levels"):
        make_loss("trex", make_demonstrations(episodes=4, noises=(0.0,)))


def test_auto_picks_the_loss_from_the_data():
    demos = make_demonstrations(episodes=4)
    assert make_loss("auto", make_transitions(n=5)).kind == "mse"
    assert make_loss("auto", make_preferences(n=5)).kind == "bradley_terry"
    assert make_loss("auto", demos).kind == "maxent_irl"  # the metadata records the grid env
    demos.metadata.clear()
    assert make_loss("auto", make_demonstrations(episodes=4, noises=(0.0, 0.5))).kind == "maxent_irl"
    with pytest.raises(ValueError, match="loss='hinge' is not allowed"):
        make_loss("hinge", make_transitions(n=5))
    with pytest.raises(ValueError, match="cannot tell the feedback kind"):
        make_loss("auto", {"obs": np.zeros((3, 2))})


def test_same_seed_gives_identical_weights_and_other_seeds_differ():
    data = make_transitions(n=100)

    def run(seed: int) -> dict[str, torch.Tensor]:
        model = _model(seed=3)
        fit(model, data, epochs=5, batch_size=16, seed=seed, val_fraction=0.2)
        return model.state_dict()

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_early_stopping_restores_the_best_epoch():
    data = make_transitions(n=60)
    model = _model()
    result = fit(model, data, epochs=400, lr=3e-2, batch_size=8, val_fraction=0.3, patience=3)
    assert isinstance(result, FitResult) and result.stopped_early and result.epochs < 400
    assert result.n_val == 18 and result.n_train == 42
    assert result.best_epoch == int(np.argmin(result.val_loss))
    val = make_loss("mse", data).split(0.3, seed=0)[1]
    assert _value(val, model) == pytest.approx(result.best_val_loss, rel=1e-5)
    assert model.metadata["fit"]["best_epoch"] == result.best_epoch


def test_steps_and_params_limit_what_is_trained():
    data = make_transitions(n=50)
    model = _model()
    trunk_before = [p.detach().clone() for p in model.trunk.parameters()]
    head_before = model.head.weight.detach().clone()
    result = fit(model, data, steps=7, batch_size=16, params=model.parameter_group("head"))
    assert result.steps == 7 and result.epochs == 2
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, model.trunk.parameters(), strict=True))
    assert not torch.equal(head_before, model.head.weight)


def test_learned_context_is_trained_by_fit():
    model = _model(context_dim=2, learn_context=True)
    before = model.context.detach().clone()
    fit(model, make_transitions(n=40), steps=5, params=model.parameter_group("context"))
    assert not torch.equal(before, model.context.detach())


def test_errors_on_empty_data_nan_and_bad_arguments():
    model = _model()
    empty = make_transitions(n=0)
    with pytest.raises(ValueError, match="data is empty"):
        fit(model, empty)
    bad = make_transitions(n=10)
    bad.label[3] = np.nan
    with pytest.raises(ValueError, match="'label' holds NaN or inf \\(first at item 3\\)"):
        fit(model, bad)
    with pytest.raises(FloatingPointError, match=r"the .mse. loss became nan at epoch \d+, step \d+ \(lr=1e\+30\)"):
        fit(_model(), make_transitions(n=40), lr=1e30, epochs=50)
    with pytest.raises(ValueError, match="patience=3 needs validation data"):
        fit(model, make_transitions(n=10), patience=3)
    with pytest.raises(ValueError, match="lr=-1"):
        fit(model, make_transitions(n=10), lr=-1)
    with pytest.raises(ValueError, match="batch_size=0"):
        fit(model, make_transitions(n=10), batch_size=0)
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        fit(model, make_transitions(n=10), val_fraction=1.5)


def test_objectives_are_usable_on_any_model_by_reuse_code():
    """The reuse methods' interface: subset / split / sample / with_context, and model-agnostic loss calls."""
    objective = make_loss("mse", make_transitions(n=30))
    assert isinstance(objective, LabelObjective) and len(objective) == 30
    gen = torch.Generator().manual_seed(0)
    batch = objective.sample(8, gen)
    assert batch["obs"].shape == (8, 2) and batch["task_index"].tolist() == [0] * 8
    train, val = objective.split(0.2)
    assert (len(train), len(val)) == (24, 6)
    assert objective.split(0.01) == (objective, None)
    assert len(objective.subset(np.arange(30) < 5)) == 5
    model = _model(context_dim=3)
    with_ctx = objective.with_context({TINY.id: np.ones(3, np.float32)})
    model.set_context(np.ones(3))
    expected = _value(objective, model)
    model.set_context(np.zeros(3))
    assert _value(with_ctx, model) == pytest.approx(expected, rel=1e-6)
    # a plain function of the same signature works too
    const = lambda obs, action, next_obs, done: torch.zeros(obs.shape[0])  # noqa: E731
    assert _value(objective, const) == pytest.approx(float(np.mean(make_transitions(n=30).label ** 2)), rel=1e-6)
