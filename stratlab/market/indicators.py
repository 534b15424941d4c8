"""The indicator registry: what a strategy spec may reference by ``kind``.

Every indicator is a pure, vectorised function of an OHLCV frame and a dict of numeric
parameters that returns float64 arrays aligned with the frame, NaN during warm-up. Values
at bar ``t`` use bars ``<= t`` only, so signals built on them never look ahead.

Wilder smoothing (RSI, ATR) is the textbook recursion ``avg_t = avg_{t-1} + (x_t -
avg_{t-1}) / n`` seeded with the simple mean of the first ``n`` values; it is computed
with ``ewm(alpha=1/n, adjust=False)`` started at the seed, which is the same recursion
without a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

Outputs = dict[str, np.ndarray]
ComputeFn = Callable[[pd.DataFrame, Mapping[str, float]], Outputs]


@dataclass(frozen=True)
class ParamDef:
    """One numeric parameter of an indicator with its inclusive allowed range."""

    name: str
    default: float
    low: float
    high: float
    integer: bool = True

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None when it is."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.name} must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"{self.name} must be finite, got {value!r}"
        if self.integer and float(value) != int(value):
            return f"{self.name} must be an integer, got {value!r}"
        if not self.low <= value <= self.high:
            return f"{self.name}={_fmt(value)} is outside {_fmt(self.low)}..{_fmt(self.high)}"
        return None


@dataclass(frozen=True)
class IndicatorDef:
    """A registry entry; ``outputs[0]`` is what a bare alias refers to in expressions."""

    name: str
    description: str
    params: tuple[ParamDef, ...]
    outputs: tuple[str, ...]
    compute: ComputeFn

    def param(self, name: str) -> ParamDef | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def default_output(self) -> str:
        return self.outputs[0]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- computations -------------------------------------------------------------------


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(np.asarray(frame[name], dtype=np.float64))


def _out(series: pd.Series) -> np.ndarray:
    return np.asarray(series, dtype=np.float64)


def _sma_series(values: pd.Series, window: int) -> pd.Series:
    return values.rolling(window, min_periods=window).mean()


def _ema_series(values: pd.Series, window: int) -> pd.Series:
    # Leading NaNs (e.g. the MACD line's warm-up) are skipped by ewm, and min_periods
    # keeps the first window-1 defined values NaN like an SMA seed would.
    return values.ewm(span=window, adjust=False, min_periods=window).mean()


def _wilder(values: pd.Series, window: int, first: int) -> pd.Series:
    """Wilder's smoothing of ``values`` whose first valid element is at ``first``.

    The first output (at ``first + window - 1``) is the simple mean of ``window`` values;
    later ones follow the recursion with alpha = 1/window.
    """
    out = pd.Series(np.nan, index=values.index, dtype=np.float64)
    seed_at = first + window - 1
    if seed_at >= len(values):
        return out
    seeded = values.iloc[seed_at:].copy()
    seeded.iloc[0] = values.iloc[first : seed_at + 1].mean()
    out.iloc[seed_at:] = seeded.ewm(alpha=1.0 / window, adjust=False).mean().to_numpy()
    return out


def _sma(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    return {"value": _out(_sma_series(_col(frame, "close"), int(p["window"])))}


def _ema(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    return {"value": _out(_ema_series(_col(frame, "close"), int(p["window"])))}


def _rsi(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    window = int(p["window"])
    delta = _col(frame, "close").diff()
    gain = _wilder(delta.clip(lower=0.0), window, first=1)
    loss = _wilder((-delta).clip(lower=0.0), window, first=1)
    total = gain + loss
    # A flat stretch (no gains, no losses) is neutral rather than undefined.
    rsi = (100.0 * gain / total.where(total > 0)).where(total > 0, 50.0)
    return {"value": _out(rsi.where(gain.notna()))}


def _macd(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    close = _col(frame, "close")
    line = _ema_series(close, int(p["fast"])) - _ema_series(close, int(p["slow"]))
    signal = _ema_series(line, int(p["signal"]))
    return {"macd": _out(line), "signal": _out(signal), "hist": _out(line - signal)}


def _bbands(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    close = _col(frame, "close")
    window = int(p["window"])
    middle = _sma_series(close, window)
    # Bollinger's definition uses the population standard deviation.
    std = close.rolling(window, min_periods=window).std(ddof=0)
    upper = middle + p["k"] * std
    lower = middle - p["k"] * std
    width = (upper - lower).where(lambda w: w > 0)
    pctb = (close - lower) / width
    return {"upper": _out(upper), "middle": _out(middle), "lower": _out(lower), "pctb": _out(pctb)}


def _true_range(frame: pd.DataFrame) -> pd.Series:
    high, low, close = _col(frame, "high"), _col(frame, "low"), _col(frame, "close")
    prev = close.shift(1)
    ranges = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1)
    # Bar 0 has no previous close, so its true range is high - low.
    return ranges.max(axis=1, skipna=True)


def _atr(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    return {"value": _out(_wilder(_true_range(frame), int(p["window"]), first=0))}


def _roc(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    close = _col(frame, "close")
    return {"value": _out(100.0 * (close / close.shift(int(p["window"])) - 1.0))}


def _stoch(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    k_window, d_window = int(p["k_window"]), int(p["d_window"])
    high = _col(frame, "high").rolling(k_window, min_periods=k_window).max()
    low = _col(frame, "low").rolling(k_window, min_periods=k_window).min()
    span = (high - low).where(lambda s: s > 0)
    k = 100.0 * (_col(frame, "close") - low) / span
    return {"k": _out(k), "d": _out(_sma_series(k, d_window))}


def _zscore(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    close = _col(frame, "close")
    window = int(p["window"])
    std = close.rolling(window, min_periods=window).std(ddof=0)
    return {"value": _out((close - _sma_series(close, window)) / std.where(std > 0))}


def _donchian(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    window = int(p["window"])
    upper = _col(frame, "high").rolling(window, min_periods=window).max()
    lower = _col(frame, "low").rolling(window, min_periods=window).min()
    return {"upper": _out(upper), "middle": _out((upper + lower) / 2.0), "lower": _out(lower)}


def _volatility(frame: pd.DataFrame, p: Mapping[str, float]) -> Outputs:
    window = int(p["window"])
    returns = np.log(_col(frame, "close")).diff()
    vol = returns.rolling(window, min_periods=window).std() * math.sqrt(252.0)
    return {"value": _out(vol)}


# --- registry -----------------------------------------------------------------------


def _window(default: int, low: int = 2, high: int = 500, name: str = "window") -> ParamDef:
    return ParamDef(name, default, low, high, integer=True)


INDICATORS: dict[str, IndicatorDef] = {
    d.name: d
    for d in (
        IndicatorDef("sma", "simple moving average of close", (_window(20),), ("value",), _sma),
        IndicatorDef(
            "ema", "exponential moving average of close", (_window(20),), ("value",), _ema
        ),
        IndicatorDef(
            "rsi",
            "relative strength index of close, 0..100, Wilder smoothing",
            (_window(14, high=200),),
            ("value",),
            _rsi,
        ),
        IndicatorDef(
            "macd",
            "EMA(fast) - EMA(slow) of close; signal = EMA(signal) of it; hist = macd - signal",
            (
                _window(12, high=200, name="fast"),
                _window(26, 3, 400, name="slow"),
                _window(9, high=200, name="signal"),
            ),
            ("macd", "signal", "hist"),
            _macd,
        ),
        IndicatorDef(
            "bbands",
            "Bollinger bands: SMA(window) +- k population std of close; pctb = position in band",
            (_window(20, high=400), ParamDef("k", 2.0, 0.5, 5.0, integer=False)),
            ("upper", "middle", "lower", "pctb"),
            _bbands,
        ),
        IndicatorDef(
            "atr",
            "average true range, Wilder smoothing",
            (_window(14, high=200),),
            ("value",),
            _atr,
        ),
        IndicatorDef(
            "roc",
            "rate of change of close over window bars, in percent",
            (_window(10, 1, 500),),
            ("value",),
            _roc,
        ),
        IndicatorDef(
            "stoch",
            "stochastic oscillator 0..100: k = close within k_window high-low range; d = SMA(k)",
            (_window(14, high=200, name="k_window"), _window(3, 1, 50, name="d_window")),
            ("k", "d"),
            _stoch,
        ),
        IndicatorDef(
            "zscore",
            "(close - SMA(window)) / population std(window) of close",
            (_window(20),),
            ("value",),
            _zscore,
        ),
        IndicatorDef(
            "donchian",
            "highest high / lowest low over window bars incl. the current bar",
            (_window(20),),
            ("upper", "middle", "lower"),
            _donchian,
        ),
        IndicatorDef(
            "volatility",
            "annualised std of daily log returns of close over window bars",
            (_window(20),),
            ("value",),
            _volatility,
        ),
    )
}


def get_indicator(kind: str) -> IndicatorDef:
    """The registry entry of ``kind``; ValueError listing the known kinds otherwise."""
    try:
        return INDICATORS[kind]
    except KeyError:
        known = ", ".join(INDICATORS)
        raise ValueError(f"unknown indicator kind {kind!r}; known kinds: {known}") from None


def resolve_params(kind: str, params: Mapping[str, float]) -> dict[str, float]:
    """Complete ``params`` with defaults and check them; ValueError on any problem."""
    definition = get_indicator(kind)
    unknown = sorted(set(params) - {p.name for p in definition.params})
    if unknown:
        allowed = ", ".join(p.name for p in definition.params)
        raise ValueError(f"{kind} has no parameter {unknown[0]!r}; parameters: {allowed}")
    resolved: dict[str, float] = {}
    for param in definition.params:
        value = params.get(param.name, param.default)
        problem = param.problem(value)
        if problem:
            raise ValueError(f"{kind}: {problem}")
        resolved[param.name] = float(value)
    return resolved


def compute_indicator(
    kind: str, frame: pd.DataFrame, params: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Compute indicator ``kind`` over ``frame``: one float64 array per output."""
    definition = get_indicator(kind)
    resolved = resolve_params(kind, params)
    outputs = definition.compute(frame, resolved)
    if tuple(outputs) != definition.outputs:
        raise AssertionError(f"{kind} returned {tuple(outputs)}, declared {definition.outputs}")
    return outputs


def describe_indicators() -> str:
    """A compact catalogue of the registry, one indicator per line, for the designer."""
    lines = []
    for d in INDICATORS.values():
        params = ", ".join(
            f"{p.name}={_fmt(p.default)} [{_fmt(p.low)}..{_fmt(p.high)}"
            f"{'' if p.integer else ', float'}]"
            for p in d.params
        )
        outputs = "" if d.outputs == ("value",) else f" -> {', '.join(d.outputs)}"
        lines.append(f"- {d.name}({params}){outputs}: {d.description}")
    lines.append(
        "An alias alone means the first output; name another as alias.output (e.g. m.signal)."
    )
    return "\n".join(lines)
