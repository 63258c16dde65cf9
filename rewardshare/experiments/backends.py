"""Where a sweep's units run: inline, in local spawned processes, or as Ray tasks.

Each backend has the same small interface (``submit``, ``wait``, ``result``, ``shutdown``), so
:func:`rewardshare.experiments.runner.run_units` schedules units the same way on all of them. A worker runs one unit
through :func:`call_unit`, which imports the executor by its ``"module:function"`` path (what a spawned process or a
Ray worker can import) and limits torch to one thread.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments.config import BACKENDS


def _resolve(executor: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(executor):
        return executor
    module, _, name = executor.partition(":")
    return getattr(importlib.import_module(module), name)


def call_unit(executor: str | Callable[..., Any], root: str, config: dict[str, Any], unit: dict[str, Any]) -> float:
    """Worker entry point: run one unit, return its wall time. Limits torch to one thread per worker process."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    t0 = time.perf_counter()
    _resolve(executor)(root, config, unit)
    return time.perf_counter() - t0


class _InlineBackend:
    """Runs each unit in this process when it is submitted (workers=1: easy to debug, no process start cost)."""

    def __init__(self) -> None:
        self._n = 0

    def submit(self, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(call_unit(*args))
        except Exception as e:  # the sweep records it like a worker failure
            e.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            fut.set_exception(e)
        return fut

    def wait(self, pending: set) -> set:
        return set(pending)

    @staticmethod
    def result(handle: Future) -> float:
        return handle.result()

    def shutdown(self) -> None:
        pass


class _ProcessBackend:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` with spawned workers (fork after torch can deadlock)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing as mp

        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))

    def submit(self, *args: Any) -> Future:
        return self.pool.submit(call_unit, *args)

    def wait(self, pending: set) -> set:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return done

    @staticmethod
    def result(handle: Future) -> float:
        return handle.result()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RayBackend:
    """Ray tasks, one CPU each. Connects to ``RAY_ADDRESS`` if set (a cluster), else starts a local instance."""

    def __init__(self, workers: int | None) -> None:
        try:
            import ray
        except ImportError as e:
            raise ImportError(
                "backend='ray' needs Ray, an optional extra: pip install 'rewardshare[ray]' (or pip install ray)"
            ) from e
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if not os.environ.get("RAY_ADDRESS"):
                # a local instance: its workers import what this process can import, as spawned processes do
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
                if workers is not None:
                    kwargs["num_cpus"] = workers
            ray.init(**kwargs)
            self._started = True
        self._remote = ray.remote(num_cpus=1)(call_unit)

    def submit(self, *args: Any) -> Any:
        return self._remote.remote(*args)

    def wait(self, pending: set) -> set:
        done, _ = self.ray.wait(list(pending), num_returns=1)
        return set(done)

    def result(self, handle: Any) -> float:
        return self.ray.get(handle)

    def shutdown(self) -> None:
        if self._started:
            self.ray.shutdown()


def make_backend(backend: str, workers: int) -> Any:
    """The backend that runs units: ``"ray"``, or local processes (inline in this process when ``workers == 1``).

    Raises:
        InvalidArgumentError: On an unknown backend.
        ImportError: For ``"ray"`` without Ray installed (the message says how to install it).
    """
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"backend={backend!r} is not allowed: use one of {BACKENDS}")
    if backend == "ray":
        return _RayBackend(workers)
    return _InlineBackend() if workers == 1 else _ProcessBackend(workers)


__all__ = ["call_unit", "make_backend"]
