"""Query selection: exact information gains where the answer is known, the strategies, the active loop, its dataset."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from rewardshare.envs import GoalTask, TaskFamily
from rewardshare.envs.layouts import make_layout
from rewardshare.feedback import Preferences, Teacher, Transitions, collect_transitions
from rewardshare.rewardmodels import make_loss
from rewardshare.rewardmodels.reuse import make_method
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior, TeacherModel
from rewardshare.rewardmodels.reuse.queries import (
    Disagreement,
    GoalBelief,
    InformationGain,
    LabelPool,
    LabelPredictive,
    LatentBelief,
    PreferencePool,
    Uniform,
    active_feedback,
    discrete_information_gain,
    label_information_gain,
    make_strategy,
    mixture_entropy,
)

OPEN5 = make_layout("open", 5)
LOG2 = math.log(2.0)
# on open 5x5 with goals (0, 0) and (4, 4): moving left from (0, 1) enters (0, 0) (+6) but leads away from (4, 4)
# (-1); moving right from (0, 4) bumps into the border (-1) under both; moving up from (2, 2) is +1 / -1
SEPARATING, BLIND, OPPOSITE = ((0, 1), 3), ((0, 4), 1), ((2, 2), 0)


def two_goal_belief(**teacher: float) -> GoalBelief:
    return GoalBelief(GoalPosterior(OPEN5, TeacherModel(**teacher), candidates=[(0, 0), (4, 4)]))


def scores(strategy, belief, pool) -> np.ndarray:
    return strategy.scores(belief, pool, np.arange(len(pool)))


def query_pool(*queries) -> LabelPool:
    return LabelPool(np.array([q[0] for q in queries]), np.array([q[1] for q in queries]))


# -- exact information gains -----------------------------------------------------------------------------------------
def test_noiseless_eig_is_log2_for_a_separating_query_and_0_otherwise() -> None:
    belief = two_goal_belief()
    eig = scores(InformationGain(), belief, query_pool(SEPARATING, BLIND, OPPOSITE))
    np.testing.assert_allclose(eig, [LOG2, 0.0, LOG2], atol=1e-12)
    grid = scores(InformationGain(), belief, LabelPool.grid(OPEN5))
    assert set(np.round(grid, 9).tolist()) == {0.0, round(LOG2, 9)}  # every query separates the two goals or not
    chosen = InformationGain().select(belief, query_pool(BLIND, SEPARATING), np.ones(2, bool), np.random.default_rng(0))
    assert chosen == 1


def test_flips_make_a_sign_query_a_binary_symmetric_channel() -> None:
    f = 0.1
    eig = scores(InformationGain(), two_goal_belief(flip_prob=f), query_pool(SEPARATING, OPPOSITE, BLIND))
    binary_entropy = -(f * math.log(f) + (1 - f) * math.log(1 - f))
    # +6 vs -1 stays distinguishable after a flip (-6 vs +1); +1 vs -1 flips into each other
    np.testing.assert_allclose(eig, [LOG2, LOG2 - binary_entropy, 0.0], atol=1e-12)


def test_discrete_information_gain_values() -> None:
    one_hot = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert discrete_information_gain([0.5, 0.5], one_hot)[0] == pytest.approx(LOG2)
    assert discrete_information_gain([0.5, 0.5], np.ones((2, 1, 2)) / 2)[0] == pytest.approx(0.0)
    assert discrete_information_gain([1.0, 0.0], one_hot)[0] == pytest.approx(0.0)  # nothing left to learn
    w = np.array([0.2, 0.3, 0.5])
    assert discrete_information_gain(w, np.eye(3)[:, None, :])[0] == pytest.approx(-(w * np.log(w)).sum())


def numeric_entropy(weights, means, sigma: float) -> float:
    y = np.linspace(min(means) - 12 * sigma, max(means) + 12 * sigma, 200_001)
    p = np.exp(logsumexp(np.log(weights)[:, None] - 0.5 * ((y[None] - np.array(means)[:, None]) / sigma) ** 2,
                         axis=0)) / (sigma * math.sqrt(2 * math.pi))
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)) * (y[1] - y[0]))


@pytest.mark.parametrize(("weights", "means", "sigma"), [([1.0], [0.3], 0.5), ([0.5, 0.5], [0.0, 1.0], 0.5),
                                                         ([0.2, 0.5, 0.3], [-1.0, 0.2, 3.0], 0.7),
                                                         ([0.5, 0.5], [-6.0, 6.0], 0.1)])
def test_mixture_entropy_matches_numerical_integration(weights, means, sigma) -> None:
    got = mixture_entropy(np.array([weights]), np.array([means]), np.zeros((1, len(means)), int), sigma)[0]
    assert got == pytest.approx(numeric_entropy(np.array(weights), means, sigma), abs=2e-3)
    if len(means) == 1:
        assert got == pytest.approx(0.5 * math.log(2 * math.pi * math.e * sigma**2), abs=1e-12)


def test_mixture_entropy_adds_the_entropy_of_a_discrete_part() -> None:
    # two identical Gaussians told apart by their group (the env's done flag): one more bit than one Gaussian
    h = mixture_entropy(np.array([[0.5, 0.5]]), np.zeros((1, 2)), np.array([[0, 1]]), 0.3)[0]
    assert h == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.09) + LOG2, abs=1e-12)


def test_noisy_label_eig_is_the_gaussian_mixture_information() -> None:
    sigma = 0.8
    eig = scores(InformationGain(), two_goal_belief(noise=sigma), query_pool(OPPOSITE, BLIND))
    gaussian = 0.5 * math.log(2 * math.pi * math.e * sigma**2)
    expected = numeric_entropy(np.array([0.5, 0.5]), [1.0, -1.0], sigma) - gaussian
    assert eig[0] == pytest.approx(expected, abs=2e-3)
    assert 0 < eig[0] < LOG2 and eig[1] == pytest.approx(0.0, abs=1e-9)


def test_latent_style_predictions_use_every_hypothesis_components() -> None:
    # 100 distinct predicted values (more than are merged): one query, hypotheses far apart -> I = H(weights)
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(100))
    values = (np.arange(100) * 10.0)[:, None, None]
    pred = LabelPredictive(values, np.ones_like(values), np.zeros(values.shape, bool), 0.1)
    assert label_information_gain(w, pred)[0] == pytest.approx(-(w * np.log(w)).sum(), abs=1e-6)


def test_preference_eig_counts_ties_and_skips_as_answers() -> None:
    # one-step segments from (2, 2): right vs left is +1 / -1 under (4, 4) and under (0, 0) -1 / +1
    pool = PreferencePool(np.array([[[2, 2]], [[0, 4]]]), np.array([[1], [1]]), np.array([[[2, 2]], [[0, 4]]]),
                          np.array([[3], [1]]))
    np.testing.assert_allclose(scores(InformationGain(), two_goal_belief(), pool), [LOG2, 0.0], atol=1e-12)
    # a teacher for whom returns closer than 3 are equal answers "tie" under both goals: nothing to learn
    np.testing.assert_allclose(scores(InformationGain(), two_goal_belief(equal=3.0), pool), [0.0, 0.0], atol=1e-12)


# -- strategies ------------------------------------------------------------------------------------------------------
def test_disagreement_is_the_weighted_variance_of_the_predicted_label() -> None:
    belief = GoalBelief(GoalPosterior(OPEN5, candidates=[(0, 0), (4, 4)], prior=[0.25, 0.75]))
    got = scores(Disagreement(), belief, query_pool(SEPARATING, BLIND, OPPOSITE))
    var = lambda a, b: 0.25 * 0.75 * (a - b) ** 2  # noqa: E731 (two-point weighted variance)
    np.testing.assert_allclose(got, [var(6, -1), 0.0, var(1, -1)])
    assert Disagreement().select(belief, query_pool(BLIND, OPPOSITE, SEPARATING), np.ones(3, bool),
                                 np.random.default_rng(0)) == 2


def test_uniform_is_seeded_and_ties_are_broken_at_random() -> None:
    belief, pool = two_goal_belief(), LabelPool.grid(OPEN5)
    available = np.ones(len(pool), bool)
    picks = [Uniform().select(belief, pool, available, np.random.default_rng(s)) for s in range(10)]
    assert len(set(picks)) > 5
    assert picks == [Uniform().select(belief, pool, available, np.random.default_rng(s)) for s in range(10)]
    eig_picks = {InformationGain().select(belief, pool, available, np.random.default_rng(s)) for s in range(10)}
    assert len(eig_picks) > 3  # many queries separate the two goals equally well


def test_make_strategy_names_and_errors() -> None:
    assert [make_strategy(n).name for n in ("uniform", "disagreement", "information_gain")] == [
        "uniform", "disagreement", "information_gain"]
    custom = Disagreement()
    assert make_strategy(custom) is custom
    with pytest.raises(ValueError, match=r"strategy='entropy' is not allowed: use one of \('uniform', 'disagreement', "
                                         r"'information_gain'\)"):
        make_strategy("entropy")


# -- the active loop -------------------------------------------------------------------------------------------------
def test_active_labels_identify_the_goal_and_the_dataset_carries_the_evidence() -> None:
    layout = make_layout("open", 8)
    task = GoalTask("open", 8, (5, 2))
    teacher = Teacher(task, budget=10)
    post = GoalPosterior(layout)
    entropies: list[float] = []
    data = active_feedback(post, teacher, LabelPool.grid(layout), 7, "information_gain", seed=3,
                           on_query=lambda k, b: entropies.append(b.posterior.entropy()))
    assert isinstance(data, Transitions) and len(data) == 7 and teacher.spent == 7
    assert post.map_goal() == (5, 2) and post.weights.max() == pytest.approx(1.0)
    assert entropies[-1] == pytest.approx(0.0, abs=1e-9) and entropies[0] < math.log(64)
    meta = data.metadata
    assert meta["query_strategy"] == "information_gain" and meta["budget_spent"] == 7 and meta["skipped"] == 0
    assert len(meta["query_indices"]) == len(set(meta["query_indices"])) == 7
    np.testing.assert_array_equal(data.label, teacher.true_reward(data.agent_pos, data.action, data.next_agent_pos))
    # anyone can learn from the dataset: the posterior rebuilt from it is the active one
    again = GoalPosterior(layout, TeacherModel.from_metadata(meta)).update(data)
    np.testing.assert_allclose(again.weights, post.weights, atol=1e-12)
    # same seed, same queries
    twin = active_feedback(GoalPosterior(layout), Teacher(task), LabelPool.grid(layout), 7, "information_gain", seed=3)
    assert twin.metadata["query_indices"] == meta["query_indices"]


def test_information_gain_needs_fewer_labels_than_uniform_on_open_8x8() -> None:
    layout = make_layout("open", 8)
    pool = LabelPool.grid(layout)

    def labels_to_identify(goal, strategy: str, seed: int) -> int:
        ks: list[int] = []
        active_feedback(GoalPosterior(layout), Teacher(GoalTask("open", 8, goal)), pool, 40, strategy, seed=seed,
                        on_query=lambda k, b: ks.append(k) if not ks and b.posterior.weights.max() >= 0.95 else None)
        return ks[0] if ks else 41

    goals = [(1, 1), (3, 6), (6, 4)]
    eig = [labels_to_identify(g, "information_gain", s) for g in goals for s in range(2)]
    uni = [labels_to_identify(g, "uniform", s) for g in goals for s in range(2)]
    assert max(eig) <= 7 and np.mean(eig) < np.mean(uni) / 2  # log2(64) = 6 bits; a label gives at most ~1.5


def test_active_preferences_drop_skipped_pairs_but_charge_and_learn_from_them() -> None:
    layout = make_layout("open", 6)
    task = GoalTask("open", 6, (1, 4))
    teacher = Teacher(task, skip=-1.5)
    pool = PreferencePool.random(layout, 200, 3, seed=0)
    post = GoalPosterior(layout, TeacherModel(skip=-1.5))
    data = active_feedback(post, teacher, pool, 12, "uniform", seed=1)
    skipped = data.metadata["skipped"]
    assert isinstance(data, Preferences) and len(data) == 12 - skipped and teacher.spent == 12
    assert not np.isnan(data.label).any() and data.metadata["budget_spent"] == 12
    assert post.weights[post.candidates.tolist().index([1, 4])] > 1 / 36
    chosen = np.array(data.metadata["query_indices"])
    kept = chosen[[i for i, v in enumerate(_labels_of(teacher, pool, chosen)) if not np.isnan(v)]]
    np.testing.assert_array_equal(data.action_a, pool.action_a[kept])


def _labels_of(teacher: Teacher, pool: PreferencePool, idx: np.ndarray) -> np.ndarray:
    fresh = Teacher(teacher.task, skip=teacher.skip)
    w = teacher.layout.width
    args = []
    for pos, action in ((pool.pos_a[idx], pool.action_a[idx]), (pool.pos_b[idx], pool.action_b[idx])):
        nxt = fresh.next_table[pos[..., 0] * w + pos[..., 1], action]
        args += [pos, action, np.stack(np.divmod(nxt, w), axis=-1)]
    return fresh.prefer(*args)


def test_active_feedback_rejects_bad_arguments() -> None:
    pool = LabelPool.grid(OPEN5)
    teacher = Teacher(GoalTask("open", 5, (4, 4)))
    post = GoalPosterior(OPEN5)
    with pytest.raises(ValueError, match=r"n=0 is not allowed: use an int in 1..100"):
        active_feedback(post, teacher, pool, 0)
    with pytest.raises(ValueError, match=r"n=101 is not allowed: .*pass replace=True"):
        active_feedback(post, teacher, pool, 101)
    assert len(active_feedback(post, teacher, query_pool(BLIND), 3, "uniform", replace=True)) == 3
    with pytest.raises(ValueError, match="strategy='random' is not allowed"):
        active_feedback(post, teacher, pool, 1, "random")
    with pytest.raises(TypeError, match="pool=.* is not allowed: use a LabelPool or a PreferencePool"):
        active_feedback(post, teacher, [(0, 0)], 1)
    with pytest.raises(TypeError, match="posterior_or_method=.* is not allowed"):
        active_feedback("bayes", teacher, pool, 1)
    with pytest.raises(ValueError, match=r"pos with shape \(3,\) and dtype int64 is not allowed: use 2-D ints"):
        LabelPool(np.array([1, 2, 3]), np.array([0]))
    with pytest.raises(ValueError, match="action holds values outside 0..3"):
        LabelPool(np.array([[0, 0]]), np.array([4]))
    with pytest.raises(ValueError, match="length=0 is not allowed: use an int >= 1"):
        PreferencePool.random(OPEN5, 3, 0)


# -- the latent model's posterior ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def latent():
    torch.set_num_threads(1)
    family = TaskFamily("open", 5, split_seed=0)
    env = family.train[0].make_env()
    source = make_loss("mse", collect_transitions(list(family.train), 96 * len(family.train), seed=0))
    method = make_method("latent", env.observation_space, env.action_space, seed=0, hidden_sizes=(32, 32), steps=300,
                         lr=5e-3, items_per_task=32, embedding_dim=4, infer_steps=30, n_top=4, n_prior_samples=2)
    return family, method.pretrain(source, list(family.train))


def test_latent_belief_starts_on_the_source_latents_and_learns_actively(latent) -> None:
    family, method = latent
    task = family.held_out[0]
    belief = LatentBelief(method, task)
    assert belief.weights.shape == (len(family.train),) and belief.weights.sum() == pytest.approx(1.0)
    pool = LabelPool.grid(OPEN5)
    eig = scores(InformationGain(), belief, pool)
    assert np.all(eig >= 0) and eig.max() <= math.log(len(family.train)) + 1e-6 and eig.max() > 0.1
    data = active_feedback(method, Teacher(task), pool, 4, "information_gain", seed=0)
    assert isinstance(data, Transitions) and len(data) == 4
    active_feedback(belief, Teacher(task), pool, 3, "disagreement")
    assert len(belief.weights) == len(belief.z) and belief.weights.sum() == pytest.approx(1.0)
    assert belief.reward(np.array([[0, 0], [2, 3]]), np.array([1, 2])).shape == (2,)
    with pytest.raises(ValueError, match="takes one feedback kind"):
        belief.observe_preferences(PreferencePool.random(OPEN5, 2, 2), np.array([0]), np.array([1.0]))


# -- the benchmark script ----------------------------------------------------------------------------------------------
def test_benchmark_quick_runs_and_writes_its_table(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "active.json"
    script = str(root / "benchmarks" / "active_queries.py")
    done = subprocess.run([sys.executable, script, "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["strategies"]) == {"uniform", "disagreement", "information_gain"}
    assert "labels to EPIC" in done.stdout
