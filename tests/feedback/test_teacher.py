"""The simulated teacher: exact labels, noise and flip statistics, preferences, the expert, the budget."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from rewardshare.envs import GoalTask, GridGoalEnv, distances_to, move, optimal_actions
from rewardshare.feedback import (
    DENSE_GOAL_BONUS,
    BudgetExhausted,
    Teacher,
    collect_preferences,
    collect_transitions,
    expert_actions,
)
from rewardshare.feedback.preference_model import preference_outcome_probs

# a small layout with walls, a dead end and a sealed pocket (cell (0, 4) cannot reach anything)
SMALL = """
.#..#
.#.#.
...#.
.#...
"""
SMALL = "\n".join(line for line in SMALL.strip().splitlines())


def small_tasks() -> list[GoalTask]:
    env = GridGoalEnv(layout=SMALL)
    return [GoalTask(SMALL, 0, cell) for cell in env.layout.free_cells if cell != (0, 4)]


def all_transitions(layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos, act, nxt = [], [], []
    for cell in layout.free_cells:
        for a in range(4):
            pos.append(cell)
            act.append(a)
            nxt.append(move(layout, cell, a))
    return np.array(pos), np.array(act), np.array(nxt)


@pytest.mark.parametrize("task", small_tasks(), ids=lambda t: t.id)
def test_dense_labels_agree_with_planner_on_every_cell_and_action(task: GoalTask) -> None:
    layout = task.resolve_layout()
    teacher = Teacher(task)
    dist = distances_to(layout, task.goal)
    best = optimal_actions(layout, task.goal)
    pos, act, nxt = all_transitions(layout)
    got = teacher.true_reward(pos, act, nxt)
    assert got.dtype == np.float32 and got.shape == (len(pos),)
    for (cell, a, after, r) in zip(map(tuple, pos), act, map(tuple, nxt), got, strict=True):
        if cell == task.goal or dist[cell] < 0:
            expected = 0.0
        elif after == task.goal:
            expected = 1.0 + DENSE_GOAL_BONUS
        elif best[cell + (a,)]:
            expected = 1.0  # the planner's shortest-path actions are exactly the "closer" moves
        else:
            expected = -1.0  # lengthens the distance or bumps into a wall
        assert r == expected, (cell, a, after)
    # the table form agrees with the vectorized form
    table = teacher.true_reward_table()
    assert np.array_equal(table[pos[:, 0], pos[:, 1], act], got)
    assert teacher.spent == 0  # true rewards are free


def test_dense_values_are_the_documented_ones() -> None:
    teacher = Teacher(GoalTask("open", 4, (0, 3)))
    pos = np.array([[0, 1], [0, 2], [0, 1], [0, 0], [0, 3], [2, 2]])
    act = np.array([1, 1, 3, 0, 2, 0])
    nxt = np.array([[0, 2], [0, 3], [0, 0], [0, 0], [1, 3], [1, 2]])
    assert teacher.true_reward(pos, act, nxt).tolist() == [1.0, 6.0, -1.0, -1.0, 0.0, 1.0]


@pytest.mark.parametrize("step_cost", [0.0, 0.1])
def test_sparse_labels_equal_the_env_reward(step_cost: float) -> None:
    task = GoalTask("four_rooms", 7, (5, 5))
    teacher = Teacher(task, reward="sparse", goal_reward=2.0, step_cost=step_cost)
    env = task.make_env(goal_reward=2.0, step_cost=step_cost)
    pos, act, nxt = all_transitions(env.layout)
    keep = ~(pos == task.goal).all(axis=1)  # the env never steps out of a (terminating) goal
    got = teacher.true_reward(pos[keep], act[keep], nxt[keep])
    for cell, a, r in zip(pos[keep], act[keep], got, strict=True):
        env.reset(options={"start": tuple(cell)})
        _, reward, *_ = env.step(int(a))
        assert r == pytest.approx(reward), (cell, a)
    assert teacher.true_reward(np.array([task.goal]), np.array([1]), np.array([task.goal])).tolist() == [0.0]


def test_true_reward_accepts_segments_and_rejects_bad_cells() -> None:
    teacher = Teacher(GoalTask("four_rooms", 9, (8, 8)))
    seg = np.zeros((3, 4, 2), dtype=np.int64)
    assert teacher.true_reward(seg, np.zeros((3, 4), dtype=np.int64), seg).shape == (3, 4)
    with pytest.raises(ValueError, match=r"next_pos holds cell \(4, 0\), a wall"):
        teacher.true_reward(np.array([[3, 0]]), np.array([2]), np.array([[4, 0]]))
    with pytest.raises(ValueError, match=r"pos holds cell \(9, 0\) outside the 9x9 grid"):
        teacher.true_reward(np.array([[9, 0]]), np.array([2]), np.array([[8, 0]]))
    with pytest.raises(ValueError, match="do not match"):
        teacher.true_reward(np.zeros((2, 2), int), np.zeros(3, int), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="action holds values outside 0..3"):
        teacher.true_reward(np.zeros((1, 2), int), np.array([4]), np.zeros((1, 2), int))
    with pytest.raises(ValueError, match="non-integer"):
        teacher.true_reward(np.full((1, 2), 0.5), np.array([0]), np.zeros((1, 2), int))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward": "shaped"}, r"reward='shaped' is not allowed: use one of \('dense', 'sparse'\)"),
        ({"noise": -0.1}, r"noise=-0.1 is not allowed"),
        ({"flip_prob": 1.5}, r"flip_prob=1.5 is not allowed: use a float in \[0, 1\]"),
        ({"beta": -1.0}, r"beta=-1.0 is not allowed"),
        ({"budget": -3}, r"budget=-3 is not allowed"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Teacher(GoalTask("open", 5, (4, 4)), **kwargs)


def random_transitions(teacher: Teacher, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    free = np.array(teacher.layout.free_cells)
    pos = free[rng.integers(len(free), size=n)]
    act = rng.integers(4, size=n)
    w = teacher.layout.width
    nxt_flat = teacher.next_table[pos[:, 0] * w + pos[:, 1], act]
    return pos, act, np.stack([nxt_flat // w, nxt_flat % w], axis=1)


def test_label_noise_statistics() -> None:
    teacher = Teacher(GoalTask("four_rooms", 9, (1, 1)), noise=0.5, seed=3)
    pos, act, nxt = random_transitions(teacher, 20_000)
    err = teacher.label(pos, act, nxt).astype(np.float64) - teacher.true_reward(pos, act, nxt)
    # standard errors: mean 0.5 / sqrt(n) = 0.0035, std about 0.5 / sqrt(2n) = 0.0025
    assert abs(err.mean()) < 0.015
    assert abs(err.std() - 0.5) < 0.015


@pytest.mark.parametrize("reward", ["dense", "sparse"])
def test_label_flip_statistics(reward: str) -> None:
    task = GoalTask("open", 4, (3, 3))
    teacher = Teacher(task, reward=reward, flip_prob=0.2, seed=5, step_cost=0.25)
    pos, act, nxt = random_transitions(teacher, 20_000)
    clean = teacher.true_reward(pos, act, nxt)
    noisy = teacher.label(pos, act, nxt)
    from_goal = (pos == task.goal).all(axis=1)
    reached = (nxt == task.goal).all(axis=1) & ~from_goal
    if reward == "dense":
        expected_flip = -clean
    else:  # sparse flips toggle whether the goal reward (1.0) is paid
        expected_flip = np.where(from_goal, 0.0, -0.25) + 1.0 * ~reached
    changed = noisy != clean
    assert np.all(noisy[changed] == expected_flip[changed])
    informative = expected_flip != clean
    rate = changed[informative].mean()
    assert abs(rate - 0.2) < 0.015  # standard error 0.003


def test_beta_inf_always_prefers_the_higher_return_and_ties_are_half() -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)), seed=1)
    rng = np.random.default_rng(0)
    n, length = 2000, 3
    free = np.array(teacher.layout.free_cells)
    segs = []
    for _ in range(2):
        pos = free[rng.integers(len(free), size=(n, length))]
        act = rng.integers(4, size=(n, length))
        flat = teacher.next_table[pos[..., 0] * 5 + pos[..., 1], act]
        segs.append((pos, act, np.stack([flat // 5, flat % 5], axis=-1)))
    label = teacher.prefer(*segs[0], *segs[1])
    ra, rb = teacher.segment_return(*segs[0]), teacher.segment_return(*segs[1])
    assert label.dtype == np.float32 and label.shape == (n,)
    assert np.all(label[ra > rb] == 1.0)
    assert np.all(label[ra < rb] == 0.0)
    assert np.all(label[ra == rb] == 0.5)
    assert (ra == rb).sum() > 50 and (ra > rb).sum() > 500  # the test saw every case
    assert teacher.spent == n


def one_step_segments(teacher: Teacher, kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n length-1 segments on open 5x5 with goal (4, 4): 'closer' (+1), 'farther' (-1) or 'goal' (+6)."""
    cell, a, nxt = {"closer": ((2, 2), 1, (2, 3)), "farther": ((2, 2), 3, (2, 1)), "goal": ((4, 3), 1, (4, 4))}[kind]
    return (np.tile(np.array(cell), (n, 1, 1)), np.full((n, 1), a), np.tile(np.array(nxt), (n, 1, 1)))


