"""The sweep: plan the units of work, run them in parallel (local processes or Ray), skip what is finished.

A sweep is a small DAG of units (see :mod:`rewardshare.experiments.store` for where each writes its results):

1. ``source``: collect feedback on the source tasks (the train split minus the validation tasks), once;
2. ``prep/<method>``, one per reuse method: pre-train the method on the source feedback (once), choose its
   adaptation settings for every k on the *validation* tasks, then for every held-out task x seed x k collect the
   k target items, adapt, save the adapted reward model and measure its EPIC distance to the teacher. One process
   does all of it, so a pre-trained method never has to be serialised between processes; each adapted model and
   each selection is written as it finishes, so an interrupted unit resumes without redoing them. At ``k = 0``
   (zero-shot) there is nothing to collect, choose or adapt: the method's start model for the task is saved as is,
   and scratch, which cannot predict without feedback, has no k = 0 model;
3. ``run/<algo>/<label>/k<k>/<task>/s<seed>``: train the agent on the adapted reward (or an oracle reward) and
   record its true-reward learning curve. ``<label>`` is the method, or ``method+variant`` for each
   ``reward_uncertainty`` variant of a method with a posterior (``latent+pessimistic``): the same adapted model,
   task and seed, another reward read from it.

A unit runs as soon as the units it depends on are finished (oracle runs start at once). Each unit is executed by a
worker function (default :func:`rewardshare.experiments.pipeline.execute_unit`) that writes its own result file
atomically; a unit whose file exists (for this config) is skipped. A unit that fails is recorded under
``failures/`` with its traceback, its dependents are skipped, and the rest of the sweep goes on.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments.backends import make_backend
from rewardshare.experiments.config import BenchConfig
from rewardshare.experiments.names import BACKENDS, run_label
from rewardshare.experiments.store import ResultStore, atomic_write_json, slug

DEFAULT_EXECUTOR = "rewardshare.experiments.pipeline:execute_unit"


@dataclass(frozen=True)
class Unit:
    """One unit of work of a sweep.

    Attributes:
        id: Unique id, e.g. ``"run/ppo/transfer/k64/open-6x6/g1_2/s0"``.
        stage: ``"source"``, ``"prep"`` or ``"run"``.
        params: The unit's coordinates (method, k, task_id, seed, algo, uncertainty as relevant); JSON-ready.
        output: The result file whose existence marks the unit finished.
        deps: Ids of units that must finish first.
    """

    id: str
    stage: str
    params: dict[str, Any]
    output: str
    deps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a worker receives)."""
        return {"id": self.id, "stage": self.stage, "params": dict(self.params), "output": self.output,
                "deps": list(self.deps)}


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        root: The results directory.
        total: Units in the plan.
        skipped: Units already finished before this call.
        ran: Units run (and finished) by this call.
        failed: ``unit id -> error summary`` for units that raised.
        blocked: Units not run because a dependency failed.
        wall_s: Wall-clock seconds of this call.
    """

    root: Path
    total: int = 0
    skipped: int = 0
    ran: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every unit of the plan is finished."""
        return not self.failed and not self.blocked


# -- tasks and seeds ---------------------------------------------------------------------------------------------
def make_family(config: BenchConfig):  # -> TaskFamily (envs import kept lazy for a fast CLI)
    """The config's :class:`~rewardshare.envs.TaskFamily`."""
    from rewardshare.envs import TaskFamily

    return TaskFamily(layout=config.layout, size=config.size, subset=config.subset, layout_seed=config.layout_seed,
                      held_out_fraction=config.held_out_fraction, split_seed=config.split_seed)


def task_split(config: BenchConfig) -> dict[str, list]:
    """The tasks of each role, fixed by the config alone (never by results).

    Returns:
        ``{"source": [...], "validation": [...], "eval": [...]}`` lists of :class:`~rewardshare.envs.GoalTask`:
        validation tasks are ``n_validation_tasks`` train tasks drawn with ``validation_seed``; source tasks are the
        other train tasks; eval tasks are the first ``n_eval_tasks`` of the held-out split permuted with
        ``eval_task_seed``.

    Raises:
        InvalidArgumentError: If the family cannot be built (e.g. a size too small for the layout) or has too few
            train or held-out tasks for the config.
    """
    try:
        family = make_family(config)
    except ValueError as exc:
        raise InvalidArgumentError(f"the config's task family cannot be built: {exc}") from None
    train, held = list(family.train), list(family.held_out)
    if config.n_validation_tasks >= len(train):
        raise InvalidArgumentError(
            f"n_validation_tasks={config.n_validation_tasks} is not allowed: family {family.name!r} has "
            f"{len(train)} train tasks and at least one must remain a source task"
        )
    if config.n_eval_tasks > len(held):
        raise InvalidArgumentError(
            f"n_eval_tasks={config.n_eval_tasks} is not allowed: family {family.name!r} has {len(held)} held-out tasks"
        )
    vorder = np.random.default_rng(config.validation_seed).permutation(len(train))
    val_idx = set(vorder[: config.n_validation_tasks].tolist())
    eorder = np.random.default_rng(config.eval_task_seed).permutation(len(held))
    return {
        "source": [t for i, t in enumerate(train) if i not in val_idx],
        "validation": [t for i, t in enumerate(train) if i in val_idx],
        "eval": [held[i] for i in eorder[: config.n_eval_tasks]],
    }


