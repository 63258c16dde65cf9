"""benchmarks/done_planning.py: the planning measure is exact on the teacher's own reward, and a tiny run writes its
JSON from validation goals only."""

from __future__ import annotations

import json

import numpy as np

from rewardshare.envs import GoalTask
from rewardshare.experiments.fewshot import family_split
from rewardshare.experiments.fewshot_config import FewShotConfig
from rewardshare.feedback import Teacher
from rewardshare.rewardmodels.evaluation import grid_mdp, reward_tensor


def test_teacher_reward_has_no_cycle_and_reaches_from_every_start(load_benchmark) -> None:
    mod = load_benchmark("done_planning")
    task = GoalTask(layout="four_rooms", size=9, goal=(6, 2))
    mdp = grid_mdp(task)
    full = reward_tensor(Teacher(task).true_reward, mdp)
    r = np.take_along_axis(full, mdp.next_state[:, :, None], axis=2)[:, :, 0]
    assert mod.best_cycle2(r, mdp)[0] == 0.0  # +1 closer, -1 farther: every two-step cycle pays exactly 0
    assert mod.reaches(r, mdp) == 1.0
    # a reward paying +1 for every bump into a wall: standing still beats the goal from every start
    bumps = r + (mdp.next_state == np.arange(mdp.n_states)[:, None]) * 2.0
    assert mod.reaches(bumps, mdp) == 0.0


def test_quick_run_uses_validation_goals_only(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("done_planning")
    out = tmp_path / "dp.json"
    res = mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert data["command"] == f"python benchmarks/done_planning.py --quick --out {out}"
    split = family_split(FewShotConfig(), data["settings"]["family"], data["settings"]["seed"])
    validation = {t.id for t in split.validation}
    assert {r["goal"] for r in data["runs"]} == validation
    assert not validation & {t.id for t in split.held_out}
    assert {(s["use_done"], s["k"]) for s in data["summary"]} == {(False, 4), (True, 4)}
    for r in data["runs"]:
        assert 0.0 <= r["reaches_plain"] <= 1.0 and 0.0 <= r["reaches_potential"] <= 1.0


def test_quick_run_from_demonstrations(tmp_path, load_benchmark) -> None:
    mod = load_benchmark("done_planning")
    data = mod.main(["--quick", "--feedback", "demonstrations", "--out", str(tmp_path / "dp.json")])
    assert data["settings"]["feedback"] == "demonstrations"
    assert len(data["runs"]) == 2 * len(family_split(FewShotConfig(), "open:5", 0).validation)
