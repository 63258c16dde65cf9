"""The ``agents_four_rooms`` and ``agents_dqn_open`` profiles: what they fix, and their code path (DQN on a latent
model's pessimistic reward and on a scratch ensemble, four rooms) end to end on a seconds-long budget."""

from __future__ import annotations

import dataclasses

import pytest

from rewardshare.experiments import PROFILES, BenchConfig, ResultStore, get_profile, plan, run_sweep, task_split


def test_the_profiles_are_what_the_report_says():
    fr, do = PROFILES["agents_four_rooms"], PROFILES["agents_dqn_open"]
    for c in (fr, do):
        assert c.run_labels() == ("scratch", "scratch+pessimistic", "latent", "latent+pessimistic", "teacher")
        assert (c.success_threshold, c.pessimism_beta, c.collapse_drop, c.seeds, c.n_eval_tasks) == (
            0.9, 1.0, 0.5, (0, 1), 6)
        assert BenchConfig.from_dict(c.to_dict()) == c and BenchConfig.from_dict(c.to_dict()).config_hash() == (
            c.config_hash())
    assert (fr.layout, fr.size, fr.algos, fr.ks, fr.rl_ks, fr.total_timesteps) == (
        "four_rooms", 9, ("ppo", "dqn"), (16, 32), (16, 32), 24_000)
    assert (do.layout, do.size, do.algos, do.ks, do.rl_ks, do.total_timesteps) == (
        "open", 8, ("dqn",), (8, 16), (8, 16), 20_000)
    # 2 algos x 6 goals x 2 seeds x (2 methods x 2 variants x 2 k + teacher); DQN on open: 1 algo
    assert sum(u.stage == "run" for u in plan(fr, "/nonexistent/fr")) == 2 * 6 * 2 * 9
    assert sum(u.stage == "run" for u in plan(do, "/nonexistent/do")) == 6 * 2 * 9
    # the open-room DQN profile evaluates the collapse profile's held-out goals, so PPO and DQN compare goal by goal
    assert [t.id for t in task_split(do)["eval"]] == [t.id for t in task_split(PROFILES["collapse"])["eval"]]


@pytest.mark.parametrize("name", ["agents_four_rooms", "agents_dqn_open"])
def test_the_code_path_runs_on_a_tiny_budget(name, tmp_path):
    tiny = dict(n_eval_tasks=1, n_validation_tasks=1, source_budget=8, ks=(4,), rl_ks=(4,), hidden_sizes=(16,),
                maml_support_size=4, maml_query_size=4,
                pretrain_steps=10, adapt_steps=(0, 3), adapt_lrs=(1e-2,), validation_pool=8, seeds=(0,),
                selection_seeds=(0,), total_timesteps=256, n_envs=2, eval_every=128, eval_episodes=2,
                ensemble_size=2)
    c = get_profile(name, **tiny)
    res = run_sweep(c, tmp_path, workers=1, progress=False)
    assert res.ok, res.failed
    runs = [ResultStore(tmp_path, c).read(p) for p in ResultStore(tmp_path, c).run_files()]
    assert {(r["algo"], r["method"], r["uncertainty"]) for r in runs} == {
        (a, m, u) for a in c.algos for m in ("scratch", "latent") for u in ("none", "pessimistic")} | {
        (a, "teacher", "none") for a in c.algos}
    pess = [r for r in runs if r["method"] == "latent" and r["uncertainty"] == "pessimistic"]
    assert all(r["reward"]["kind"] == "latent_posterior" and r["reward"]["beta"] == 1.0 for r in pess)


@pytest.mark.parametrize(("name", "base"), [("agents_demos_end", "agents_demos"),
                                            ("agents_demos_end_four_rooms", "agents_demos_four_rooms")])
def test_the_demonstration_end_profiles_fix_the_issue_statistics(name, base):
    c, b = PROFILES[name], PROFILES[base]
    assert (c.feedback, c.source_feedback, c.ks, c.rl_ks, c.algos, c.use_done) == (
        "demonstrations", "labels", (1,), (1,), ("ppo", "dqn"), False)
    assert (c.n_eval_tasks, c.seeds, c.reward_uncertainty) == (8, (0, 1, 2, 3, 4), ("none", "potential"))
    assert (c.layout, c.size, c.total_timesteps, c.pretrain_steps) == (b.layout, b.size, b.total_timesteps,
                                                                        b.pretrain_steps)
    # 2 algos x 8 goals x 5 seeds x (2 methods x 2 variants x 1 k + teacher)
    assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == 2 * 8 * 5 * 5
    # the base profile's 6 held-out goals come first: its results compare goal by goal
    assert [t.id for t in task_split(c)["eval"]][:6] == [t.id for t in task_split(b)["eval"]]


@pytest.mark.parametrize(("name", "base", "k"), [("agents_labels_open", "agents_dqn_open", 16),
                                                 ("agents_labels_four_rooms", "agents_four_rooms", 32)])
def test_the_label_statistics_profiles_fix_the_issue_statistics(name, base, k):
    c, b = PROFILES[name], PROFILES[base]
    assert (c.feedback, c.ks, c.rl_ks, c.algos, c.use_done, c.reward_uncertainty) == (
        "labels", (k,), (k,), ("ppo", "dqn"), True, ("none", "potential"))
    assert (c.n_eval_tasks, c.seeds) == (8, (0, 1, 2, 3, 4))
    assert (c.layout, c.size, c.total_timesteps, c.source_budget) == (b.layout, b.size, b.total_timesteps,
                                                                      b.source_budget)
    # 2 algos x 8 goals x 5 seeds x (2 methods x 2 variants + teacher)
    assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == 2 * 8 * 5 * 5
    assert [t.id for t in task_split(c)["eval"]][:6] == [t.id for t in task_split(b)["eval"]]


@pytest.mark.parametrize(("name", "base"), [("agents_demos_end_four_rooms_long", "agents_demos_end_four_rooms"),
                                            ("agents_labels_four_rooms_long", "agents_labels_four_rooms")])
def test_the_long_profiles_only_lengthen_ppo(name, base):
    c, b = PROFILES[name], PROFILES[base]
    assert (c.algos, c.total_timesteps, b.total_timesteps) == (("ppo",), 36_000, 24_000)
    assert dataclasses.replace(c, profile=b.profile, algos=b.algos, total_timesteps=b.total_timesteps) == b
    assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == 8 * 5 * 5


def test_the_active_statistics_profile_only_changes_the_statistics():
    c, b = PROFILES["agents_active_four_rooms_stats"], PROFILES["agents_active_four_rooms_done"]
    assert (c.query, c.ks, c.use_done, c.reward_uncertainty) == ("information_gain", (8,), True, ("none", "potential"))
    assert dataclasses.replace(c, profile=b.profile, n_eval_tasks=b.n_eval_tasks, seeds=b.seeds) == b
    assert (c.n_eval_tasks, c.seeds) == (8, (0, 1, 2, 3, 4))
    assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == 2 * 8 * 5 * 5


def test_the_open_active_statistics_profile():
    c, b = PROFILES["agents_active_open_stats"], PROFILES["agents_active"]
    assert (c.query, c.ks, c.rl_ks, c.use_done, c.reward_uncertainty) == (
        "information_gain", (8,), (8,), True, ("none", "potential"))
    assert (c.layout, c.size, c.total_timesteps, c.n_eval_tasks, c.seeds) == (
        b.layout, b.size, b.total_timesteps, 8, (0, 1, 2, 3, 4))
    assert sum(u.stage == "run" for u in plan(c, "/nonexistent/x")) == 2 * 8 * 5 * 5
