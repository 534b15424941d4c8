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
* ``module-not-allowed``: no attribute that leads out of the allowed modules (numpy,
  pandas, math and a few of their submodules; see ``_reach``), e.g.
  ``np.random.bit_generator`` or ``np.polynomial.polyutils``, nor a standard-library
  module name used as an attribute.
* ``name-dispatch``: methods that call another method by its name (``apply``, ``agg``,
  ``transform``, ``map``, ``pipe``...) get a function or a literal name of an allowed
  method: not ``s.apply("to_pickle", ...)``, not a name built at run time.
* ``dunder-string`` / ``format-attribute`` / ``format-receiver``: no string that spells
  a dunder, no ``str.format`` field that reaches into an attribute or item
  (``"{0.real}"``), and ``.format``/``.format_map`` only on a string literal, so a
  template cannot be assembled from pieces that each look harmless.
* ``signals-function``: a top-level ``def signals(data, params)`` must exist.
* ``too-long`` / ``too-complex``: the source is capped, and so is the depth of its
  syntax tree, so a runaway generation fails fast and any input gets a verdict.

The lists of allowed and forbidden names behind these rules live in ``_names``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from stratlab.sandbox import _names, _reach

MAX_SOURCE_CHARS = 50_000
# Syntax-tree depth. Honest strategies stay far below it; past it, compiling the code
# (here and in the sandbox) can hit the recursion limit, depending on the caller's stack.
MAX_NESTING = 100
_TOO_DEEP = (
    f"the code is nested more than {MAX_NESTING} levels deep (a very long chain such as "
    "1+1+... counts one level per term); split it into several statements"
)


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
    """Raise CodeValidationError listing every violation of ``source``; None when clean.

    Never raises anything else, whatever the input: code too deep or too large to check
    is itself a violation (``too-complex``), so the caller always gets a verdict.
    """
    violations = find_violations(source)
    if violations:
        raise CodeValidationError(violations)


def find_violations(source: str) -> list[Violation]:
    """Every violation of ``source``, ordered by line; never raises."""
    if not isinstance(source, str):
        return [Violation("syntax", 0, f"the code must be text, got {type(source).__name__}")]
    try:
        return _find_violations(source)
    except (RecursionError, MemoryError):
        # The parser, the AST or a check ran out of stack or memory on this input.
        return [Violation("too-complex", 0, _TOO_DEEP)]


def _find_violations(source: str) -> list[Violation]:
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
        return [Violation("syntax", exc.lineno or 0, _one_line(exc.msg))]
    except ValueError as exc:  # null bytes
        return [Violation("syntax", 0, f"the code cannot be parsed: {type(exc).__name__}")]
    except (RecursionError, MemoryError):
        # "syntax", so callers that parse the code themselves know they cannot
        return [Violation("syntax", 0, f"the code cannot be parsed: {_TOO_DEEP}")]
    checker = _Checker()
    checker.check(tree)
    checker.violations += _signals_violations(tree)
    return sorted(checker.violations, key=lambda v: (v.line, v.rule))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


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