@pytest.mark.parametrize("beta", [0.3, 1.0])
@pytest.mark.parametrize(("a_kind", "b_kind"), [("closer", "farther"), ("farther", "closer"), ("goal", "farther"),
                                                ("closer", "goal")])
def test_finite_beta_matches_the_logistic_curve(beta: float, a_kind: str, b_kind: str) -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)), beta=beta, seed=11)
    n = 20_000
    label = teacher.prefer(*one_step_segments(teacher, a_kind, n), *one_step_segments(teacher, b_kind, n))
    value = {"closer": 1.0, "farther": -1.0, "goal": 6.0}
    p = 1.0 / (1.0 + math.exp(-beta * (value[a_kind] - value[b_kind])))
    assert set(np.unique(label).tolist()) <= {0.0, 1.0}  # a finite-beta teacher makes hard choices
    bound = 4 * math.sqrt(p * (1 - p) / n) + 1e-3
    assert abs(label.mean() - p) < bound


def test_finite_beta_ties_are_half_and_flips_invert_choices() -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)), beta=0.5, seed=2)
    seg = one_step_segments(teacher, "closer", 100)
    assert np.all(teacher.prefer(*seg, *seg) == 0.5)
    flipper = Teacher(GoalTask("open", 5, (4, 4)), flip_prob=0.25, seed=4)
    n = 20_000
    label = flipper.prefer(*one_step_segments(flipper, "goal", n), *one_step_segments(flipper, "farther", n))
    assert abs((label == 0.0).mean() - 0.25) < 0.015
    assert np.all(flipper.prefer(*seg, *seg) == 0.5)  # ties are never flipped


