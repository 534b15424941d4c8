"""Conditions the analyst can check, and the code-spec heuristic that finds some of them.

A ``Candidate`` is one comparison of a series against a threshold, already computed on
the train split (one array per indicator-parameter combination searched by the grid).

Code specs are Python, so their conditions cannot be evaluated without running them;
the analyst instead reads the source's AST (never executes it) and, best effort:

1. finds comparisons ``<series> < / <= / > / >= <parameter>`` where the parameter is
   read as ``params["name"]`` or ``params.get("name")`` (directly, through
   ``float()``/``int()``, or through a local variable assigned from it);
2. keeps parameters whose name contains one of the words oversold, overbought,
   threshold, entry, exit or z (and none of window, period, lookback, length, span);
3. names the indicator from the words of the compared expression, then of the parameter:
   rsi -> RSI; stoch/stochastic -> stochastic %K; pctb/bollinger/bb -> Bollinger %B;
   z/zscore -> z-score of close; roc/momentum/mom -> rate of change in percent;
4. recomputes that indicator from the registry with the lookback of the parameter
   whose name holds the indicator's word and a window word (else the only window
   parameter, else the registry default), at the low, middle and high of its range.

A comparison that fits none of this is skipped: the heuristic proposes nothing rather
than guess.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratlab.market.indicators import compute_indicator
from stratlab.models.research import ParamRange, StrategySpec
from stratlab.strategies.rules import range_values

MAX_COMBOS = 27
"""Indicator-parameter combinations recomputed per condition (low/mid/high beyond)."""

_THRESHOLD_WORDS = frozenset({"oversold", "overbought", "threshold", "entry", "exit", "z"})
_WINDOW_WORDS = frozenset({"window", "period", "lookback", "length", "len", "span"})
# (words that name it, registry kind, output, word expected in its window parameter)
_CODE_INDICATORS: tuple[tuple[frozenset[str], str, str, str], ...] = (
    (frozenset({"rsi"}), "rsi", "value", "rsi"),
    (frozenset({"stoch", "stochastic"}), "stoch", "k", "stoch"),
    (frozenset({"pctb", "bollinger", "bb"}), "bbands", "pctb", "bb"),
    (frozenset({"z", "zscore"}), "zscore", "value", "z"),
    (frozenset({"roc", "momentum", "mom"}), "roc", "value", "roc"),
)
_WINDOW_KEY = {"rsi": "window", "stoch": "k_window", "bbands": "window", "zscore": "window"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_AST_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class Candidate:
    """``series op threshold`` (or ``op`` the parameter's range) over the train split."""

    condition: str
    indicator: str
    label: str
    op: str
    arrays: tuple[np.ndarray, ...]
    threshold: float | None = None
    parameter: ParamRange | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        target = self.parameter.name if self.parameter else f"{self.threshold}"
        return (self.label, self.op, target)


def words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if w}


