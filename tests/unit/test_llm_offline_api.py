"""The offline stand-in is reached through its public modules only."""

from __future__ import annotations

import re
from pathlib import Path

import stratlab.llm.offline as offline
import stratlab.llm.offline.inspect as inspect_offline

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "stratlab" / "llm" / "offline"
_PRIVATE = re.compile(r"stratlab\.llm\.offline\._|from stratlab\.llm\.offline import _")


def test_nothing_outside_the_package_imports_its_private_modules() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for top in ("stratlab", "activities", "workers", "workflows", "optimizer", "tests", "perf")
        for path in sorted((ROOT / top).rglob("*.py"))
        if PACKAGE not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _PRIVATE.search(line)
    ]
    assert offenders == []


def test_the_public_names_exist() -> None:
    for module in (offline, inspect_offline):
        assert all(hasattr(module, name) for name in module.__all__)