def test_budget_accounting_is_exact_and_exhaustion_raises() -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)), budget=10)
    pos, act, nxt = random_transitions(teacher, 4)
    teacher.label(pos, act, nxt)
    assert (teacher.spent, teacher.remaining) == (4, 6)
    seg = one_step_segments(teacher, "closer", 3)
    teacher.prefer(*seg, *seg)
    assert teacher.spent == 7
    teacher.true_reward(pos, act, nxt)
    teacher.act(pos)
    assert teacher.spent == 7  # noiseless rewards and expert actions are free
    pos5, act5, nxt5 = random_transitions(teacher, 5)
    with pytest.raises(BudgetExhausted, match="asked for 5 queries but only 3 of budget=10 are left"):
        teacher.label(pos5, act5, nxt5)
    assert teacher.spent == 7  # a refused call spends nothing
    with pytest.raises(BudgetExhausted, match="asked for 8 queries"):
        teacher.demonstrate((0, 0))  # a shortest path from (0, 0) to (4, 4) has 8 steps
    assert teacher.spent == 7
    teacher.spend(3)
    assert teacher.remaining == 0
    with pytest.raises(BudgetExhausted):
        teacher.spend(1)
    unlimited = Teacher(GoalTask("open", 5, (4, 4)))
    unlimited.label(pos5, act5, nxt5)
    assert (unlimited.spent, unlimited.remaining) == (5, None)


