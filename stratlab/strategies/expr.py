"""A small, safe expression language for entry and exit conditions.

Text written by an LLM is tokenised and parsed here by hand into a tiny typed AST that is
evaluated over numpy arrays; nothing ever reaches ``eval``, ``exec`` or Python's own
parser, and the only callables are the six built-in functions below.

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | NAME | FUNC "(" args ")" | "(" expr ")"

Names are ``[A-Za-z][A-Za-z0-9_]*`` with at most one ``.output`` suffix. Functions:
``crosses_above(a, b)``, ``crosses_below(a, b)``, ``lag(x, n)`` (n an integer literal
1..500), ``abs(x)``, ``min(a, b)``, ``max(a, b)``. Comparisons involving NaN are False.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from stratlab.strategies._expr_ast import (
    COMPARISONS,
    ExpressionError,
    Value,
    _Name,
    _Node,
    _Num,
    _Op,
    evaluate_node,
)

MAX_LENGTH = 500
MAX_DEPTH = 25
MAX_NODES = 200
MAX_LAG = 500

FUNCTIONS: dict[str, int] = {
    "crosses_above": 2,
    "crosses_below": 2,
    "lag": 2,
    "abs": 1,
    "min": 2,
    "max": 2,
}
KEYWORDS = frozenset({"and", "or", "not"})


# --- tokens -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>\d+\.\d*|\.\d+|\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*)"
    r"|(?P<op><=|>=|==|!=|[<>+\-*/(),])"
)


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | op | keyword | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(_bad_char_message(text[pos]), pos)
        kind, value = match.lastgroup or "", match.group()
        if kind == "name":
            _check_name(value, pos)
            kind = "keyword" if value in KEYWORDS else "name"
        if kind != "space":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _bad_char_message(char: str) -> str:
    if char in "'\"":
        return "strings are not allowed (found a quote)"
    if char == "=":
        return "unexpected '='; use '==' to compare"
    if char == "&" or char == "|":
        return f"unexpected {char!r}; use 'and' / 'or'"
    return f"unexpected character {char!r}"


def _check_name(name: str, pos: int) -> None:
    parts = name.split(".")
    if len(parts) > 2:
        raise ExpressionError(f"name {name!r} has more than one '.'; use alias.output", pos)
    if any(part == "" for part in parts):
        raise ExpressionError(f"malformed name {name!r}", pos)
    if any(part.startswith("_") for part in parts):
        raise ExpressionError(f"names may not start with '_' ({name!r})", pos)
    if parts[-1][0].isdigit():
        raise ExpressionError(f"malformed name {name!r}", pos)
    reserved = [p for p in parts if keyword.iskeyword(p) and p not in KEYWORDS]
    if reserved or (len(parts) == 2 and parts[1] in KEYWORDS):
        word = reserved[0] if reserved else parts[1]
        raise ExpressionError(f"{word!r} is a reserved word and cannot be used", pos)


# --- parser -------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.nodes = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tok
        self.index += 1
        return token

    def expect(self, text: str) -> _Token:
        if self.tok.text != text or self.tok.kind not in ("op", "keyword"):
            raise ExpressionError(
                f"expected {text!r} but found {_describe(self.tok)}", self.tok.pos
            )
        return self.advance()

    def node(self, node: _Node) -> _Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression is too complex (more than {MAX_NODES} nodes)")
        return node

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply (over {MAX_DEPTH})", pos)

    def parse(self) -> _Node:
        root = self.or_expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {_describe(self.tok)}", self.tok.pos)
        if not root.is_bool:
            raise ExpressionError(
                "the condition must be true/false, e.g. 'close > sma' or "
                "'crosses_above(fast, slow)', not a bare number or arithmetic expression"
            )
        return root

    def chain(self, ops: tuple[str, ...], operand: Callable[[], _Node], is_bool: bool) -> _Node:
        """A left-associative run of binary operators of one precedence level."""
        left = operand()
        while self.tok.kind in ("op", "keyword") and self.tok.text in ops:
            token = self.advance()
            right = operand()
            _require(left, is_bool, f"left side of {token.text!r}", token.pos)
            _require(right, is_bool, f"right side of {token.text!r}", token.pos)
            left = self.node(_Op(token.pos, is_bool, token.text, (left, right)))
        return left

    def or_expr(self) -> _Node:
        return self.chain(("or",), self.and_expr, is_bool=True)

    def and_expr(self) -> _Node:
        return self.chain(("and",), self.not_expr, is_bool=True)

    def not_expr(self) -> _Node:
        if self.tok.kind == "keyword" and self.tok.text == "not":
            token = self.advance()
            self.enter(token.pos)
            operand = self.not_expr()
            self.depth -= 1
            _require(operand, True, "operand of 'not'", token.pos)
            return self.node(_Op(token.pos, True, "not", (operand,)))
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.sum()
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            token = self.advance()
            right = self.sum()
            if self.tok.kind == "op" and self.tok.text in COMPARISONS:
                raise ExpressionError(
                    "chained comparisons are not supported; write 'a < b and b < c'",
                    self.tok.pos,
                )
            _require(left, False, f"left side of {token.text!r}", token.pos)
            _require(right, False, f"right side of {token.text!r}", token.pos)
            return self.node(_Op(token.pos, True, token.text, (left, right)))
        return left

    def sum(self) -> _Node:
        return self.chain(("+", "-"), self.product, is_bool=False)

    def product(self) -> _Node:
        return self.chain(("*", "/"), self.unary, is_bool=False)

    def unary(self) -> _Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            token = self.advance()
            self.enter(token.pos)
            operand = self.unary()
            self.depth -= 1
            _require(operand, False, "operand of unary '-'", token.pos)
            return self.node(_Op(token.pos, False, "neg", (operand,)))
        return self.primary()

    def primary(self) -> _Node:
        token = self.tok
        if token.kind == "number":
            self.advance()
            return self.node(_Num(token.pos, False, float(token.text)))
        if token.kind == "name":
            self.advance()
            if token.text in FUNCTIONS:
                return self.call(token)
            if self.tok.kind == "op" and self.tok.text == "(":
                known = ", ".join(FUNCTIONS)
                raise ExpressionError(
                    f"unknown function {token.text!r}; known functions: {known}", token.pos
                )
            return self.node(_Name(token.pos, False, token.text))
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.enter(token.pos)
            inner = self.or_expr()
            self.depth -= 1
            self.expect(")")
            return inner
        raise ExpressionError(
            f"expected a number, a name or '(' but found {_describe(token)}", token.pos
        )

    def call(self, name: _Token) -> _Node:
        if self.tok.text != "(":
            raise ExpressionError(
                f"{name.text!r} is a function; call it as {name.text}(...)", name.pos
            )
        self.advance()
        self.enter(name.pos)
        args = [self.or_expr()]
        while self.tok.kind == "op" and self.tok.text == ",":
            self.advance()
            args.append(self.or_expr())
        self.expect(")")
        self.depth -= 1
        arity = FUNCTIONS[name.text]
        if len(args) != arity:
            raise ExpressionError(
                f"{name.text}() takes {arity} argument(s) but got {len(args)}", name.pos
            )
        if name.text == "lag":
            return self.node(_lag_node(name, args))
        for arg in args:
            _require(arg, False, f"argument of {name.text}()", arg.pos)
        is_bool = name.text.startswith("crosses_")
        return self.node(_Op(name.pos, is_bool, name.text, tuple(args)))


def _lag_node(name: _Token, args: list[_Node]) -> _Op:
    bars = args[1]
    if not (isinstance(bars, _Num) and bars.value.is_integer() and 1 <= bars.value <= MAX_LAG):
        raise ExpressionError(
            f"lag()'s second argument must be a whole number from 1 to {MAX_LAG}", bars.pos
        )
    # Lagging keeps the operand's type, so lag(crosses_above(a, b), 1) is a condition.
    return _Op(name.pos, args[0].is_bool, "lag", (args[0],), lag=int(bars.value))


def _require(node: _Node, is_bool: bool, where: str, pos: int) -> None:
    if node.is_bool != is_bool:
        wanted = "a condition (true/false)" if is_bool else "a number"
        got = "a condition" if node.is_bool else "a number"
        raise ExpressionError(f"{where} must be {wanted}, not {got}", pos)


def _describe(token: _Token) -> str:
    return "the end of the expression" if token.kind == "end" else repr(token.text)


def _free_names(node: _Node) -> set[str]:
    if isinstance(node, _Name):
        return {node.name}
    if isinstance(node, _Op):
        return set().union(*(_free_names(arg) for arg in node.args))
    return set()


@dataclass(frozen=True)
class Expression:
    """A parsed condition: ``names`` are the free names ``evaluate`` needs in its env."""

    source: str
    names: frozenset[str]
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, Value], *, n_bars: int | None = None) -> np.ndarray:
        """Evaluate over ``env`` (name -> array or scalar) to a bool array of ``n_bars``.

        ``n_bars`` defaults to the length of the arrays among the names used; an
        expression over scalars only yields a constant array of that length (or 1).
        """
        values: dict[str, Value] = {}
        for name in self.names:
            if name not in env:
                raise ExpressionError(f"unknown name {name!r} in {self.source!r}")
            raw = env[name]
            values[name] = float(raw) if np.ndim(raw) == 0 else np.asarray(raw, dtype=np.float64)
        lengths = {len(v) for v in values.values() if isinstance(v, np.ndarray)}
        if n_bars is not None:
            lengths.add(n_bars)
        if len(lengths) > 1:
            raise ExpressionError(f"arrays of different lengths {sorted(lengths)} in evaluation")
        size = lengths.pop() if lengths else 1
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = evaluate_node(self._root, values)
        out = np.asarray(result, dtype=bool)
        return np.broadcast_to(out, (size,)).copy() if out.ndim == 0 else out


def parse_expression(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`; ExpressionError says what is wrong."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text)} > {MAX_LENGTH} characters)")
    if not text.strip():
        raise ExpressionError("expression is empty")
    root = _Parser(text).parse()
    return Expression(source=text, names=frozenset(_free_names(root)), _root=root)
