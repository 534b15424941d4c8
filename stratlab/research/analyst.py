"""The data-driven analyst (seed 004): thresholds the data never reaches, and what it does.

``analyse_conditions(spec, splits)`` is pure and deterministic: no LLM, no clock, no
randomness. It looks only at the TRAIN split (the designer may know it; the test split
stays unseen) and checks every simple threshold comparison of a strategy:

- rules specs: each ``series OP threshold`` in entry and exit, where series is an
  indicator alias, ``alias.output``, a price column or ``lag`` of one, OP is one of
  ``< <= > >=``, and threshold is a number or a parameter (its grid range is searched).
  ``crosses_above(series, level)`` needs ``series <= level`` the bar before, so it is
  checked as ``<=``; ``crosses_below`` as ``>=``. Comparisons between two series, or
  with arithmetic on either side, are skipped.
- code specs: best effort, from the source's AST (see ``_analyst_code``).

A condition is flagged when, at its loosest (the parameter's most permissive grid value
and the indicator lookback that reaches furthest), fewer than ``min_hits`` train bars
satisfy it (default 1: it never happens). The proposal is the percentile the data does
reach: the 5th for a "below" condition, the 95th for an "above" one, rounded towards the
permissive side. Conditions are checked one at a time; a conjunction of individually
reachable conditions that never holds together is not detected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stratlab.market.indicators import INDICATORS, compute_indicator
from stratlab.market.ohlcv import OHLCV_COLUMNS
from stratlab.market.splits import Splits
from stratlab.models.research import AnalystSuggestion, IndicatorRef, ParamRange, StrategySpec
from stratlab.research._analyst_code import (
    Candidate,
    code_candidates,
    combos,
    defined,
    span_text,
)
from stratlab.strategies._expr_ast import _Name, _Node, _Num, _Op
from stratlab.strategies.expr import ExpressionError, parse_expression

BELOW_PERCENTILE = 5.0
ABOVE_PERCENTILE = 95.0
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def analyse_conditions(
    spec: StrategySpec, splits: Splits, *, min_hits: int = 1
) -> list[AnalystSuggestion]:
    """Suggestions for the conditions of ``spec`` that the train split (almost) never meets."""
    train = splits.train
    if spec.kind == "rules":
        candidates = _rules_candidates(spec, train)
        source = "rules"
    elif spec.kind == "code":
        candidates = code_candidates(spec, train)
        source = "code"
    else:
        return []  # ml thresholds are probabilities, not levels of the data
    suggestions: list[AnalystSuggestion] = []
    seen: set[tuple[str, str, str]] = set()
    for candidate in candidates:
        if candidate.key in seen:
            continue
        seen.add(candidate.key)
        suggestion = _check(candidate, min_hits=min_hits, source=source)
        if suggestion is not None:
            suggestions.append(suggestion)
    return suggestions


def render_suggestions(suggestions: Sequence[AnalystSuggestion]) -> str:
    """Feedback text for the designer: one line per suggestion, '' when there are none."""
    if not suggestions:
        return ""
    lines = ["Data check on the training split (deterministic analyst):"]
    lines += [f"- {_sentence(s)}" for s in suggestions]
    return "\n".join(lines)


def _sentence(s: AnalystSuggestion) -> str:
    below = s.op in ("<", "<=")
    direction, extreme = ("below", s.data_min) if below else ("above", s.data_max)
    if s.parameter is not None:
        target = s.parameter
        loosest = s.parameter_high if below else s.parameter_low
    else:
        target = f"the threshold {s.threshold:g} in '{s.condition}'"
        loosest = s.threshold
    if s.hits == 0:
        seen = f"{s.label} never goes {direction} {_fmt(extreme)} on the training data"
    else:
        seen = (
            f"{s.label} is {direction} {_fmt(loosest or 0.0)} on only {s.hits} of {s.bars} "
            "training bars"
        )
    return (
        f"{seen}; relax {target} to about {s.proposed:g} (its {_ordinal(s.percentile)} percentile)"
    )


def _check(candidate: Candidate, *, min_hits: int, source: str) -> AnalystSuggestion | None:
    arrays = [a for a in candidate.arrays if a.size]
    if not arrays:
        return None
    below = candidate.op in ("<", "<=")
    param = candidate.parameter
    if param is not None:
        loosest = param.high if below else param.low
    elif candidate.threshold is not None:
        loosest = candidate.threshold
    else:
        return None
    compare = _COMPARE[candidate.op]
    hits = max(int(np.count_nonzero(compare(a, loosest))) for a in arrays)
    if hits >= min_hits:
        return None
    pooled = np.concatenate(arrays)
    percentile = BELOW_PERCENTILE if below else ABOVE_PERCENTILE
    p5, p50, p95 = (float(v) for v in np.percentile(pooled, [5.0, 50.0, 95.0]))
    low, high = float(pooled.min()), float(pooled.max())
    return AnalystSuggestion(
        condition=candidate.condition,
        indicator=candidate.indicator,
        label=candidate.label,
        op=candidate.op,  # type: ignore[arg-type]
        threshold=candidate.threshold,
        parameter=param.name if param else None,
        parameter_low=param.low if param else None,
        parameter_high=param.high if param else None,
        hits=hits,
        bars=max(a.size for a in arrays),
        data_min=low,
        data_max=high,
        data_p5=p5,
        data_p50=p50,
        data_p95=p95,
        percentile=percentile,
        proposed=_round_permissive(p5 if below else p95, high - low, below=below),
        source=source,  # type: ignore[arg-type]
    )


def _round_permissive(value: float, span: float, *, below: bool) -> float:
    """``value`` on a grid of about 1/100 of the data's span, rounded so that the rounded
    threshold lets at least as many bars through (up for below, down for above)."""
    if span <= 0 or not math.isfinite(span):
        return round(value, 6)
    exponent = math.floor(math.log10(span)) - 1
    unit = 10.0**exponent
    steps = math.ceil(value / unit - 1e-9) if below else math.floor(value / unit + 1e-9)
    return round(steps * unit, max(0, -exponent))


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ordinal(value: float) -> str:
    number = int(value)
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


# --- rules specs ------------------------------------------------------------------------


def _rules_candidates(spec: StrategySpec, train: pd.DataFrame) -> list[Candidate]:
    ranges = {p.name: p for p in spec.parameters}
    refs = {ref.alias: ref for ref in spec.indicators}
    found: list[Candidate] = []
    for text in (spec.entry, spec.exit):
        try:
            # The parsed tree is the language's own; walking it beats re-parsing text.
            root = parse_expression(text)._root
        except ExpressionError:
            continue
        for series, op, threshold, condition in _comparisons(root, ranges):
            candidate = _rules_candidate(series, op, threshold, condition, refs, ranges, train)
            if candidate is not None:
                found.append(candidate)
    return found


def _comparisons(
    node: _Node, ranges: Mapping[str, ParamRange]
) -> list[tuple[str, str, float | ParamRange, str]]:
    """``(series name, op, number or parameter, condition text)`` for every simple
    threshold comparison under ``node``."""
    if not isinstance(node, _Op):
        return []
    found = []
    for child in node.args:
        found += _comparisons(child, ranges)
    op = node.op
    if op in _COMPARE or op in ("crosses_above", "crosses_below"):
        left, right = node.args
        if op == "crosses_above":
            op = "<="
        elif op == "crosses_below":
            op = ">="
        text = _text(node)
        series, threshold = _series(left, ranges), _threshold(right, ranges)
        if series is None or threshold is None:
            series, threshold, op = _series(right, ranges), _threshold(left, ranges), _FLIP[op]
        if series is not None and threshold is not None:
            found.append((series, op, threshold, text))
    return found


def _series(node: _Node, ranges: Mapping[str, ParamRange]) -> str | None:
    if isinstance(node, _Op) and node.op == "lag":
        return _series(node.args[0], ranges)  # a lagged series reaches the same levels
    if isinstance(node, _Name) and node.name not in ranges:
        return node.name
    return None


def _threshold(node: _Node, ranges: Mapping[str, ParamRange]) -> float | ParamRange | None:
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Op) and node.op == "neg" and isinstance(node.args[0], _Num):
        return -node.args[0].value
    if isinstance(node, _Name) and node.name in ranges:
        return ranges[node.name]
    return None


def _text(node: _Node) -> str:
    if isinstance(node, _Num):
        return f"{node.value:g}"
    if isinstance(node, _Name):
        return node.name
    assert isinstance(node, _Op)
    args = [_text(arg) for arg in node.args]
    if node.op == "neg":
        return f"-{args[0]}"
    if node.op == "lag":
        return f"lag({args[0]}, {node.lag})"
    if node.op in _COMPARE or node.op in ("+", "-", "*", "/", "==", "!=", "and", "or"):
        return f"{args[0]} {node.op} {args[1]}"
    return f"{node.op}({', '.join(args)})"


def _rules_candidate(
    series: str,
    op: str,
    threshold: float | ParamRange,
    condition: str,
    refs: Mapping[str, IndicatorRef],
    ranges: Mapping[str, ParamRange],
    train: pd.DataFrame,
) -> Candidate | None:
    arrays_label = _series_arrays(series, refs, ranges, train)
    if arrays_label is None:
        return None
    arrays, label = arrays_label
    is_param = isinstance(threshold, ParamRange)
    return Candidate(
        condition=condition,
        indicator=series,
        label=label,
        op=op,
        arrays=arrays,
        threshold=None if is_param else float(threshold),  # type: ignore[arg-type]
        parameter=threshold if is_param else None,  # type: ignore[arg-type]
    )


def _series_arrays(
    name: str,
    refs: Mapping[str, IndicatorRef],
    ranges: Mapping[str, ParamRange],
    train: pd.DataFrame,
) -> tuple[tuple[np.ndarray, ...], str] | None:
    """The series on the train split, once per combination of its indicator's searched
    parameters, and a label such as ``RSI(7..21)``; None for names it cannot resolve."""
    if name in OHLCV_COLUMNS:
        return (defined(np.asarray(train[name])),), name
    alias, _, output = name.partition(".")
    ref = refs.get(alias)
    if ref is None or ref.kind not in INDICATORS:
        return None
    output = output or INDICATORS[ref.kind].default_output
    if output not in INDICATORS[ref.kind].outputs:
        return None
    searched = {
        str(v): ranges[str(v)] for v in ref.params.values() if isinstance(v, str) and v in ranges
    }
    if len(searched) != sum(isinstance(v, str) for v in ref.params.values()):
        return None  # a parameter the spec does not declare: validation reports it
    arrays = []
    for combo in combos(searched):
        params = {k: combo[v] if isinstance(v, str) else float(v) for k, v in ref.params.items()}
        try:
            arrays.append(defined(compute_indicator(ref.kind, train, params)[output]))
        except ValueError:
            continue  # a grid value outside the indicator's bounds: validation's business
    if not arrays:
        return None
    shown = [span_text(ranges[v]) if isinstance(v, str) else f"{v:g}" for v in ref.params.values()]
    suffix = "" if output == INDICATORS[ref.kind].default_output else f".{output}"
    return tuple(arrays), f"{ref.kind.upper()}({', '.join(shown)}){suffix}"