def stable_seed(*parts: Any) -> int:
    """A seed in ``[0, 2**31)`` derived from ``parts`` (stable across processes and machines, unlike ``hash``)."""
    import hashlib

    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# -- planning -----------------------------------------------------------------------------------------------------
def plan(config: BenchConfig, root: str | os.PathLike[str]) -> list[Unit]:
    """Every unit of the sweep, in an order that respects dependencies.

    Args:
        config: The sweep's config.
        root: The results directory (unit outputs are paths inside it).

    Returns:
        The units. A ``prep`` unit's params list its ``targets`` (``{"k", "task_id", "seed"}`` for every k of
        ``config.ks``, leaving out ``k = 0`` for scratch, which cannot predict zero-shot); oracle runs use ``k = 0``
        and need no feedback and no adaptation, like the zero-shot runs of the pre-trained methods.
    """
    store = ResultStore(root, config)
    eval_tasks = [t.id for t in task_split(config)["eval"]]
    units: list[Unit] = []
    pretrained = config.pretrained_methods
    if pretrained:
        units.append(Unit("source", "source", {}, str(store.source_path())))
    for m in config.reuse_methods:
        # at k = 0 (zero-shot) only the methods that can predict without feedback have a model (not scratch)
        targets = [{"k": k, "task_id": tid, "seed": s} for k in config.ks if m in config.methods_at(k)
                   for tid in eval_tasks for s in config.seeds]
        units.append(Unit(f"prep/{m}", "prep", {"method": m, "targets": targets}, str(store.prep_path(m)),
                          ("source",) if m in pretrained else ()))
    # seeds outermost: a partial sweep then holds complete (method x task) comparisons for the early seeds
    for s in config.seeds:
        for tid in eval_tasks:
            for algo in config.algos:
                for m in config.methods:
                    ks = [k for k in config.rl_ks if m in config.methods_at(k)] if m in config.reuse_methods else [0]
                    deps = (f"prep/{m}",) if m in config.reuse_methods else ()
                    # a method's reward variants next to each other: same adapted model, seed and task
                    for k, u in [(kk, u) for kk in ks for u in config.uncertainty_of(m, kk)]:
                        p = {"algo": algo, "method": m, "uncertainty": u, "k": k, "task_id": tid, "seed": s}
                        units.append(Unit(f"run/{algo}/{run_label(m, u)}/k{k}/{slug(tid)}/s{s}", "run", p,
                                          str(store.run_path(algo, m, k, tid, s, u)), deps))
    return units


