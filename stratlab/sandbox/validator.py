"""AST pre-filter for strategy code written by an LLM.

This is a fast first check with messages an LLM can act on, NOT the security boundary:
Python offers too many ways around any static filter. Everything that passes still runs
in the isolated executor (``stratlab.sandbox.executor``), which must hold even against
code that never went through this module.

Rules (each violation names its rule and line, and ``str()`` of the error can go back to
the designer verbatim):

* ``syntax``: the source must parse.
* ``import-not-allowed``: only ``numpy``, ``pandas`` and ``math`` may be imported.
* ``no-dunder-name`` / ``no-dunder-attribute`` / ``no-private-attribute``: no ``__x__``
  identifiers and no attribute that starts with ``_``.
* ``forbidden-name``: no ``getattr``, ``eval``, ``exec``, ``open`` and similar builtins,
  whether called or merely referenced.
* ``no-introspection``: no frame, traceback, generator or code-object attributes
  (``gi_frame``, ``f_back``, ``f_globals``, ``tb_frame``, ``mro``...).
* ``forbidden-api``: no file, network or native-code APIs of numpy/pandas (``read_*``,
  ``to_*`` writers, ``fromfile``, ``load``, ``save``, ``ctypeslib``, ``memmap``,
  ``eval``/``query``...) and no module-like attributes such as ``os`` or ``sys``.
* ``dunder-string`` / ``format-attribute``: no string that spells a dunder, and no
  ``str.format`` field that reaches into an attribute or item (``"{0.real}"``).
* ``signals-function``: a top-level ``def signals(data, params)`` must exist.
* ``too-long``: the source is capped, so a runaway generation fails fast.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

ALLOWED_IMPORTS = frozenset({"numpy", "pandas", "math"})
MAX_SOURCE_CHARS = 50_000

FORBIDDEN_NAMES = frozenset(
    {
        "getattr", "setattr", "delattr", "eval", "exec", "open", "compile", "__import__",
        "globals", "locals", "vars", "input", "breakpoint", "help", "exit", "quit",
    }
)  # fmt: skip

INTROSPECTION_ATTRIBUTES = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "cr_frame", "cr_code",
        "cr_await", "ag_frame", "ag_code", "ag_await", "f_back", "f_globals", "f_locals",
        "f_builtins", "f_code", "f_trace", "f_lasti", "tb_frame", "tb_next", "tb_lasti",
        "co_code", "co_consts", "co_names", "mro", "with_traceback",
    }
)  # fmt: skip

FORBIDDEN_API_ATTRIBUTES = frozenset(
    {
        # numpy file and native-code APIs
        "fromfile", "tofile", "load", "loads", "save", "savez", "savez_compressed",
        "savetxt", "loadtxt", "genfromtxt", "fromregex", "memmap", "open_memmap",
        "DataSource", "ctypeslib", "ctypes", "testing", "f2py", "distutils", "show_config",
        "dump", "dumps", "npyio", "NpzFile",
        # pandas I/O and string evaluation
        "HDFStore", "ExcelWriter", "ExcelFile", "eval", "query", "style", "plot",
        # module-like attributes that lead out of numpy/pandas
        "os", "sys", "subprocess", "builtins", "importlib", "io", "pickle", "shutil",
        "socket", "pathlib", "tempfile", "glob", "mmap", "signal", "threading",
        "multiprocessing", "inspect", "gc", "types", "weakref", "resource", "marshal",
        "posix", "platform", "code", "codecs", "compat", "core", "util", "api",
    }
)  # fmt: skip

# ``to_*`` methods that only convert in memory; every other ``to_*`` may write a file.
SAFE_TO_ATTRIBUTES = frozenset(
    {
        "to_numpy", "to_list", "to_frame", "to_series", "to_period", "to_timestamp",
        "to_datetime", "to_numeric", "to_timedelta", "to_offset", "to_pydatetime",
        "to_dict", "to_records", "to_flat_index", "to_tuples",
    }
)  # fmt: skip

_DUNDER = re.compile(r"__\w+__")
# A str.format replacement field whose field name reaches an attribute or an item.
_FORMAT_ACCESS = re.compile(r"\{[^{}:!]*[.\[][^{}]*\}")


@dataclass(frozen=True)
class Violation:
    """One broken rule: its name, the 1-based source line (0 when unknown), and why."""

    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line} [{self.rule}]: {self.message}"


class CodeValidationError(ValueError):
    """Strategy code that the pre-filter rejects; ``violations`` lists every problem."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        super().__init__(self.violations)  # args stay (violations,) so pickling round-trips

    def __str__(self) -> str:
        lines = "\n".join(str(v) for v in self.violations)
        return f"the strategy code was rejected ({len(self.violations)} problem(s)):\n{lines}"


def validate_code(source: str) -> None:
    """Raise CodeValidationError listing every violation of ``source``; None when clean."""
    violations = find_violations(source)
    if violations:
        raise CodeValidationError(violations)