def bfs_length(task: GoalTask, start: tuple[int, int]) -> int:
    return int(distances_to(task.resolve_layout(), task.goal)[start])


def test_epsilon_zero_demonstrations_are_shortest_paths_with_random_tie_breaking() -> None:
    task = GoalTask("four_rooms", 9, (8, 8))
    teacher = Teacher(task, seed=0)
    for start in task.resolve_layout().free_cells:
        if start == task.goal:
            continue
        demo = teacher.demonstrate(start)
        assert len(demo["action"]) == bfs_length(task, start), start
        assert demo["done"][-1] and not demo["done"][:-1].any()
        assert tuple(demo["next_agent_pos"][-1]) == task.goal
    assert teacher.spent == sum(bfs_length(task, s) for s in task.resolve_layout().free_cells if s != task.goal)
    open_task = GoalTask("open", 6, (5, 5))
    paths = {tuple(Teacher(open_task, seed=s).demonstrate((0, 0))["action"].tolist()) for s in range(20)}
    assert len(paths) > 5  # ties between shortest paths are broken by the seeded RNG
    same = [Teacher(open_task, seed=3).demonstrate((0, 0))["action"].tolist() for _ in range(2)]
    assert same[0] == same[1]


@pytest.mark.parametrize(("epsilon", "temperature"), [(0.3, None), (1.0, None), (0.0, 2.0)])
def test_noisy_demonstrations_reach_the_goal_or_are_truncated(epsilon: float, temperature: float | None) -> None:
    task = GoalTask("four_rooms", 9, (8, 8))
    teacher = Teacher(task, seed=7)
    lengths = []
    for _ in range(30):
        demo = teacher.demonstrate((0, 0), max_steps=40, epsilon=epsilon, temperature=temperature)
        n = len(demo["action"])
        lengths.append(n)
        reached = tuple(demo["next_agent_pos"][-1]) == task.goal
        assert reached or n == 40
        assert n >= bfs_length(task, (0, 0))
    assert max(lengths) > bfs_length(task, (0, 0))  # noise made some demonstrations longer


def test_boltzmann_action_frequencies_match_the_softmax() -> None:
    task = GoalTask("open", 5, (4, 4))
    teacher = Teacher(task)
    cell = (2, 2)  # up and left lead away (d=5), right and down lead closer (d=3)
    n, temp = 20_000, 1.5
    actions = teacher.act(np.tile(np.array(cell), (n, 1)), temperature=temp, rng=np.random.default_rng(0))
    d_next = np.array([distances_to(task.resolve_layout(), task.goal)[move(task.resolve_layout(), cell, a)]
                       for a in range(4)])
    p = np.exp(-(1 + d_next) / temp)
    p /= p.sum()
    freq = np.bincount(actions, minlength=4) / n
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_expert_actions_are_uniform_without_a_shortest_path_action() -> None:
    optimal = np.zeros((20_000, 4), dtype=bool)  # e.g. queries on the goal itself
    actions = expert_actions(optimal, np.zeros((20_000, 4)), np.random.default_rng(0))
    assert np.all(np.abs(np.bincount(actions, minlength=4) / 20_000 - 0.25) < 0.015)


def test_config_round_trips_through_json() -> None:
    teacher = Teacher(GoalTask("maze", 9, (8, 8)), reward="sparse", noise=0.1, flip_prob=0.05, seed=9, budget=100)
    config = json.loads(json.dumps(teacher.config(), allow_nan=False))
    assert config["beta"] == "inf" and config["task"]["id"] == "maze-9x9-s0/g8_8"
    again = Teacher.from_config(config)
    assert again.config() == teacher.config()
    pos, act, nxt = random_transitions(teacher, 50)
    assert np.array_equal(again.label(pos, act, nxt), teacher.label(pos, act, nxt))  # same seed, same noise