class _Progress:
    """Progress of a sweep on stderr: a tqdm bar on a terminal; when stderr is a file or a pipe (a log, CI), where a
    bar's carriage returns never show, one plain line per 5% of the units (and for the last one) instead."""

    def __init__(self, todo: list[Unit]) -> None:
        self.total, self.done, self.t0, self.last_pct = len(todo), 0, time.perf_counter(), -1
        n_runs = sum(u.stage == "run" for u in todo)
        desc = f"sweep ({n_runs} runs, {len(todo) - n_runs} prep)"
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="unit", dynamic_ncols=True, desc=desc)
        else:
            print(f"{desc}: {self.total} units to run", file=sys.stderr, flush=True)

    def update(self, n: int, stage: str) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(stage, refresh=False)
            return
        pct = 100 * self.done // max(self.total, 1)
        if pct // 5 > self.last_pct // 5 or self.done == self.total:
            self.last_pct = pct
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / self.done * (self.total - self.done)
            print(f"sweep: {self.done}/{self.total} units ({pct}%), last: {stage}, {elapsed:.0f}s elapsed, "
                  f"~{eta:.0f}s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the sweep -----------------------------------------------------------------------------------------------------
def run_units(
    units: Iterable[Unit],
    store: ResultStore,
    executor: str | Callable[..., Any] = DEFAULT_EXECUTOR,
    backend: str = "local",
    workers: int | None = None,
    progress: bool = True,
    on_finish: Callable[[Unit, float], None] | None = None,
) -> SweepResult:
    """Run the unfinished units of a plan, each as soon as its dependencies are finished.

    Args:
        units: The plan (see :func:`plan`).
        store: The results directory (already :meth:`~ResultStore.init`-ed).
        executor: ``f(root: str, config: dict, unit: dict) -> None`` writing ``unit["output"]`` atomically, or its
            ``"module:function"`` import path (what worker processes import; must be importable there).
        backend: ``"local"`` (processes on this machine) or ``"ray"``.
        workers: Parallel workers (default: the machine's CPU count; 1 runs inline in this process).
        progress: Show progress with ETA on stderr (a bar on a terminal, plain lines when piped).
        on_finish: Called in this process with each finished unit and its wall time.

    Returns:
        A :class:`SweepResult`.

    Raises:
        ValueError: On a bad backend or workers count, or a unit depending on an unknown unit.
        ConfigMismatchError: If a unit's existing output was written by another config.
    """
    units = list(units)
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers={workers!r} is not allowed: use an int >= 1")
    ids = {u.id for u in units}
    for u in units:
        missing = [d for d in u.deps if d not in ids]
        if missing:
            raise ValueError(f"unit {u.id!r} depends on unknown unit(s) {missing}")
    result = SweepResult(store.root, total=len(units))
    t0 = time.perf_counter()
    finished = {u.id for u in units if store.done(Path(u.output))}
    result.skipped = len(finished)
    todo = [u for u in units if u.id not in finished]
    if not todo:
        result.wall_s = time.perf_counter() - t0
        return result

    bar = _Progress(todo) if progress else None
    be = make_backend(backend, workers)
    config_dict = store.config.to_dict()
    failed: set[str] = set()
    in_flight: dict[Any, Unit] = {}
    waiting = list(todo)
    try:
        while waiting or in_flight:
            # submit every ready unit while there is a free worker; drop those whose dependencies failed
            still: list[Unit] = []
            for u in waiting:
                if any(d in failed for d in u.deps):
                    failed.add(u.id)
                    result.blocked.append(u.id)
                    if bar is not None:
                        bar.update(1, "blocked")
                elif len(in_flight) < workers and all(d in finished for d in u.deps):
                    in_flight[be.submit(executor, str(store.root), config_dict, u.to_dict())] = u
                else:
                    still.append(u)
            waiting = still
            if not in_flight:
                if waiting:  # nothing runnable and nothing running: a dependency cycle (plan() never makes one)
                    raise RuntimeError(f"units {[u.id for u in waiting[:3]]} can never run: dependency cycle")
                break
            for handle in be.wait(set(in_flight)):
                u = in_flight.pop(handle)
                try:
                    secs = be.result(handle)
                except Exception as e:  # record and go on: one bad unit must not lose the sweep
                    failed.add(u.id)
                    text = getattr(e, "__traceback_text__", None) or "".join(
                        traceback.format_exception(type(e), e, e.__traceback__))
                    result.failed[u.id] = f"{type(e).__name__}: {e}"
                    atomic_write_json(store.root / "failures" / f"{slug(u.id)}.json",
                                      {"unit": u.to_dict(), "error": result.failed[u.id], "traceback": text})
                else:
                    if not Path(u.output).exists():
                        failed.add(u.id)
                        result.failed[u.id] = f"executor returned without writing {u.output}"
                    else:
                        finished.add(u.id)
                        result.ran += 1
                        if on_finish is not None:
                            on_finish(u, secs)
                if bar is not None:
                    bar.update(1, u.stage)
    finally:
        be.shutdown()
        if bar is not None:
            bar.close()
    result.wall_s = time.perf_counter() - t0
    return result


def run_sweep(
    config: BenchConfig,
    out: str | os.PathLike[str],
    backend: str = "local",
    workers: int | None = None,
    progress: bool = True,
    executor: str | Callable[..., Any] = DEFAULT_EXECUTOR,
) -> SweepResult:
    """Plan and run a whole sweep into ``out`` (resuming: finished units are skipped).

    Args:
        config: The sweep's config.
        out: The results directory (created; refused if it holds another config's results).
        backend: ``"local"`` or ``"ray"``.
        workers: Parallel workers (default: CPU count).
        progress: Show a progress bar.
        executor: The unit executor (see :func:`run_units`); tests pass a fake.

    Returns:
        A :class:`SweepResult`.

    Raises:
        InvalidArgumentError: If the config cannot run (e.g. too few tasks in its family), or on a bad backend or
            workers count; checked before anything is written.
        ConfigMismatchError: If ``out`` holds results of a different config (the message lists the fields that
            differ and how to resume that run or start a fresh one).
    """
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend={backend!r} is not allowed: use one of {BACKENDS}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgumentError(f"workers={workers!r} is not allowed: use an int >= 1")
    units = plan(config, out)  # the whole plan first: a config that cannot run never gets a config.json
    store = ResultStore(out, config)
    store.init()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    res = run_units(units, store, executor=executor, backend=backend, workers=workers, progress=progress)
    # one record per call, so a sweep resumed over several sessions still adds up to an honest total wall time
    sessions = store.read(store.sessions_path())["sessions"] if store.sessions_path().exists() else []
    sessions.append({"started": started, "wall_s": res.wall_s, "ran": res.ran, "skipped": res.skipped,
                     "failed": len(res.failed), "blocked": len(res.blocked), "backend": backend,
                     "workers": workers or os.cpu_count() or 1, "cpu_count": os.cpu_count()})
    store.write(store.sessions_path(), {"sessions": sessions})
    return res


__all__ = ["DEFAULT_EXECUTOR", "SweepResult", "Unit", "make_family", "plan", "run_sweep", "run_units",
           "stable_seed", "task_split"]
