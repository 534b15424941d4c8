"""Checks a designed ``StrategySpec`` before any compute is spent on it.

All problems are collected, not just the first, and each is phrased so that an LLM
designer reading the list can fix its spec in one round.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import re
from collections.abc import Collection, Iterable

from stratlab.market.indicators import INDICATORS, IndicatorDef, ParamDef
from stratlab.market.ohlcv import OHLCV_COLUMNS
from stratlab.models.research import IndicatorRef, MlSpec, ParamRange, StrategySpec
from stratlab.sandbox.validator import CodeValidationError, validate_code
from stratlab.strategies.expr import FUNCTIONS, KEYWORDS, ExpressionError, parse_expression
from stratlab.strategies.rules import range_is_integral, range_size

MAX_INDICATORS = 16
RESERVED_NAMES = frozenset(OHLCV_COLUMNS) | frozenset(FUNCTIONS) | KEYWORDS
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class StrategyValidationError(ValueError):
    """A spec with problems; ``problems`` lists them, str() joins them on one line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(self.problems)  # args stay (problems,) so pickling round-trips

    def __str__(self) -> str:
        return "invalid strategy: " + "; ".join(self.problems)


def validate_spec(
    spec: StrategySpec, *, max_grid_size: int = 4096, known_symbols: Collection[str] | None = None
) -> None:
    """Raise StrategyValidationError listing every problem of ``spec``; None when valid."""
    problems: list[str] = []
    if not spec.name.strip():
        problems.append("name is empty; give the strategy a short descriptive name")
    if known_symbols is not None and spec.symbol not in known_symbols:
        problems.append(
            f"symbol {spec.symbol!r} is not available; known symbols: "
            f"{', '.join(sorted(known_symbols))}"
        )
    for label, value in (("stop_loss", spec.stop_loss), ("take_profit", spec.take_profit)):
        if value is not None and not 0 < value < 1:
            problems.append(f"{label} must be a fraction between 0 and 1 (e.g. 0.05), got {value}")
    parameters = _check_parameters(spec.parameters, problems, max_grid_size)
    indicators = _check_indicators(spec, parameters, problems)
    used = {v for ref in spec.indicators for v in ref.params.values() if isinstance(v, str)}
    # Names declared but broken are already reported; don't report every use of them too.
    broken = {r.alias for r in spec.indicators} | {p.name for p in spec.parameters}
    broken -= set(indicators) | set(parameters)
    if spec.kind == "rules":
        names = _names(indicators, parameters)
        for label, text in (("entry", spec.entry), ("exit", spec.exit)):
            used |= _check_expression(label, text, names, indicators, broken, problems)
    elif spec.kind == "code":
        used |= _check_code(spec.code, parameters, problems)
    elif spec.ml is None:
        problems.append("kind 'ml' needs an 'ml' section (features, label_horizon, threshold...)")
    else:
        _check_ml(spec.ml, indicators, broken, problems)
    for name in parameters:
        if name not in used:
            where = (
                f"read it in the code as params[{name!r}]"
                if spec.kind == "code"
                else "reference it in an indicator param or an expression"
            )
            problems.append(f"parameter {name!r} is never used; {where}, or remove it")
    if problems:
        raise StrategyValidationError(problems)


def _identifier_problem(what: str, name: str) -> str | None:
    if not _IDENTIFIER.match(name):
        return (
            f"{what} {name!r} is not a valid name; use letters, digits and '_', "
            "starting with a letter"
        )
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        return f"{what} {name!r} is a reserved word; pick another name"
    return None


def _check_parameters(
    ranges: list[ParamRange], problems: list[str], max_grid_size: int
) -> dict[str, ParamRange]:
    """Problems of the parameter ranges; returns the well-formed ones by name."""
    valid: dict[str, ParamRange] = {}
    seen: set[str] = set()
    for param in ranges:
        problem = _identifier_problem("parameter", param.name)
        if param.name in seen:
            problem = f"parameter {param.name!r} is defined more than once"
        elif not all(math.isfinite(v) for v in (param.low, param.high, param.step)):
            problem = f"parameter {param.name!r} has a non-finite low, high or step"
        elif param.low > param.high:
            problem = f"parameter {param.name!r} has low {param.low:g} above high {param.high:g}"
        elif param.step <= 0:
            problem = f"parameter {param.name!r} needs a positive step, got {param.step:g}"
        seen.add(param.name)
        if problem:
            problems.append(problem)
        else:
            valid[param.name] = param
    if len(valid) == len(ranges) and ranges:
        sizes = [range_size(p) for p in ranges]
        if math.prod(sizes) > max_grid_size:
            detail = " x ".join(f"{p.name} {n}" for p, n in zip(ranges, sizes, strict=True))
            problems.append(
                f"parameter grid has {math.prod(sizes)} combinations ({detail}); the limit is "
                f"{max_grid_size}: use larger steps, narrower ranges or fewer parameters"
            )
    return valid


def _check_indicators(
    spec: StrategySpec, parameters: dict[str, ParamRange], problems: list[str]
) -> dict[str, IndicatorDef]:
    """Problems of the indicator list; returns alias -> definition for the usable ones."""
    if len(spec.indicators) > MAX_INDICATORS:
        problems.append(
            f"{len(spec.indicators)} indicators is too many; use at most {MAX_INDICATORS}"
        )
    found: dict[str, IndicatorDef] = {}
    seen: set[str] = set()
    for ref in spec.indicators:
        problem = _identifier_problem("indicator alias", ref.alias)
        if ref.alias in seen:
            problem = f"indicator alias {ref.alias!r} is used more than once"
        elif ref.alias in parameters:
            problem = f"{ref.alias!r} is both an indicator alias and a parameter name"
        seen.add(ref.alias)
        if problem:
            problems.append(problem)
            continue
        definition = INDICATORS.get(ref.kind)
        if definition is None:
            hint = _did_you_mean(ref.kind, INDICATORS)
            problems.append(
                f"indicator {ref.alias!r} uses unknown kind {ref.kind!r}{hint}; "
                f"known kinds: {', '.join(INDICATORS)}"
            )
            continue
        before = len(problems)
        for key, value in ref.params.items():
            _check_indicator_param(spec, ref, definition, key, value, parameters, problems)
        if len(problems) == before:
            found[ref.alias] = definition
    return found


