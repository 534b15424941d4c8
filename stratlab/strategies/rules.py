"""Signals of ``rules`` strategies: entry/exit expressions over indicators, for a grid.

``rules_signals`` evaluates a spec for every parameter combination of a grid at once.
Indicators are computed once per distinct resolved parameter set (a 1,000-combination
two-SMA grid needs only as many SMAs as there are distinct windows) and each expression
is parsed once. Signals at bar ``t`` use bars ``<= t`` only; the backtest engine fills at
the next bar's open.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stratlab.market.indicators import INDICATORS, compute_indicator
from stratlab.market.ohlcv import OHLCV_COLUMNS
from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec
from stratlab.strategies.expr import Value, parse_expression

Params = Mapping[str, float]
_DECIMALS = 10  # grid values are rounded so 0.1 + 0.2 reads back as 0.3


def range_size(param: ParamRange) -> int:
    """How many values ``low, low+step, ..., <= high`` the range holds (0 if invalid)."""
    if not (param.step > 0 and param.high >= param.low):
        return 0
    # The epsilon keeps (0.3 - 0.1) / 0.1 = 1.999... from losing the last value.
    return math.floor((param.high - param.low) / param.step + 1e-9) + 1


def range_is_integral(param: ParamRange) -> bool:
    return all(float(v).is_integer() for v in (param.low, param.step))


def range_values(param: ParamRange) -> list[float]:
    """The grid values of one range; whole numbers when low and step are whole."""
    values = np.round(param.low + param.step * np.arange(range_size(param)), _DECIMALS)
    if range_is_integral(param):
        return [int(v) for v in values]
    return [float(v) for v in values]


def parameter_grid(spec: StrategySpec, *, limit: int = 1_000_000) -> list[dict[str, float]]:
    """Cartesian product of the spec's parameter ranges, in declaration order.

    ``limit`` only guards memory for specs that skipped validation, whose own grid cap
    (``validate_spec(max_grid_size=...)``) is much lower.
    """
    if not spec.parameters:
        return [{}]
    size = math.prod(range_size(p) for p in spec.parameters)
    if size > limit:
        raise ValueError(f"parameter grid has {size} combinations; the limit is {limit}")
    names = [p.name for p in spec.parameters]
    axes = [range_values(p) for p in spec.parameters]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


def resolve_indicator_params(ref: IndicatorRef, params: Params) -> dict[str, float]:
    """An indicator's numeric params for one combination (strings name parameters)."""
    resolved: dict[str, float] = {}
    for key, value in ref.params.items():
        if isinstance(value, str):
            if value not in params:
                raise ValueError(
                    f"indicator {ref.alias!r} param {key!r} refers to {value!r}, "
                    "which is not among the parameters"
                )
            resolved[key] = float(params[value])
        else:
            resolved[key] = float(value)
    return resolved


class _IndicatorCache:
    """Indicator outputs keyed by (kind, resolved params), shared across a grid."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.outputs: dict[tuple[str, tuple[tuple[str, float], ...]], dict[str, np.ndarray]] = {}

    def get(self, ref: IndicatorRef, params: Params) -> dict[str, np.ndarray]:
        resolved = resolve_indicator_params(ref, params)
        key = (ref.kind, tuple(sorted(resolved.items())))
        if key not in self.outputs:
            self.outputs[key] = compute_indicator(ref.kind, self.frame, resolved)
        return self.outputs[key]


def _price_env(frame: pd.DataFrame) -> dict[str, Value]:
    return {name: np.asarray(frame[name], dtype=np.float64) for name in OHLCV_COLUMNS}


def _env(
    spec: StrategySpec, prices: dict[str, Value], cache: _IndicatorCache, params: Params
) -> dict[str, Value]:
    env = dict(prices)
    for ref in spec.indicators:
        outputs = cache.get(ref, params)
        env[ref.alias] = outputs[INDICATORS[ref.kind].default_output]
        for output, values in outputs.items():
            env[f"{ref.alias}.{output}"] = values
    env.update({name: float(value) for name, value in params.items()})
    return env


def indicator_env(spec: StrategySpec, frame: pd.DataFrame, params: Params) -> dict[str, Value]:
    """Names an expression may use for one combination: prices, indicators, parameters."""
    return _env(spec, _price_env(frame), _IndicatorCache(frame), params)


def rules_signals(
    spec: StrategySpec, frame: pd.DataFrame, grid: Sequence[Params]
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit signals, each a bool array of shape ``(len(frame), len(grid))``."""
    if spec.kind != "rules":
        raise ValueError(f"rules_signals needs a rules strategy, got kind {spec.kind!r}")
    entry_expr, exit_expr = parse_expression(spec.entry), parse_expression(spec.exit)
    n_bars = len(frame)
    entries = np.zeros((n_bars, len(grid)), dtype=bool)
    exits = np.zeros((n_bars, len(grid)), dtype=bool)
    prices = _price_env(frame)
    cache = _IndicatorCache(frame)
    for column, params in enumerate(grid):
        env = _env(spec, prices, cache, params)
        entries[:, column] = entry_expr.evaluate(env, n_bars=n_bars)
        exits[:, column] = exit_expr.evaluate(env, n_bars=n_bars)
    return entries, exits
