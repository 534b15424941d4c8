"""Dependencies point one way: workflows -> activities -> stratlab, the domain below the
adapters, the CLI and the worker entry points above everything.

Read from the source (ast), so a lazy import inside a function counts as much as one at
the top: either would tie a lower layer to a higher one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stratlab", "activities", "workflows", "workers")
DOMAIN = ("models", "market", "backtest", "strategies", "sandbox")
"""stratlab's domain: data, markets, the engine, strategies and their sandbox."""
ADAPTERS = ("store", "research", "evolution", "trading", "telemetry", "llm", "cli")
ENTRY_POINTS = ("workers.__main__",)
"""``python -m workers``: an entry point like the CLI, which it runs."""

# What each layer must never import (prefixes of module names).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "stratlab": ("activities", "workflows", "workers", "stratlab.cli"),
    "activities": ("workflows", "workers", "stratlab.cli"),
    "workflows": ("workers", "stratlab.cli"),
    "workers": ("stratlab.cli",),
}
DOMAIN_FORBIDDEN = tuple(f"stratlab.{a}" for a in ADAPTERS)


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def forbidden_for(module: str) -> tuple[str, ...]:
    forbidden = FORBIDDEN[module.split(".")[0]]
    if _matches(module, tuple(f"stratlab.{d}" for d in DOMAIN)):
        return forbidden + DOMAIN_FORBIDDEN
    return forbidden


def violations() -> list[str]:
    found = []
    for name, path in _modules():
        if name in ENTRY_POINTS or name.startswith("stratlab.cli"):
            continue
        forbidden = forbidden_for(name)
        found += [f"{name} imports {m}" for m in _imports(path) if _matches(m, forbidden)]
    return found


def test_dependencies_point_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("stratlab.config", "workflows.constants"),
        ("activities.compute", "workflows.research"),
        ("stratlab.backtest.engine", "stratlab.store.db"),
    ],
)
def test_a_wrong_way_import_is_caught(module: str, imported: str, tmp_path: Path) -> None:
    assert _matches(imported, forbidden_for(module))
    source = tmp_path / "m.py"
    source.write_text(f"def f():\n    import {imported}\n", encoding="utf-8")
    assert list(_imports(source)) == [imported]


# --- inside stratlab: its packages form a DAG ----------------------------------------------------

OWN_COMPONENTS = ("stratlab.llm.offline", "stratlab.llm.factory")
"""Two parts of ``llm`` sit above the rest of stratlab. The offline stand-in imitates every
role (designer, assessor, composer, mutator), so it reads the vocabularies of the packages
it imitates; the factory is the composition root that picks a provider from the settings,
the stand-in among them. Nothing below them imports either."""


def component(module: str) -> str:
    """The package a stratlab module belongs to for the dependency graph: ``stratlab.X``."""
    for own in OWN_COMPONENTS:
        if _matches(module, (own,)):
            return own
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in _modules():
        if not name.startswith("stratlab."):
            continue
        source = component(name)
        targets = {component(m) for m in _imports(path) if m.startswith("stratlab.")}
        graph.setdefault(source, set()).update(targets - {source})
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_stratlab_packages_import_each_other_one_way() -> None:
    graph = package_graph()
    edges = [f"{a} -> {b}" for c in cycles(graph) for a in c for b in sorted(graph[a]) if b in c]
    assert edges == []


def test_a_cycle_between_packages_is_caught() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert component("stratlab.llm.offline.inspect") == "stratlab.llm.offline"
    assert component("stratlab.llm.budgeted") == "stratlab.llm"
