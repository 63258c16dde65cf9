"""The import graph of ``rewardshare``: no cycles and no import against the data flow, function-level imports included.

Data flows one way, ``envs -> feedback -> rewardmodels -> wrappers -> agents -> experiments -> cli``: a module imports
only from its own layer or the ones to its left. Top-level helper modules (``_version``, ``_atomic``, ``errors``,
``artifacts``, ...) are the foundation every layer may import; they import only each other. The package's own
``__init__`` is the public facade: it may re-export anything, and importing it from inside the package is caught by
the cycle check.

The graph is built from the source with :mod:`ast` (nothing is imported): every ``import x`` and ``from x import y`` in
a module, at module level and inside functions and classes alike, since a function-level import only hides a circle
until the function runs. Imports under ``if TYPE_CHECKING:`` are never run, so they cannot close a cycle; they still
have to follow the data flow. ``from pkg import name`` points at the submodule ``pkg.name`` when
there is one, else at ``pkg`` (its ``__init__``). A package ``__init__`` re-exporting its submodules is no cycle by
itself; a submodule importing its own package's ``__init__`` (which imports the submodule back) is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = "rewardshare"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
#: Layers in data-flow order; a module may import from its own layer and from layers to its left.
LAYERS: tuple[str, ...] = ("envs", "feedback", "rewardmodels", "wrappers", "agents", "experiments", "cli")

#: Import edges (importer, imported) known to close a cycle, tolerated until they are fixed. Each entry is owned by
#: whoever fixes it, who removes it here (the test fails on an entry whose edge no longer exists).
KNOWN_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is named by its ``__init__.py``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _walk(node: ast.AST, type_only: bool = False) -> Iterable[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it sits in an ``if TYPE_CHECKING:`` body (never run)."""
    for child in ast.iter_child_nodes(node):
        yield child, type_only
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_only
                yield from _walk(stmt, type_only)
        else:
            yield from _walk(child, type_only)


def imports_of(module: str, path: Path, modules: Iterable[str]) -> dict[str, bool]:
    """The package-internal modules ``module`` imports anywhere in its source: ``{module: type_only}``, where
    ``type_only`` means every import of it sits under ``if TYPE_CHECKING:``."""
    known = set(modules)
    is_package = path.name == "__init__.py"
    found: dict[str, bool] = {}

    def add(name: str, type_only: bool) -> None:
        if name in known:
            found[name] = found.get(name, True) and type_only

    for node, type_only in _walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, type_only)
        elif isinstance(node, ast.ImportFrom):
            source = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else (node.module or "")
            )
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                add(sub if sub in known else source, type_only)
    return found


