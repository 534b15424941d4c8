"""The condition language: what it accepts, what it computes, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from stratlab.strategies.expr import ExpressionError, parse_expression

NAN = np.nan


def evaluate(text: str, **env: object) -> list[bool]:
    arrays = {k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in env.items()}
    return parse_expression(text).evaluate(arrays).tolist()  # type: ignore[arg-type]


def test_precedence_and_boolean_logic() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    assert evaluate("x * 2 + 1 > 6", x=x) == [False, False, True, True]
    assert evaluate("-x + 10 >= 8", x=x) == [True, True, False, False]
    assert evaluate("x > 1 and x < 4 or x == 1", x=x) == [True, True, True, False]
    assert evaluate("not (x > 1 and x < 4)", x=x) == [True, False, False, True]
    assert evaluate("x / 2 <= 1.5 and x != 2", x=x) == [True, False, True, False]
    assert evaluate("(x - 1) * (x - 4) < 0", x=x) == [False, True, True, False]


def test_functions() -> None:
    x = [1.0, -2.0, 3.0, -4.0]
    assert evaluate("abs(x) > 2", x=x) == [False, False, True, True]
    assert evaluate("max(x, 0) == min(abs(x), 3)", x=x) == [True, False, True, False]
    assert evaluate("lag(x, 1) > x", x=x) == [False, True, False, True]
    assert evaluate("lag(x > 0, 2)", x=x) == [False, False, True, False]


def test_crosses_above_and_below() -> None:
    a = [1.0, 2.0, 3.0, 2.0, 1.0, 3.0]
    b = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    # above at t: a[t] > b[t] and a[t-1] <= b[t-1]; touching (bar 1) is not a cross.
    assert evaluate("crosses_above(a, b)", a=a, b=b) == [False, False, True, False, False, True]
    assert evaluate("crosses_below(a, b)", a=a, b=b) == [False, False, False, False, True, False]
    assert evaluate("crosses_above(a, 2)", a=a) == evaluate("crosses_above(a, b)", a=a, b=b)


def test_nan_makes_every_comparison_false() -> None:
    x = [NAN, 1.0, NAN, 3.0]
    for op in ("<", "<=", ">", ">=", "==", "!="):
        assert evaluate(f"x {op} 2", x=x)[::2] == [False, False], op
    assert evaluate("crosses_above(x, 2)", x=x) == [False, False, False, False]
    assert evaluate("max(x, 0) > -1", x=x) == [False, True, False, True]


def test_names_include_indicator_outputs_and_scalars_broadcast() -> None:
    expression = parse_expression("crosses_above(macd, macd.signal) and close > threshold")
    assert expression.names == frozenset({"macd", "macd.signal", "close", "threshold"})
    result = parse_expression("fast < slow").evaluate({"fast": 5.0, "slow": 10.0}, n_bars=3)
    assert result.dtype == bool and result.tolist() == [True, True, True]


def test_unknown_name_at_evaluation() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'slow'"):
        parse_expression("fast > slow").evaluate({"fast": np.ones(3)})


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="different lengths"):
        parse_expression("a > b").evaluate({"a": np.ones(3), "b": np.ones(4)})


HOSTILE = [
    ("__import__('os')", r"names may not start with '_'.*position 0"),
    ("close.__class__ > 1", r"names may not start with '_'"),
    ("().__class__", r"unexpected character '\.' at position 2"),
    ("close > 'a'", r"strings are not allowed.*position 8"),
    ('close > "a"', r"strings are not allowed"),
    ("lambda x: x", r"'lambda' is a reserved word"),
    ("close > 1; import os", r"unexpected character ';' at position 9"),
    ("close > 1 " + "and close > 1 " * 40, r"too long"),
    ("(" * 30 + "close > 1" + ")" * 30, r"nested too deeply"),
    ("not " * 30 + "close > 1", r"nested too deeply"),
    ("x>1 or " * 70 + "x>1", r"too complex"),
    ("a.b.c > 1", r"more than one '\.'; use alias\.output"),
    ("system(close) > 1", r"unknown function 'system'; known functions: crosses_above"),
    ("close + 1", r"must be true/false"),
    ("close", r"must be true/false"),
    ("close > 1 > 0", r"chained comparisons"),
    ("close = 1", r"use '==' to compare"),
    ("close > 1 && close < 2", r"use 'and' / 'or'"),
    ("close >", r"found the end of the expression at position 7"),
    ("crosses_above(close)", r"takes 2 argument\(s\) but got 1"),
    ("lag(close, 0) > 1", r"whole number from 1 to 500"),
    ("lag(close, n) > 1", r"whole number from 1 to 500"),
    ("lag(close, 1.5) > 1", r"whole number from 1 to 500"),
    ("not close", r"operand of 'not' must be a condition"),
    ("close > 1 and 2", r"must be a condition"),
    ("abs(close > 1) > 0", r"must be a number, not a condition"),
    ("abs > 1", r"'abs' is a function"),
    ("", r"empty"),
    ("close > 1 )", r"unexpected '\)'"),
    ("x[0] > 1", r"unexpected character '\['"),
    ("close > 1e5", r"unexpected 'e5'"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_or_malformed_input_is_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_error_is_a_value_error_with_position() -> None:
    with pytest.raises(ValueError) as info:
        parse_expression("close > 1 and _x > 2")
    assert isinstance(info.value, ExpressionError) and info.value.position == 14


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError, match="must be text"):
        parse_expression(42)  # type: ignore[arg-type]
