"""Which modules strategy code may reach, and the attribute names that would leave them.

The validator's promise is that code only touches numpy, pandas and math. An allowlist
of modules keeps it: ``ALLOWED_MODULES`` are the modules code may hold, and
``leaving_names()`` are the attribute names under which any of them holds a module (or a
class holds one) that is NOT allowed. Every route from an allowed module to another one
starts with such a step (``np.random.bit_generator`` -> ``re`` -> ``enum`` ->
``builtins``; ``np.polynomial.polyutils`` -> ``operator``), so rejecting those names,
wherever they appear, closes every route by construction, whatever numpy and pandas
version is installed. Names of standard-library modules are rejected as attributes too,
as a second net, except a few that are everyday data methods (``copy``, ``time``...).

Computed once per process from the installed numpy and pandas (the worker's, which are
the sandbox's too: the sandbox binds the same distributions).
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import sys
from types import ModuleType

ALLOWED_MODULES = frozenset(
    {
        "math",
        "numpy", "numpy.random", "numpy.linalg", "numpy.fft", "numpy.ma",
        "numpy.lib", "numpy.lib.stride_tricks", "numpy.lib.scimath", "numpy.dtypes",
        "numpy.exceptions", "numpy.char", "numpy.strings", "numpy.version",
        "numpy.polynomial", "numpy.polynomial.polynomial", "numpy.polynomial.chebyshev",
        "numpy.polynomial.legendre", "numpy.polynomial.hermite",
        "numpy.polynomial.hermite_e", "numpy.polynomial.laguerre",
        "pandas", "pandas.api", "pandas.api.types", "pandas.api.indexers",
        "pandas.tseries", "pandas.tseries.offsets", "pandas.tseries.frequencies",
    }
)  # fmt: skip

# Standard-library module names that are also everyday attribute names of numpy and
# pandas objects (``data.copy()``, ``np.array``, ``np.select``, ``ts.time()``). The
# modules themselves are still unreachable: no allowed module holds them under these names.
STDLIB_NAMES_ALLOWED = frozenset(
    {"copy", "array", "random", "select", "time", "datetime", "math", "types", "calendar"}
)

# ``format`` is numpy.lib.format, but ``"{:.2f}".format`` is everyday Python: the
# validator allows ``.format`` only on a string literal, which is never a module.
_GOVERNED_ELSEWHERE = frozenset({"format"})


def is_allowed_module(name: str) -> bool:
    return name in ALLOWED_MODULES


@functools.cache
def leaving_names() -> frozenset[str]:
    """Public attribute names that lead from an allowed module to one that is not."""
    names: set[str] = set()
    for module_name in ALLOWED_MODULES:
        module = _imported(module_name)
        if module is None:
            continue
        names |= _module_attributes(module)
        names |= _submodule_names(module)
        names |= _class_module_attributes(module)
    names |= set(sys.stdlib_module_names) - STDLIB_NAMES_ALLOWED
    return frozenset(n for n in names if not n.startswith("_")) - _GOVERNED_ELSEWHERE


def _imported(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # an older numpy or pandas without this module
        return None


def _module_attributes(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if isinstance(value, ModuleType) and not is_allowed_module(value.__name__)
    }


def _submodule_names(module: ModuleType) -> set[str]:
    """Submodules, loaded or not (``np.testing`` is imported lazily, on first access)."""
    path = getattr(module, "__path__", None)
    if not path:
        return set()
    return {
        info.name
        for info in pkgutil.iter_modules(path)
        if not is_allowed_module(f"{module.__name__}.{info.name}")
    }


def _class_module_attributes(module: ModuleType) -> set[str]:
    """Names under which a public class of ``module`` holds a module."""
    names: set[str] = set()
    for value in list(vars(module).values()):
        if isinstance(value, type):
            for name, attribute in list(vars(value).items()):
                if isinstance(attribute, ModuleType) and not is_allowed_module(attribute.__name__):
                    names.add(name)
    return names


@functools.cache
def reaching_names() -> frozenset[str]:
    """Public attribute names under which an allowed module holds an allowed module; a
    name that is also in ``leaving_names`` (``lib``) is allowed only where the validator
    can resolve it statically from an import (``np.lib``)."""
    names: set[str] = set()
    for module_name in ALLOWED_MODULES:
        module = _imported(module_name)
        if module is None:
            continue
        for name, value in vars(module).items():
            if isinstance(value, ModuleType) and is_allowed_module(value.__name__):
                names.add(name)
    return frozenset(n for n in names if not n.startswith("_"))


def resolve(module_name: str, attributes: list[str]) -> ModuleType | None:
    """The module ``module_name.a.b...`` names, when every step is an allowed module."""
    module = _imported(module_name) if is_allowed_module(module_name) else None
    for attribute in attributes:
        if module is None:
            return None
        value = vars(module).get(attribute)
        if value is None and f"{module.__name__}.{attribute}" in ALLOWED_MODULES:
            value = _imported(f"{module.__name__}.{attribute}")  # a lazy submodule
        if not isinstance(value, ModuleType) or not is_allowed_module(value.__name__):
            return None
        module = value
    return module


_BINDS_BY_NAME = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler, ast.MatchAs,
    ast.MatchStar,
)  # fmt: skip


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound by an import to one dotted path and never rebound anywhere
    (``import numpy as np`` -> ``{"np": "numpy"}``): only these are resolved statically.
    A name also assigned, used as a parameter, or imported twice is left out."""
    imported: dict[str, set[str]] = {}
    rebound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.partition(".")[0]
                imported.setdefault(name, set()).add(alias.name if alias.asname else name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                path = f"{node.module}.{alias.name}"
                imported.setdefault(alias.asname or alias.name, set()).add(path)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            rebound.add(node.id)
        elif isinstance(node, ast.arg):
            rebound.add(node.arg)
        elif isinstance(node, _BINDS_BY_NAME) and node.name:
            rebound.add(node.name)
    return {
        name: next(iter(paths))
        for name, paths in imported.items()
        if len(paths) == 1 and name not in rebound
    }


def resolve_chain(node: ast.Attribute, aliases: dict[str, str]) -> ModuleType | None:
    """The allowed module an attribute chain such as ``np.lib`` names, if it names one."""
    attributes = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        attributes.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name) or value.id not in aliases:
        return None
    path = aliases[value.id]
    module, _, first = path.rpartition(".")
    if module and not is_allowed_module(path):
        # ``from numpy import lib`` binds numpy's attribute ``lib``: resolve from numpy
        return resolve(module, [first, *reversed(attributes)])
    return resolve(path, list(reversed(attributes)))