def import_graph(root: Path = ROOT, type_only: bool = True) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every module of the package; ``type_only=False`` leaves out the imports
    that only type checkers run (which cannot close a cycle at run time)."""
    files = module_files(root)
    graph = {}
    for module, path in files.items():
        graph[module] = {m for m, only in imports_of(module, path, files).items() if type_only or not only}
    return graph


def layer_of(module: str) -> int | None:
    """The layer index of a module; ``None`` for the foundation (top-level modules other than the layers)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the data flow, as ``"importer -> imported (why)"``."""
    bad = []
    for src, targets in sorted(graph.items()):
        src_layer = layer_of(src)
        for dst in sorted(targets):
            dst_layer = layer_of(dst)
            if src == PACKAGE or dst_layer is None and dst != PACKAGE:
                continue  # the facade re-exports anything; the foundation is importable by all
            if src_layer is None:
                bad.append(f"{src} -> {dst} (a foundation module imports only the foundation)")
            elif dst_layer is not None and dst_layer > src_layer:
                bad.append(f"{src} -> {dst} ({LAYERS[src_layer]} may not import {LAYERS[dst_layer]})")
    return bad


def _without(graph: dict[str, set[str]], edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    skip = set(edges)
    return {src: {dst for dst in dsts if (src, dst) not in skip} for src, dsts in graph.items()}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


@pytest.fixture(scope="module")
def runtime_graph() -> dict[str, set[str]]:
    return import_graph(type_only=False)


def test_the_graph_sees_the_package(graph):
    assert {"rewardshare.envs.mdp", "rewardshare.rewardmodels.objectives", "rewardshare.cli"} <= set(graph)
    # function-level imports count: cli imports the library inside its commands
    assert "rewardshare.agents" in graph["rewardshare.cli.train"]


def test_no_import_cycle(runtime_graph):
    found = cycles(_without(runtime_graph, KNOWN_CYCLE_EDGES))
    assert not found, "import cycles (break them by moving the shared piece to the left):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_known_cycle_edges_still_exist(runtime_graph):
    gone = sorted(e for e in KNOWN_CYCLE_EDGES if e[1] not in runtime_graph.get(e[0], set()))
    assert not gone, f"remove these fixed entries from KNOWN_CYCLE_EDGES: {gone}"


def test_imports_follow_the_data_flow(graph):
    bad = layer_violations(graph)
    assert not bad, f"imports against {' -> '.join(LAYERS)}:\n" + "\n".join(bad)


# -- the checks themselves can fail --------------------------------------------------------------------------------
def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_level_back_import_is_a_cycle_and_a_layer_violation(tmp_path):
    root = _fake_package(tmp_path, {
        "envs/__init__.py": "from rewardshare.envs.grid import Grid\n",
        "envs/grid.py": "def f():\n    from rewardshare.feedback import teacher\n",
        "feedback/__init__.py": "",
        "feedback/teacher.py": "from rewardshare.envs import Grid\n",
    })
    graph = import_graph(root)
    assert graph["rewardshare.envs.grid"] == {"rewardshare.feedback.teacher"}
    assert cycles(graph) == [["rewardshare.envs", "rewardshare.envs.grid", "rewardshare.feedback.teacher"]]
    assert layer_violations(graph) == [
        "rewardshare.envs.grid -> rewardshare.feedback.teacher (envs may not import feedback)"
    ]
    # the same back-import for type checkers only: no run-time cycle, still against the data flow
    (root / "envs/grid.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rewardshare.feedback.teacher import T\n"
    )
    assert cycles(import_graph(root, type_only=False)) == []
    assert cycles(import_graph(root)) != []
    assert layer_violations(import_graph(root, type_only=False)) == []
    assert len(layer_violations(import_graph(root))) == 1


def test_relative_imports_and_reexports(tmp_path):
    root = _fake_package(tmp_path, {
        "_helper.py": "import json\n",
        "rewardmodels/__init__.py": "from .objectives import make_loss\n",
        "rewardmodels/objectives/__init__.py": "from .base import Objective\nfrom . import labels\n",
        "rewardmodels/objectives/base.py": "from ... import _helper\n",
        "rewardmodels/objectives/labels.py": "from .base import Objective\n",
        "rewardmodels/training.py": "import rewardshare.rewardmodels.objectives.base as b\n",
        "errors.py": "from rewardshare.envs import x\n",
        "envs/__init__.py": "",
    })
    graph = import_graph(root)
    assert graph["rewardshare.rewardmodels.objectives"] == {
        "rewardshare.rewardmodels.objectives.base", "rewardshare.rewardmodels.objectives.labels",
    }
    assert graph["rewardshare.rewardmodels.objectives.base"] == {"rewardshare._helper"}
    assert graph["rewardshare.rewardmodels.training"] == {"rewardshare.rewardmodels.objectives.base"}
    assert cycles(graph) == []  # re-exports alone are no cycle
    assert layer_violations(graph) == ["rewardshare.errors -> rewardshare.envs (a foundation module imports only "
                                       "the foundation)"]
    # a submodule importing its own package's __init__, which imports it back, is one
    (root / "rewardmodels/objectives/labels.py").write_text("from rewardshare.rewardmodels import make_loss\n")
    assert cycles(import_graph(root)) == [[
        "rewardshare.rewardmodels", "rewardshare.rewardmodels.objectives", "rewardshare.rewardmodels.objectives.labels",
    ]]