# -- B-Pref settings: myopia, equal, skip ---------------------------------------------------------------------------
def random_segment_pairs(teacher: Teacher, n: int, length: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    free = np.array(teacher.layout.free_cells)
    w = teacher.layout.width
    out = []
    for _ in range(2):
        pos = free[rng.integers(len(free), size=(n, length))]
        act = rng.integers(4, size=(n, length))
        flat = teacher.next_table[pos[..., 0] * w + pos[..., 1], act]
        out.append((pos, act, np.stack([flat // w, flat % w], axis=-1)))
    return out


@pytest.mark.parametrize(
    ("kwargs", "digest"),
    [({}, "27e887e4d6195a5e"), ({"beta": 0.5}, "27a8fc93952ac4ed"),
     ({"beta": 0.5, "flip_prob": 0.1}, "48ccf0ee226512f4"), ({"flip_prob": 0.2}, "3e16a5bd204402ce")],
)
def test_default_bpref_settings_reproduce_the_labels_of_before(kwargs: dict, digest: str) -> None:
    # digests of the labels the teacher gave before myopia / equal / skip existed (same seed, same queries)
    teacher = Teacher(GoalTask("four_rooms", 9, (7, 2)), seed=7, **kwargs)
    a, b = random_segment_pairs(teacher, 200, 4, 3)
    labels = teacher.prefer(*a, *b).tobytes() + teacher.prefer(*a, *b).tobytes()
    assert hashlib.sha256(labels).hexdigest()[:16] == digest


def test_default_bpref_settings_reproduce_collected_datasets_of_before() -> None:
    task = GoalTask("open", 6, (1, 4))
    prefs = collect_preferences(task, 40, segment_length=4, seed=2, beta=1.0, flip_prob=0.1)
    labels = collect_transitions(task, 40, seed=2, noise=0.3, flip_prob=0.1)
    assert hashlib.sha256(prefs.label.tobytes()).hexdigest()[:16] == "60bab2f79d10020f"
    assert hashlib.sha256(labels.label.tobytes()).hexdigest()[:16] == "5b884c16270b769b"


def three_step(kind: str, n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments on open 5x5 with goal (4, 4): 'early' = closer, closer, farther (+1 +1 -1); 'late' = farther,
    farther, closer (-1 -1 +1)."""
    cells, actions = {"early": ([(2, 2), (2, 3), (3, 3)], [1, 2, 0]),
                      "late": ([(2, 2), (2, 1), (1, 1)], [3, 0, 2])}[kind]
    layout = GoalTask("open", 5, (4, 4)).resolve_layout()
    nxt = [move(layout, c, a) for c, a in zip(cells, actions, strict=True)]
    return (np.tile(np.array(cells), (n, 1, 1)), np.tile(np.array(actions), (n, 1)), np.tile(np.array(nxt), (n, 1, 1)))


def test_myopia_weighs_later_steps_more() -> None:
    task = GoalTask("open", 5, (4, 4))
    plain, myopic = Teacher(task), Teacher(task, myopia=0.5)
    early, late = three_step("early"), three_step("late")
    assert plain.segment_return(*early)[0] == 1.0 and plain.segment_return(*late)[0] == -1.0
    # 0.25 * r_0 + 0.5 * r_1 + 1 * r_2
    assert myopic.perceived_return(*early)[0] == pytest.approx(-0.25)
    assert myopic.perceived_return(*late)[0] == pytest.approx(0.25)
    assert myopic.segment_return(*early)[0] == 1.0  # the true return does not change
    assert plain.prefer(*early, *late)[0] == 1.0
    assert myopic.prefer(*early, *late)[0] == 0.0  # the myopic teacher remembers the last, bad step of A


def test_equal_threshold_makes_close_returns_a_tie_and_ties_are_never_flipped() -> None:
    task = GoalTask("open", 5, (4, 4))
    closer, farther = one_step_segments(Teacher(task), "closer", 500), one_step_segments(Teacher(task), "farther", 500)
    assert np.all(Teacher(task, equal=2.0).prefer(*closer, *farther) == 1.0)  # |1 - (-1)| = 2 is not below 2
    tie = Teacher(task, equal=2.5, flip_prob=0.3, beta=0.5, seed=1).prefer(*closer, *farther)
    assert np.all(tie == 0.5)
    goal = one_step_segments(Teacher(task), "goal", 500)
    assert np.all(Teacher(task, equal=2.5).prefer(*goal, *farther) == 1.0)  # 6 - (-1) = 7 is no tie


def test_skip_gives_no_label_but_charges_the_query_and_keeps_the_random_stream() -> None:
    task = GoalTask("four_rooms", 9, (7, 2))
    skipper = Teacher(task, beta=0.5, flip_prob=0.1, skip=0.0, seed=7, budget=400)
    plain = Teacher(task, beta=0.5, flip_prob=0.1, seed=7)
    a, b = random_segment_pairs(plain, 200, 4, 3)
    got, before = skipper.prefer(*a, *b), plain.prefer(*a, *b)
    low = np.maximum(plain.segment_return(*a), plain.segment_return(*b)) < 0.0
    assert 20 < low.sum() < 180  # the test saw both cases
    assert np.all(np.isnan(got[low]))
    np.testing.assert_array_equal(got[~low], before[~low])  # the other pairs get exactly their labels of before
    assert skipper.spent == 200  # a skipped query still took the person's time


def test_preference_outcome_probabilities_match_the_teachers_frequencies() -> None:
    task = GoalTask("open", 5, (4, 4))
    settings = {"beta": 0.7, "flip_prob": 0.1, "myopia": 0.8, "equal": 0.5, "skip": -0.5}
    n = 20_000
    for a_kind, b_kind in [("closer", "farther"), ("goal", "closer"), ("farther", "farther")]:
        teacher = Teacher(task, seed=3, **settings)
        a, b = one_step_segments(teacher, a_kind, n), one_step_segments(teacher, b_kind, n)
        labels = teacher.prefer(*a, *b)
        probs = preference_outcome_probs(teacher.perceived_return(*a)[:1], teacher.perceived_return(*b)[:1],
                                         beta=0.7, flip_prob=0.1, equal=0.5, skip=-0.5)[0]
        freq = np.array([(labels == 0).mean(), (labels == 0.5).mean(), (labels == 1).mean(), np.isnan(labels).mean()])
        assert np.all(np.abs(freq - probs) < 4 * np.sqrt(probs * (1 - probs) / n) + 1e-3), (a_kind, b_kind)
    assert probs[3] == 1.0  # farther vs farther: both -1 < -0.5, skipped


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"myopia": 0.0}, r"myopia=0.0 is not allowed: use a float in \(0, 1\]"),
        ({"myopia": 1.5}, r"myopia=1.5 is not allowed"),
        ({"myopia": True}, r"myopia=True is not allowed"),
        ({"equal": -0.1}, r"equal=-0.1 is not allowed: use a finite float >= 0"),
        ({"equal": float("nan")}, r"equal=nan is not allowed"),
        ({"skip": float("inf")}, r"skip=inf is not allowed: use a finite float or None"),
        ({"skip": "low"}, r"skip='low' is not allowed"),
    ],
)
def test_bpref_settings_reject_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Teacher(GoalTask("open", 5, (4, 4)), **kwargs)


def test_bpref_settings_round_trip_and_old_configs_get_the_defaults() -> None:
    teacher = Teacher(GoalTask("open", 5, (4, 4)), beta=2.0, myopia=0.9, equal=0.25, skip=-1.0, seed=4)
    config = json.loads(json.dumps(teacher.config(), allow_nan=False))
    assert (config["myopia"], config["equal"], config["skip"]) == (0.9, 0.25, -1.0)
    assert Teacher.from_config(config).config() == teacher.config()
    old = {k: v for k, v in config.items() if k not in ("myopia", "equal", "skip")}
    again = Teacher.from_config(old)
    assert (again.myopia, again.equal, again.skip) == (1.0, 0.0, None)
