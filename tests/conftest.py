"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def load_benchmark() -> Iterator[Callable[[str], ModuleType]]:
    """``load_benchmark("name")`` imports ``benchmarks/name.py`` (the scripts are not a package) as a fresh module.

    The module is registered in ``sys.modules`` while the test runs (dataclasses and pickling look a class's module
    up by name) and removed afterwards.
    """
    loaded: list[str] = []

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None, f"no benchmark script {name!r}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        loaded.append(spec.name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