def find_violations(source: str) -> list[Violation]:
    """Every violation of ``source``, ordered by line."""
    if len(source) > MAX_SOURCE_CHARS:
        return [
            Violation(
                "too-long",
                0,
                f"the code has {len(source)} characters; keep it under {MAX_SOURCE_CHARS}",
            )
        ]
    try:
        tree = ast.parse(source, filename="<strategy>")
    except SyntaxError as exc:
        return [Violation("syntax", exc.lineno or 0, f"{exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:
        # null bytes, or nesting too deep for the parser
        return [Violation("syntax", 0, f"the code cannot be parsed: {type(exc).__name__}")]
    checker = _Checker()
    checker.visit(tree)
    checker.violations += _signals_violations(tree)
    return sorted(checker.violations, key=lambda v: (v.line, v.rule))


def _signals_violations(tree: ast.Module) -> list[Violation]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "signals":
            positional = [*node.args.posonlyargs, *node.args.args]
            if len(positional) < 2 and node.args.vararg is None:
                return [
                    Violation(
                        "signals-function",
                        node.lineno,
                        "signals must take two arguments: def signals(data, params)",
                    )
                ]
            return []
    return [
        Violation(
            "signals-function",
            0,
            "define a top-level function `def signals(data, params):` that returns "
            "(entries, exits), two boolean series aligned with data",
        )
    ]


class _Checker(ast.NodeVisitor):
    """Collects violations while walking the tree once."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def _add(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(Violation(rule, getattr(node, "lineno", 0), message))

    def _check_identifier(self, node: ast.AST, name: str | None, what: str) -> None:
        if name and _DUNDER.fullmatch(name):
            self._add(node, "no-dunder-name", f"{what} {name!r}: dunder names are not allowed")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            self._check_identifier(node, alias.asname, "import alias")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._add(node, "import-not-allowed", "relative imports are not allowed")
        else:
            self._check_module(node, node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self._add(node, "import-not-allowed", "`import *` is not allowed")
            self._check_attribute_name(node, alias.name)
            self._check_identifier(node, alias.asname, "import alias")

    def _check_module(self, node: ast.AST, module: str) -> None:
        parts = module.split(".")
        if parts[0] not in ALLOWED_IMPORTS:
            allowed = ", ".join(sorted(ALLOWED_IMPORTS))
            self._add(
                node,
                "import-not-allowed",
                f"import of {module!r} is not allowed; only {allowed} may be imported",
            )
            return
        for part in parts[1:]:
            self._check_attribute_name(node, part)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attribute_name(node, node.attr)
        self.generic_visit(node)

    def _check_attribute_name(self, node: ast.AST, attr: str) -> None:
        if _DUNDER.fullmatch(attr):
            self._add(node, "no-dunder-attribute", f"attribute {attr!r} is not allowed")
        elif attr.startswith("_"):
            self._add(node, "no-private-attribute", f"private attribute {attr!r} is not allowed")
        elif attr in INTROSPECTION_ATTRIBUTES:
            self._add(
                node,
                "no-introspection",
                f"attribute {attr!r} reaches frames or code objects and is not allowed",
            )
        elif attr in FORBIDDEN_API_ATTRIBUTES or attr.startswith("read_"):
            self._add(
                node,
                "forbidden-api",
                f"{attr!r} is not allowed: strategy code may not do file, network or "
                "native-code I/O, nor reach other modules",
            )
        elif attr.startswith("to_") and attr not in SAFE_TO_ATTRIBUTES:
            self._add(
                node,
                "forbidden-api",
                f"{attr!r} may write files and is not allowed; in-memory conversions such "
                "as to_numpy() are fine",
            )

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self._add(node, "forbidden-name", f"{node.id!r} is not allowed in strategy code")
        else:
            self._check_identifier(node, node.id, "name")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            if _DUNDER.search(text):
                self._add(node, "dunder-string", "strings that spell dunder names are not allowed")
            elif _FORMAT_ACCESS.search(text):
                self._add(
                    node,
                    "format-attribute",
                    "format fields may not access attributes or items, e.g. '{0.x}'",
                )

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._check_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._check_arguments(node, node.args)
        self.generic_visit(node)

    def _check_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_identifier(node, node.name, "function")
        self._check_arguments(node, node.args)
        self.generic_visit(node)

    def _check_arguments(self, node: ast.AST, args: ast.arguments) -> None:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        for arg in every:
            if arg is not None:
                self._check_identifier(node, arg.arg, "argument")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_identifier(node, node.name, "class")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self._check_identifier(node, node.arg, "keyword argument")
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # class patterns read attributes of the subject: `case C(attr=x)` is getattr
        for attr in node.kwd_attrs:
            self._check_attribute_name(node, attr)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._check_identifier(node, node.name, "name")
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._check_identifier(node, node.name, "name")

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._check_identifier(node, name, "global")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        for name in node.names:
            self._check_identifier(node, name, "nonlocal")
