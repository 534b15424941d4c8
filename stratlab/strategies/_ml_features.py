"""Features and labels of the ``ml`` strategy kind.

A feature name from ``MlSpec.features`` is resolved through the rules engine's
``indicator_env``: a price column (``close``), an indicator alias (its default output) or
``alias.output``. Raw values are then made scale-free, because a classifier trained on
1999 prices must still mean something on 2018 prices:

* price levels (open/high/low/close and level indicators such as sma, ema, the bbands
  upper/middle/lower bands) become ``value / close - 1``, the distance from the close;
* price differences (atr, macd and its signal/histogram) become ``value / close``;
* volume becomes ``volume / (trailing 20-bar mean volume) - 1``, using past bars only;
* everything else (rsi, roc, zscore, bbands.pctb, ...) is already scale-free and kept.

Warm-up bars stay NaN; callers mask rows with a non-finite feature and never fill them,
since any fill (back-fill above all) would leak later values into earlier rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from stratlab.market.ohlcv import PRICE_COLUMNS
from stratlab.models.research import MlSpec, StrategySpec

VOLUME_WINDOW = 20
"""Trailing bars of the mean that volume is compared with."""

Scale = Literal["level", "spread", "volume", "free"]

# How each registry indicator is made scale-free: one scale for every output, or one per
# output. Kept here rather than in the registry, which stays a pure computation table; a
# unit test fails when a registry kind is missing, so a new indicator gets classified.
INDICATOR_SCALES: dict[str, Scale | dict[str, Scale]] = {
    "sma": "level",
    "ema": "level",
    "donchian": "level",
    "bbands": {"upper": "level", "middle": "level", "lower": "level", "pctb": "free"},
    "atr": "spread",
    "macd": "spread",
    "rsi": "free",
    "roc": "free",
    "stoch": "free",
    "zscore": "free",
    "volatility": "free",
}


def labels(frame: pd.DataFrame, horizon: int) -> np.ndarray:
    """1.0 where ``close[t + horizon] > close[t]``, else 0.0; NaN for the last ``horizon``
    bars (their future is not in ``frame``) and wherever either close is not finite."""
    if horizon < 1:
        raise ValueError(f"label horizon must be at least 1 bar, got {horizon}")
    close = np.asarray(frame["close"], dtype=float)
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] <= horizon:
        return out
    now, later = close[:-horizon], close[horizon:]
    known = np.isfinite(now) & np.isfinite(later)
    out[:-horizon] = np.where(known, (later > now).astype(float), np.nan)
    return out


def feature_matrix(spec: StrategySpec, frame: pd.DataFrame) -> np.ndarray:
    """The scale-free features of ``spec.ml.features`` over ``frame``: shape
    ``(len(frame), len(features))``, NaN on warm-up rows (see the module docstring)."""
    ml = _ml_part(spec)
    # Imported here: the rules engine imports indicators, which the ml kind needs only
    # when features are computed (keeps `import stratlab.strategies.ml` cheap).
    from stratlab.strategies.rules import indicator_env

    env = indicator_env(spec, frame, {})
    close = np.asarray(frame["close"], dtype=float)
    columns = [
        _scale_free(name, _lookup(env, name, len(frame)), spec=spec, close=close)
        for name in ml.features
    ]
    if not columns:
        return np.empty((len(frame), 0))
    return np.column_stack(columns)


def finite_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows of a feature matrix whose every feature is finite (warm-up rows are not)."""
    return np.isfinite(matrix).all(axis=1)


def _ml_part(spec: StrategySpec) -> MlSpec:
    if spec.kind != "ml" or spec.ml is None:
        raise ValueError(f"strategy {spec.name!r} is not an ml strategy (kind={spec.kind!r})")
    if not spec.ml.features:
        raise ValueError(f"ml strategy {spec.name!r} has no features")
    return spec.ml


def _lookup(env: Mapping[str, np.ndarray | float], name: str, bars: int) -> np.ndarray:
    if name not in env:
        known = ", ".join(sorted(env))
        raise ValueError(f"unknown ml feature {name!r}; known names: {known}")
    value = env[name]
    if np.ndim(value) == 0:
        # A constant carries no information per bar, but it is still a valid column.
        return np.full(bars, float(value))  # type: ignore[arg-type]
    array = np.asarray(value, dtype=float)
    if array.shape != (bars,):
        raise ValueError(f"ml feature {name!r} has shape {array.shape}, expected ({bars},)")
    return array


def _scale_free(
    name: str, values: np.ndarray, *, spec: StrategySpec, close: np.ndarray
) -> np.ndarray:
    scale = feature_scale(name, spec=spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "level":
            return values / close - 1.0
        if scale == "spread":
            return values / close
        if scale == "volume":
            mean = pd.Series(values).rolling(VOLUME_WINDOW).mean().to_numpy()
            return values / mean - 1.0
    return values


def feature_scale(name: str, *, spec: StrategySpec) -> Scale:
    """How feature ``name`` of ``spec`` is made scale-free (see the module docstring)."""
    if name in PRICE_COLUMNS:
        return "level"
    if name == "volume":
        return "volume"
    alias, _, output = name.partition(".")
    kind = next((ref.kind for ref in spec.indicators if ref.alias == alias), None)
    scales = INDICATOR_SCALES.get(kind or "", "free")
    if isinstance(scales, str):
        return scales
    if not output:
        from stratlab.market.indicators import get_indicator

        output = get_indicator(kind or "").default_output
    return scales.get(output, "free")