def _check_indicator_param(
    spec: StrategySpec,
    ref: IndicatorRef,
    definition: IndicatorDef,
    key: str,
    value: float | str,
    parameters: dict[str, ParamRange],
    problems: list[str],
) -> None:
    where = f"indicator {ref.alias!r} ({ref.kind})"
    param = definition.param(key)
    if param is None:
        allowed = ", ".join(p.name for p in definition.params)
        problems.append(f"{where} has no param {key!r}; its params are: {allowed}")
        return
    if not isinstance(value, str):
        problem = param.problem(value)
        if problem:
            problems.append(f"{where}: {problem}")
        return
    if spec.kind == "ml":
        problems.append(
            f"{where} param {key!r} names parameter {value!r}, but ml strategies need fixed "
            "numbers for indicator params"
        )
    elif value not in parameters:
        if value in {p.name for p in spec.parameters}:
            return  # a broken parameter is reported once, by _check_parameters
        known = ", ".join(parameters) or "none defined"
        problems.append(
            f"{where} param {key!r} refers to unknown parameter {value!r}; parameters: {known}"
        )
    else:
        _check_range_fits(where, key, param, parameters[value], problems)


def _check_range_fits(
    where: str, key: str, param: ParamDef, grid: ParamRange, problems: list[str]
) -> None:
    """A parameter feeding an indicator param must stay inside its allowed range."""
    if param.integer and not range_is_integral(grid):
        problems.append(
            f"{where} param {key!r} must be a whole number, but parameter {grid.name!r} "
            f"has low {grid.low:g} and step {grid.step:g}; use whole numbers"
        )
    elif grid.low < param.low or grid.high > param.high:
        problems.append(
            f"{where} param {key!r} allows {param.low:g}..{param.high:g}, but parameter "
            f"{grid.name!r} ranges {grid.low:g}..{grid.high:g}"
        )


def _names(indicators: dict[str, IndicatorDef], parameters: dict[str, ParamRange]) -> set[str]:
    names = set(OHLCV_COLUMNS) | set(indicators) | set(parameters)
    names |= {f"{alias}.{out}" for alias, d in indicators.items() for out in d.outputs}
    return names


def _check_expression(
    label: str,
    text: str,
    names: set[str],
    indicators: dict[str, IndicatorDef],
    broken: set[str],
    problems: list[str],
) -> set[str]:
    """Problems of one condition; returns the names it uses."""
    if not text.strip():
        problems.append(f"{label} condition is empty; write e.g. 'crosses_above(fast, slow)'")
        return set()
    try:
        expression = parse_expression(text)
    except ExpressionError as exc:
        problems.append(f"{label} condition {text!r} is invalid: {exc}")
        return set()
    for name in sorted(expression.names - names):
        alias, _, output = name.partition(".")
        if alias in broken:
            continue
        if output and alias in indicators:
            outs = ", ".join(indicators[alias].outputs)
            problems.append(f"{label} uses {name!r}, but {alias!r} has outputs: {outs}")
        else:
            problems.append(
                f"{label} uses unknown name {name!r}{_did_you_mean(name, names)}; available: "
                f"{', '.join(sorted(names))}"
            )
    return set(expression.names)


def _check_code(code: str | None, parameters: Collection[str], problems: list[str]) -> set[str]:
    """Problems of a code strategy's source; returns the parameters it reads."""
    if not code or not code.strip():
        problems.append(
            "kind 'code' needs 'code': Python source defining def signals(data, params) that "
            "returns (entries, exits)"
        )
        return set(parameters)  # nothing to read them; don't also call each one unused
    try:
        validate_code(code)
    except CodeValidationError as exc:
        problems.extend(f"code {violation}" for violation in exc.violations)
        if any(v.rule == "syntax" for v in exc.violations):
            return set(parameters)
    # A parameter is read as params["name"] (or .get("name")): its name is a string literal.
    literals = {
        node.value
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    return {name for name in parameters if name in literals}


def _check_ml(
    ml: MlSpec, indicators: dict[str, IndicatorDef], broken: set[str], problems: list[str]
) -> None:
    names = _names(indicators, {})
    if not ml.features:
        problems.append("ml.features is empty; list indicator aliases or price columns")
    for feature in ml.features:
        if feature not in names and feature.partition(".")[0] not in broken:
            problems.append(
                f"ml feature {feature!r} is unknown{_did_you_mean(feature, names)}; available: "
                f"{', '.join(sorted(names))}"
            )
    if not 1 <= ml.label_horizon <= 60:
        problems.append(f"ml.label_horizon must be 1..60 bars, got {ml.label_horizon}")
    if not 0.5 <= ml.threshold < 1:
        problems.append(f"ml.threshold must be at least 0.5 and below 1, got {ml.threshold}")
    if not 0 < ml.exit_threshold <= max(ml.threshold, 0.5):
        problems.append(
            f"ml.exit_threshold must be above 0 and at most the threshold, got {ml.exit_threshold}"
        )
    if not 1 <= ml.epochs <= 500:
        problems.append(f"ml.epochs must be 1..500, got {ml.epochs}")


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