class _Checker:
    """Collects violations while walking the tree once.

    The walk keeps its own stack (no recursion), and each ``visit_*`` looks at its
    own node only: a recursive visitor would hit the recursion limit on ``1+1+...``.
    """

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.aliases: dict[str, str] = {}

    def check(self, tree: ast.AST) -> None:
        self.aliases = _reach.import_aliases(tree)
        pending: list[tuple[ast.AST, int]] = [(tree, 0)]
        while pending:
            node, depth = pending.pop()
            if depth > MAX_NESTING:
                self._add(node, "too-complex", _TOO_DEEP)
                return  # one verdict is enough: the rest of this code is as deep
            visit = getattr(self, f"visit_{type(node).__name__}", None)
            if visit is not None:
                visit(node)
            pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    def _add(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(Violation(rule, getattr(node, "lineno", 0), message))

    def _check_identifier(self, node: ast.AST, name: str | None, what: str) -> None:
        if name and _names.DUNDER.fullmatch(name):
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
            module = node.module or ""
            reached = node.level == 0 and _reach.resolve(module, [alias.name]) is not None
            self._check_attribute_name(node, alias.name, reaches_allowed_module=reached)
            self._check_identifier(node, alias.asname, "import alias")

    def _check_module(self, node: ast.AST, module: str) -> None:
        parts = module.split(".")
        if parts[0] not in _names.ALLOWED_IMPORTS:
            allowed = ", ".join(sorted(_names.ALLOWED_IMPORTS))
            self._add(
                node,
                "import-not-allowed",
                f"import of {module!r} is not allowed; only {allowed} may be imported",
            )
            return
        for depth, part in enumerate(parts[1:], start=1):
            reached = _reach.resolve(parts[0], parts[1 : depth + 1]) is not None
            self._check_attribute_name(node, part, reaches_allowed_module=reached)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        reached = (
            node.attr in _reach.reaching_names()
            and _reach.resolve_chain(node, self.aliases) is not None
        )
        self._check_attribute_name(node, node.attr, reaches_allowed_module=reached)
        if node.attr in _names.FORMAT_METHODS and not _names.is_text(node.value):
            self._add(
                node,
                "format-receiver",
                f".{node.attr}() is allowed on a string literal only, e.g. "
                "'{:.2f}'.format(x); or use an f-string",
            )

    def _check_attribute_name(
        self, node: ast.AST, attr: str, *, reaches_allowed_module: bool = False
    ) -> None:
        problem = _names.attribute_problem(attr, reaches_allowed_module=reaches_allowed_module)
        if problem is not None:
            self._add(node, *problem)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr not in _names.NAME_DISPATCHERS:
            return
        targets = [*node.args[:1]]
        targets += [k.value for k in node.keywords if k.arg in _names.DISPATCH_KEYWORDS]
        while targets:
            target = targets.pop()
            if isinstance(target, ast.List | ast.Tuple | ast.Set):
                targets.extend(target.elts)
            elif isinstance(target, ast.Dict):
                targets.extend(target.values)
            elif isinstance(target, ast.Constant) and isinstance(target.value, str):
                name = target.value
                if _names.attribute_problem(name) is not None:
                    self._add(
                        target,
                        "name-dispatch",
                        f".{func.attr}({name[:40]!r}) calls a method that is not allowed; "
                        "pass a function, e.g. .apply(lambda x: ...)",
                    )
            elif _names.builds_text(target):
                self._add(
                    target,
                    "name-dispatch",
                    f".{func.attr}() gets a method name built at run time; pass a function "
                    "or a literal name such as 'mean'",
                )

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _names.FORBIDDEN_NAMES:
            self._add(node, "forbidden-name", f"{node.id!r} is not allowed in strategy code")
        else:
            self._check_identifier(node, node.id, "name")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            if _names.DUNDER.search(text):
                self._add(node, "dunder-string", "strings that spell dunder names are not allowed")
            elif _names.FORMAT_ACCESS.search(text):
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

    def _check_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_identifier(node, node.name, "function")
        self._check_arguments(node, node.args)

    def _check_arguments(self, node: ast.AST, args: ast.arguments) -> None:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        for arg in every:
            if arg is not None:
                self._check_identifier(node, arg.arg, "argument")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_identifier(node, node.name, "class")

    def visit_keyword(self, node: ast.keyword) -> None:
        self._check_identifier(node, node.arg, "keyword argument")

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # class patterns read attributes of the subject: `case C(attr=x)` is getattr
        for attr in node.kwd_attrs:
            self._check_attribute_name(node, attr)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._check_identifier(node, node.name, "name")

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._check_identifier(node, node.name, "name")

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._check_identifier(node, name, "global")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        for name in node.names:
            self._check_identifier(node, name, "nonlocal")