def sample_values(param: ParamRange, *, few: bool) -> list[float]:
    """A range's grid values, or its low, middle and high when ``few``."""
    values = [float(v) for v in range_values(param)] or [param.low]
    if few and len(values) > 3:
        values = [values[0], values[len(values) // 2], values[-1]]
    return values


def combos(ranges: dict[str, ParamRange]) -> Iterator[dict[str, float]]:
    """Every combination of the ranges' values, thinned to low/mid/high when too many."""
    names = list(ranges)
    size = 1
    for param in ranges.values():
        size *= max(1, len(range_values(param)))
    axes = [sample_values(ranges[n], few=size > MAX_COMBOS) for n in names]
    for values in itertools.product(*axes):
        yield dict(zip(names, values, strict=True))


def defined(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def span_text(param: ParamRange) -> str:
    return f"{param.low:g}" if param.high == param.low else f"{param.low:g}..{param.high:g}"


# --- code specs -------------------------------------------------------------------------


def code_candidates(spec: StrategySpec, train: pd.DataFrame) -> list[Candidate]:
    """Threshold comparisons found in a code spec's source (see the module docstring)."""
    if not spec.code:
        return []
    try:
        tree = ast.parse(spec.code)
    except SyntaxError:
        return []  # the refinement loop reports the syntax error itself
    ranges = {p.name: p for p in spec.parameters}
    params_name = _params_argument(tree)
    aliases = _param_aliases(tree, params_name)
    found: list[Candidate] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
            continue
        op = _AST_OPS.get(type(node.ops[0]))
        left, right = node.left, node.comparators[0]
        if op is None:
            continue
        name = _param_ref(right, params_name, aliases)
        series = left
        if name is None:
            name, series, op = _param_ref(left, params_name, aliases), right, _FLIP[op]
        if name is None or name not in ranges or not _is_threshold(name):
            continue
        candidate = _code_candidate(ast.unparse(node), ast.unparse(series), op, ranges[name], spec)
        if candidate is not None:
            found.append(_computed(candidate, train))
    return found


@dataclass(frozen=True)
class _CodeCheck:
    condition: str
    kind: str
    output: str
    op: str
    parameter: ParamRange
    window: ParamRange | None
    k: float


def _code_candidate(
    condition: str, series: str, op: str, param: ParamRange, spec: StrategySpec
) -> _CodeCheck | None:
    for source in (words(series), words(param.name)):
        for names, kind, output, window_word in _CODE_INDICATORS:
            if source & names:
                window = _window_param(spec.parameters, window_word)
                k = _bollinger_k(spec.parameters) if kind == "bbands" else 2.0
                return _CodeCheck(condition, kind, output, op, param, window, k)
    return None


def _computed(check: _CodeCheck, train: pd.DataFrame) -> Candidate:
    arrays = []
    windows = sample_values(check.window, few=True) if check.window else [None]
    for window in windows:
        params: dict[str, float] = {}
        if window is not None:
            params[_WINDOW_KEY.get(check.kind, "window")] = float(max(2, round(window)))
        if check.kind == "bbands":
            params["k"] = check.k
        arrays.append(defined(compute_indicator(check.kind, train, params)[check.output]))
    window_text = span_text(check.window) if check.window else "default"
    suffix = "" if check.output == "value" else f".{check.output}"
    return Candidate(
        condition=check.condition,
        indicator=f"{check.kind}{suffix}",
        label=f"{check.kind.upper()}({window_text}){suffix}",
        op=check.op,
        arrays=tuple(arrays),
        parameter=check.parameter,
    )


def _is_threshold(name: str) -> bool:
    parts = words(name)
    return bool(parts & _THRESHOLD_WORDS) and not parts & _WINDOW_WORDS


def _window_param(parameters: Sequence[ParamRange], word: str) -> ParamRange | None:
    windows = [p for p in parameters if words(p.name) & _WINDOW_WORDS]
    named = [p for p in windows if word in words(p.name)]
    if named:
        return named[0]
    return windows[0] if len(windows) == 1 else None


def _bollinger_k(parameters: Sequence[ParamRange]) -> float:
    for param in parameters:
        if words(param.name) & {"k", "std", "width"}:
            values = sample_values(param, few=True)
            return float(values[len(values) // 2])
    return 2.0


def _params_argument(tree: ast.Module) -> str:
    for node in tree.body:
        if (
            isinstance(node, ast.FunctionDef)
            and node.name == "signals"
            and len(node.args.args) >= 2
        ):
            return node.args.args[1].arg
    return "params"


def _param_aliases(tree: ast.Module, params_name: str) -> dict[str, str]:
    """Local names assigned straight from a parameter: ``oversold = params["oversold"]``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = _param_ref(node.value, params_name, aliases)
            if name is not None:
                aliases[node.targets[0].id] = name
    return aliases


def _param_ref(node: ast.expr, params_name: str, aliases: dict[str, str]) -> str | None:
    """The parameter an expression reads, or None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in ("float", "int") and len(node.args) == 1:
            return _param_ref(node.args[0], params_name, aliases)
        return None
    if isinstance(node, ast.Subscript) and _is_name(node.value, params_name):
        key = node.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _is_name(node.func.value, params_name)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
