"""The few-shot benchmark: split hygiene, paired nested draws, resumable units, statistics and the smoke profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments import fewshot
from rewardshare.experiments.fewshot import Pools, family_split, planned_units, run_fewshot
from rewardshare.experiments.fewshot_config import BAYES, FewShotConfig, get_fewshot_profile
from rewardshare.experiments.fewshot_report import aggregate
from rewardshare.experiments.stats import first_reaching, hierarchical_bootstrap

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "fewshot_reward.py"


def test_split_keeps_held_out_goals_out_of_training_and_selection() -> None:
    cfg = FewShotConfig()
    for spec in cfg.families:
        for seed in cfg.pretrain_seeds:
            split = family_split(cfg, spec, seed)
            held = {t.id for t in split.held_out}
            assert held == {t.id for t in split.family.held_out}  # every held-out goal is evaluated
            assert not held & {t.id for t in (*split.source, *split.validation)}
            assert not {t.id for t in split.source} & {t.id for t in split.validation}
            assert len(split.validation) == cfg.n_validation
    # the validation goals change with the pre-training seed, the held-out goals do not
    a, b = family_split(cfg, "open:8", 0), family_split(cfg, "open:8", 1)
    assert a.validation != b.validation and a.held_out == b.held_out


def test_draws_are_nested_and_method_independent() -> None:
    cfg = get_fewshot_profile("smoke")
    split = family_split(cfg, cfg.families[0], 0)
    task = split.held_out[0]
    pools = Pools(cfg)
    small, large = pools.prefix("labels", task, 7, 2), pools.prefix("labels", task, 7, 4)
    np.testing.assert_array_equal(small.agent_pos, large.agent_pos[:2])
    np.testing.assert_array_equal(small.label, large.label[:2])
    # a fresh pool (another method's unit) draws the same items
    np.testing.assert_array_equal(Pools(cfg).prefix("labels", task, 7, 4).label, large.label)
    assert fewshot._runs(cfg, split, 0) == fewshot._runs(cfg, split, 0)


def test_config_refuses_bad_values_with_the_field_named() -> None:
    with pytest.raises(InvalidArgumentError, match="families=.*layout:size"):
        FewShotConfig(families=("spiral:8",))
    with pytest.raises(InvalidArgumentError, match="ks=.*increasing distinct"):
        FewShotConfig(ks=(4, 2))
    with pytest.raises(InvalidArgumentError, match="feedback=.*names from"):
        FewShotConfig(feedback=("ratings",))
    with pytest.raises(InvalidArgumentError, match="unknown few-shot config fields"):
        get_fewshot_profile("quick", colour="red")
    with pytest.raises(InvalidArgumentError, match="profile='huge'"):
        get_fewshot_profile("huge")


def test_unit_digest_ignores_other_methods_but_not_the_settings() -> None:
    cfg = FewShotConfig()
    more = FewShotConfig(methods=(*cfg.methods, "cavia"), workers=2, pretrain_seeds=(0,), families=("open:8",))
    assert cfg.unit_digest("latent") == more.unit_digest("latent")
    other = FewShotConfig(ks=(0, 4))
    assert cfg.unit_digest("latent") != other.unit_digest("latent")
    assert cfg.unit_digest("latent") != cfg.unit_digest("scratch")


def test_source_goal_rows_add_the_four_moves_out_of_each_source_goal_and_only_change_digests_when_on() -> None:
    cfg = FewShotConfig()
    split = family_split(cfg, "open:5", 0)
    plain, rows = fewshot.source_labels(split, 0), fewshot.source_labels(split, 0, goal_rows=True)
    n = len(plain)
    assert len(rows) == n + 4 * len(split.source)
    for key in ("obs", "action", "next_obs", "done", "label"):  # the uniform draw is kept as it was
        assert np.array_equal(rows.items[key][:n].numpy(), plain.items[key][:n].numpy())
    extra = {k: v[n:].numpy() for k, v in rows.items.items()}
    # the goal absorbs: every extra move starts and ends on its task's goal, pays 0 and ends nothing
    goal_of = {t.id: np.array(t.goal) for t in split.source}
    task = [rows.task_ids[i] for i in extra["task_index"]]
    assert all(np.array_equal(o, goal_of[t]) and np.array_equal(o2, goal_of[t])
               for o, o2, t in zip(extra["obs"], extra["next_obs"], task, strict=True))
    assert not extra["done"].any() and np.all(extra["label"] == 0.0)
    assert sorted(task) == sorted(t.id for t in split.source for _ in range(4))
    assert {tuple(sorted(extra["action"][[i for i, x in enumerate(task) if x == t.id]])) for t in split.source} == {
        (0, 1, 2, 3)}
    # off by default, and then the stored units' digests are the ones they were written with
    full = get_fewshot_profile("full")
    stored = json.loads((BENCH.parent / "results" / "fewshot" / "units" / "open_8_s0_latent.json").read_text())
    assert full.unit_digest("latent") == stored["digest"]
    assert get_fewshot_profile("full", source_goal_rows=True).unit_digest("latent") != stored["digest"]
    with pytest.raises(InvalidArgumentError, match="source_goal_rows=1 is not allowed"):
        FewShotConfig(source_goal_rows=1)


def test_a_method_setting_overrides_the_shared_network_widths() -> None:
    cfg = FewShotConfig(settings={**FewShotConfig().settings, "latent": {"steps": 5, "hidden_sizes": [8, 8, 8, 8]}})
    split = family_split(cfg, "open:5", 0)
    env = split.source[0].make_env()
    spaces = (env.observation_space, env.action_space)
    assert fewshot.build_method(cfg, "latent", spaces, split, 0).config()["model"]["hidden_sizes"] == [8, 8, 8, 8]
    assert fewshot.build_method(cfg, "scratch", spaces, split, 0).config()["model"]["hidden_sizes"] == [128, 128, 128]


def test_hierarchical_bootstrap_and_first_reaching() -> None:
    est = hierarchical_bootstrap([[3.0, 3.0], [3.0]], n_boot=50)
    assert (est.value, est.low, est.high, est.n) == (3.0, 3.0, 3.0, 3)
    est = hierarchical_bootstrap([[1, 2], [8, 9], [math.inf, math.inf]], n_boot=400, seed=1)
    assert est.value == 8.5 and est.low <= est.value and math.isinf(est.high)
    assert first_reaching([0, 4, 16], [0.5, 0.19, 0.3], 0.2) == 4
    assert math.isinf(first_reaching([0, 4], [0.5, None], 0.2))
    # a dip that rises again is not "reached" when the run must stay below the threshold
    assert first_reaching([0, 4, 16, 32], [0.5, 0.19, 0.3, 0.1], 0.2, stay=True) == 32
    assert math.isinf(first_reaching([0, 4, 16], [0.5, 0.19, 0.3], 0.2, stay=True))
    assert first_reaching([0, 4, 16], [0.5, 0.2, None], 0.2, stay=True) == math.inf
    with pytest.raises(ValueError, match="one value per k"):
        first_reaching([0, 4], [0.5], 0.2)


def test_smoke_profile_runs_resumes_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_benchmark
) -> None:
    bench = load_benchmark("fewshot_reward")
    assert bench.main(["--profile", "smoke", "--out", str(tmp_path)]) == 0
    cfg = get_fewshot_profile("smoke")
    units = sorted((tmp_path / "units").glob("*.json"))
    assert len(units) == len(planned_units(cfg)) == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    table = summary["families"]["open-5x5/all"]["labels"]
    assert set(table) == {"scratch", "latent", BAYES}
    assert table[BAYES]["over_bayes"]["0.2"] in (None, 1.0)
    assert (tmp_path / "fewshot.png").stat().st_size > 1000
    assert "bayes_oracle" in (tmp_path / "report.md").read_text()
    # every runs list is the same across methods (paired)
    runs = {json.dumps(json.loads(p.read_text())["result"]["runs"]) for p in units}
    assert len(runs) == 1

    # a second run reuses every stored unit (running one would fail here)
    def refuse(*args, **kwargs):
        raise AssertionError("a stored unit was recomputed")

    monkeypatch.setattr(fewshot, "run_method_unit", refuse)
    monkeypatch.setattr(fewshot, "run_bayes_unit", refuse)
    again = run_fewshot(cfg, tmp_path)
    assert aggregate(cfg, again)["families"] == summary["families"]
    assert bench.main(["--profile", "smoke", "--out", str(tmp_path), "--set", "ks=[4, 0]"]) == 2


def test_a_family_table_uses_only_the_seeds_every_method_finished() -> None:
    cfg = FewShotConfig(ks=(0, 4), thresholds=(0.2,), feedback=("labels",), n_boot=20)

    def unit(method: str, seed: int, epic: float) -> dict:
        return {"family": "f", "method": method, "seed": seed, "runs": [["g1", 1], ["g2", 2]], "source_fit": None,
                "kinds": {"labels": {"epic": {"0": [0.5, 0.5], "4": [epic, epic]}}}}

    summary = aggregate(cfg, [unit("a", 0, 0.1), unit("a", 1, 0.9), unit("b", 0, 0.3)])
    table = summary["families"]["f"]["labels"]
    assert table["a"]["seeds"] == table["b"]["seeds"] == [0]
    assert table["a"]["epic"]["4"]["median"] == pytest.approx(0.1)  # seed 1 (0.9) is left out: b has no seed 1
    assert table["a"]["to_threshold"]["0.2"]["median"] == 4
    assert table["b"]["to_threshold"]["0.2"]["median"] is None  # never reached within the grid
