"""The tests' own layout: what two test modules share lives in ``tests/fixtures/``.

No module under ``tests/`` imports a ``test_*`` module: importing one runs its module-level
set-up and brings its fixtures and tests along, and a helper in it has no obvious home.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def imports_of_test_modules(source: str, module: str) -> list[str]:
    """The ``test_*`` modules that ``source``, the module named ``module``, imports from
    (``import``, ``from ... import``, relative or absolute), as ``line: dotted name``."""
    package = module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            names = [(node.lineno, f"{origin}.{alias.name}") for alias in node.names]
        else:
            continue
        for line, name in names:
            parts = name.split(".")
            if parts[0] == "tests" and any(p.startswith("test_") for p in parts):
                found.append(f"{line}: {name}")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.test_cli import run_cli",
        "from tests.integration import test_cli_prompts",
        "import tests.unit.test_rules",
        "from .test_research_cycle import rows",
        "from . import test_research_cycle",
        "from ..integration.test_cli import run_cli",
    ],
)
def test_the_check_sees_every_way_to_import_a_test_module(source: str) -> None:
    assert imports_of_test_modules(source, "tests.unit.test_example")


def test_the_check_lets_fixtures_and_the_code_under_test_be_imported() -> None:
    source = (
        "from tests.fixtures.cli import run_cli\n"
        "from tests.fixtures import loopback_only\n"
        "from stratlab.strategies.rules import rules_signals\n"
        "import tests.fixtures.temporal\n"
    )
    assert imports_of_test_modules(source, "tests.unit.test_example") == []


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS.parent)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (
            found := imports_of_test_modules(
                path.read_text(),
                ".".join(path.relative_to(TESTS.parent).with_suffix("").parts),
            )
        )
    }
    assert offenders == {}, "move what they share to tests/fixtures/"
