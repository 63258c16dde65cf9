"""The sweep machinery with a fake executor: resume/skip, failures, config refusal, backends."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
from fake_executor import FAIL_ENV, execute

from rewardshare.experiments import ConfigMismatchError, get_profile, plan, run_sweep
from rewardshare.experiments.runner import Unit, run_units, stable_seed
from rewardshare.experiments.store import ResultStore

EXEC = "fake_executor:execute"


def tiny(**kw):
    base = dict(methods=("scratch", "transfer", "true"), algos=("ppo",), seeds=(0, 1), ks=(4, 8), rl_ks=(8,))
    return get_profile("smoke", **{**base, **kw})


def test_plan_counts_and_dependencies():
    c = tiny()
    units = plan(c, "/nowhere")
    stages = Counter(u.stage for u in units)
    # 1 source, 2 preps (scratch, transfer); runs: (2 learned methods at 1 rl k + 1 oracle) x 1 algo x 1 task x 2 seeds
    assert stages == {"source": 1, "prep": 2, "run": 6}
    prep = next(u for u in units if u.id == "prep/transfer")
    assert prep.deps == ("source",) and len(prep.params["targets"]) == 2 * 1 * 2  # ks x tasks x seeds
    assert next(u for u in units if u.id == "prep/scratch").deps == ()
    ids = [u.id for u in units]
    assert len(set(ids)) == len(ids)
    pos = {u.id: i for i, u in enumerate(units)}
    assert all(pos[d] < pos[u.id] for u in units for d in u.deps)
    oracle = [u for u in units if u.stage == "run" and u.params["method"] == "true"]
    assert all(u.params["k"] == 0 and u.deps == () for u in oracle)


def test_sweep_runs_everything_then_skips_everything(tmp_path):
    c = tiny()
    res = run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    assert res.ok and res.ran == res.total == len(plan(c, tmp_path)) and res.skipped == 0
    res2 = run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    assert (res2.ran, res2.skipped) == (0, res2.total)
    sessions = ResultStore(tmp_path, c).read(tmp_path / "sessions.json")["sessions"]
    assert [(x["ran"], x["skipped"]) for x in sessions] == [(res.total, 0), (0, res.total)]


def test_sweep_resumes_only_missing_units(tmp_path):
    c = tiny()
    run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    store = ResultStore(tmp_path, c)
    lost = store.run_files()[0]
    before = {p: p.stat().st_mtime_ns for p in store.run_files() if p != lost}
    lost.unlink()
    res = run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    assert (res.ran, res.skipped) == (1, res.total - 1)
    assert lost.exists()
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished runs were not rewritten


def test_sweep_refuses_another_config(tmp_path):
    run_sweep(tiny(), tmp_path, workers=1, progress=False, executor=execute)
    with pytest.raises(ConfigMismatchError, match="never mixed"):
        run_sweep(tiny(seeds=(0, 2)), tmp_path, workers=1, progress=False, executor=execute)


def test_a_stray_file_of_another_config_is_refused(tmp_path):
    c = tiny()
    run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    # a run file copied in from another config's sweep must not be taken as finished
    u = next(u for u in plan(c, tmp_path) if u.stage == "run")
    ResultStore(tmp_path, tiny(success_threshold=0.5)).write(Path(u.output), {"x": 1})
    with pytest.raises(ConfigMismatchError, match="never mixed"):
        run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)


def test_failure_blocks_dependents_and_is_recorded(tmp_path, monkeypatch):
    c = tiny()
    monkeypatch.setenv(FAIL_ENV, "prep/transfer")
    res = run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    assert not res.ok
    assert list(res.failed) == ["prep/transfer"] and "injected failure" in res.failed["prep/transfer"]
    # the 2 transfer runs are blocked; everything else finished
    assert sorted(res.blocked) == ["run/ppo/transfer/k8/open-5x5_g2_1/s0", "run/ppo/transfer/k8/open-5x5_g2_1/s1"]
    assert res.ran == res.total - 3
    record = json.loads((tmp_path / "failures" / "prep_transfer.json").read_text())
    assert "RuntimeError" in record["traceback"]
    monkeypatch.delenv(FAIL_ENV)
    res = run_sweep(c, tmp_path, workers=1, progress=False, executor=execute)
    assert res.ok and res.ran == 3


def test_executor_that_writes_nothing_is_a_failure(tmp_path):
    c = tiny()
    store = ResultStore(tmp_path, c)
    store.init()
    res = run_units([Unit("a", "run", {}, str(tmp_path / "a.json"))], store, executor=lambda *a: None,
                    workers=1, progress=False)
    assert res.failed == {"a": f"executor returned without writing {tmp_path / 'a.json'}"}


def test_bad_arguments(tmp_path):
    store = ResultStore(tmp_path, tiny())
    store.init()
    with pytest.raises(ValueError, match="workers=0"):
        run_units([Unit("a", "run", {}, str(tmp_path / "a.json"))], store, executor=EXEC, workers=0)
    with pytest.raises(ValueError, match="backend='slurm'"):
        run_units([Unit("a", "run", {}, str(tmp_path / "a.json"))], store, executor=EXEC, backend="slurm",
                  workers=2, progress=False)
    with pytest.raises(ValueError, match="unknown unit"):
        run_units([Unit("a", "run", {}, str(tmp_path / "a.json"), ("zzz",))], store, executor=EXEC, workers=1)


def test_process_backend_runs_in_parallel_workers(tmp_path):
    c = tiny()
    res = run_sweep(c, tmp_path, workers=2, progress=True, executor=EXEC)
    assert res.ok and res.ran == res.total


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray (optional extra) is not installed")
def test_ray_backend_on_a_local_instance(tmp_path):
    c = tiny(ks=(8,), seeds=(0,))
    res = run_sweep(c, tmp_path, backend="ray", workers=2, progress=False, executor=execute)
    assert res.ok and res.ran == res.total


def test_stable_seed():
    assert stable_seed("a", 1) == stable_seed("a", 1) != stable_seed("a", 2)
    assert 0 <= stable_seed("x") < 2**31


def test_a_config_that_cannot_run_writes_nothing(tmp_path):
    from rewardshare.errors import InvalidArgumentError

    out = tmp_path / "out"
    with pytest.raises(InvalidArgumentError, match="n_eval_tasks=50 is not allowed"):
        run_sweep(tiny(n_eval_tasks=50), out, workers=1, progress=False, executor=execute)
    assert not out.exists()  # no config.json to block the corrected rerun
    res = run_sweep(tiny(), out, workers=1, progress=False, executor=execute)
    assert res.ok
    with pytest.raises(InvalidArgumentError, match="workers=0 is not allowed"):
        run_sweep(tiny(), out, workers=0, progress=False, executor=execute)


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    res = run_sweep(tiny(), tmp_path, workers=1, progress=True, executor=execute)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("sweep: ")]
    assert lines[-1].startswith(f"sweep: {res.total}/{res.total} units (100%)") and len(lines) >= 3
