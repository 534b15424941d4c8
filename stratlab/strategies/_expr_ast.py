"""The expression language's AST nodes and their evaluation over numpy arrays.

Split from ``expr.py`` (tokenizer and parser) so each stays small; nothing here parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})

Value = np.ndarray | float


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; says what and where."""

    def __init__(self, message: str, position: int | None = None) -> None:
        text = message if position is None else f"{message} at position {position}"
        super().__init__(text)
        self.position = position


# --- AST ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    pos: int
    is_bool: bool


@dataclass(frozen=True)
class _Num(_Node):
    value: float


@dataclass(frozen=True)
class _Name(_Node):
    name: str


@dataclass(frozen=True)
class _Op(_Node):
    """Any operator or function: ``op`` names it, ``args`` are its operands."""

    op: str
    args: tuple[_Node, ...]
    lag: int = 0


# --- evaluation ---------------------------------------------------------------------


def _lagged(values: Value, bars: int, fill: float | bool) -> Value:
    if np.ndim(values) == 0:
        return values
    array = np.asarray(values)
    out = np.full_like(array, fill)
    if bars < len(array):
        out[bars:] = array[: len(array) - bars]
    return out


def _compare(op: str, a: Value, b: Value) -> Value:
    if op == "!=":
        # numpy says NaN != x is True; the language says any comparison with NaN is False.
        return np.not_equal(a, b) & ~np.isnan(a) & ~np.isnan(b)
    return _COMPARE[op](a, b)


_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _crosses(a: Value, b: Value, above: bool) -> Value:
    now = np.greater(a, b) if above else np.less(a, b)
    before = np.less_equal(a, b) if above else np.greater_equal(a, b)
    return np.asarray(now) & np.asarray(_lagged(np.broadcast_to(before, np.shape(now)), 1, False))


def evaluate_node(node: _Node, env: Mapping[str, Value]) -> Value:
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Name):
        try:
            return env[node.name]
        except KeyError:
            raise ExpressionError(f"unknown name {node.name!r}", node.pos) from None
    assert isinstance(node, _Op)
    args = [evaluate_node(arg, env) for arg in node.args]
    op = node.op
    if op == "and":
        return np.logical_and(args[0], args[1])
    if op == "or":
        return np.logical_or(args[0], args[1])
    if op == "not":
        return np.logical_not(args[0])
    if op in _ARITH:
        return _ARITH[op](args[0], args[1])
    if op in COMPARISONS:
        return _compare(op, args[0], args[1])
    if op == "neg":
        return np.negative(args[0])
    if op == "lag":
        return _lagged(args[0], node.lag, False if node.is_bool else np.nan)
    if op == "abs":
        return np.abs(args[0])
    if op in ("min", "max"):
        # fmin/fmax would hide NaN warm-up; NaN must propagate so conditions stay False.
        return (np.minimum if op == "min" else np.maximum)(args[0], args[1])
    return _crosses(args[0], args[1], above=op == "crosses_above")
