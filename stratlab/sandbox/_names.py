"""The vocabulary of the AST pre-filter (``validator``): what strategy code may not name.

Which modules it may import, which builtins, attributes and strings it may not use, and
``attribute_problem``, the one verdict on an attribute name that the import, attribute
and name-dispatch checks share. Like the pre-filter itself, these lists make mistakes
fail early with a useful message; the security boundary is the sandbox.
"""

from __future__ import annotations

import ast
import re

from stratlab.sandbox import _reach

ALLOWED_IMPORTS = frozenset({"numpy", "pandas", "math"})

FORBIDDEN_NAMES = frozenset(
    {
        "getattr", "setattr", "delattr", "eval", "exec", "open", "compile", "__import__",
        "globals", "locals", "vars", "input", "breakpoint", "help", "exit", "quit",
        "attrgetter", "methodcaller",
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
        # attribute access and calls by name, and format templates by parts
        "attrgetter", "methodcaller", "Formatter", "vformat",
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

# Methods that look another method up by a name given as a string.
NAME_DISPATCHERS = frozenset({"apply", "applymap", "agg", "aggregate", "transform", "map", "pipe"})
DISPATCH_KEYWORDS = frozenset({"func", "arg", "aggfunc"})
FORMAT_METHODS = frozenset({"format", "format_map"})

DUNDER = re.compile(r"__\w+__")
# A str.format replacement field whose field name reaches an attribute or an item. The
# name's class excludes ``.`` and ``[``, so the match is linear in the string's length.
FORMAT_ACCESS = re.compile(r"\{[^{}:!.\[]*[.\[]")


def attribute_problem(attr: str, *, reaches_allowed_module: bool = False) -> tuple[str, str] | None:
    """``(rule, message)`` when ``attr`` may not be used as an attribute (or as a method
    name given to ``apply`` and the like); ``reaches_allowed_module`` says the validator
    resolved it, from an import, to an allowed module (``np.lib``)."""
    if DUNDER.fullmatch(attr):
        return "no-dunder-attribute", f"attribute {attr!r} is not allowed"
    if attr.startswith("_"):
        return "no-private-attribute", f"private attribute {attr!r} is not allowed"
    if attr in INTROSPECTION_ATTRIBUTES:
        return (
            "no-introspection",
            f"attribute {attr!r} reaches frames or code objects and is not allowed",
        )
    if attr in FORBIDDEN_API_ATTRIBUTES or attr.startswith("read_"):
        return (
            "forbidden-api",
            f"{attr!r} is not allowed: strategy code may not do file, network or "
            "native-code I/O, nor reach other modules",
        )
    if attr.startswith("to_") and attr not in SAFE_TO_ATTRIBUTES:
        return (
            "forbidden-api",
            f"{attr!r} may write files and is not allowed; in-memory conversions such "
            "as to_numpy() are fine",
        )
    if attr in _reach.leaving_names() and not reaches_allowed_module:
        return (
            "module-not-allowed",
            f"{attr!r} leads to a module other than numpy, pandas and math; use the "
            "numpy and pandas functions directly",
        )
    return None


def is_text(node: ast.AST) -> bool:
    """Is ``node`` a string literal?"""
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# String methods and builtins that make a new string out of others.
_TEXT_BUILDERS = frozenset(
    {
        "join", "format", "format_map", "replace", "lower", "upper", "strip", "lstrip",
        "rstrip", "title", "capitalize", "casefold", "swapcase", "removeprefix",
        "removesuffix", "translate", "zfill", "ljust", "rjust", "center", "str", "chr",
        "repr", "ascii",
    }
)  # fmt: skip


def builds_text(node: ast.AST) -> bool:
    """Is ``node`` an expression that assembles a string (concatenation, an f-string,
    ``"".join(...)``, ``str(...)``)?"""
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in _TEXT_BUILDERS
    return False
