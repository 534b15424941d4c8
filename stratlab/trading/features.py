"""The composer's features: a small fixed set per instrument from the indicator registry.

Values are plain fractions or ratios so an LLM can read them without knowing the price
level: ``ret_1``/``ret_5``/``ret_20`` are close-to-close returns over that many bars,
``rsi_14`` is 0..100, ``sma_ratio_20_50`` is SMA(20) / SMA(50), ``volatility_20`` the
annualised std of daily log returns and ``atr_14_pct`` ATR(14) / close. A value still in
its warm-up (NaN) is left out rather than sent as a number. Every value at a bar uses
bars up to it only, like the registry's indicators.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratlab.market.indicators import compute_indicator
from stratlab.models.trading import Candle, FeatureVector

FEATURE_NAMES = (
    "close",
    "ret_1",
    "ret_5",
    "ret_20",
    "rsi_14",
    "sma_ratio_20_50",
    "volatility_20",
    "atr_14_pct",
)


def compute_features(candles: Sequence[Candle], *, last_only: bool = True) -> list[FeatureVector]:
    """Feature vectors of ``candles`` (any symbols, any order), sorted by symbol then ts:
    the last bar of each symbol, or every bar when ``last_only`` is false. Duplicate
    timestamps of a symbol keep the last candle given."""
    by_symbol: dict[str, dict[object, Candle]] = {}
    for candle in candles:
        by_symbol.setdefault(candle.instrument.symbol, {})[candle.ts] = candle
    out: list[FeatureVector] = []
    for symbol in sorted(by_symbol):
        bars = sorted(by_symbol[symbol].values(), key=lambda c: c.ts)
        columns = _columns(bars)
        rows = range(len(bars) - 1, len(bars)) if last_only else range(len(bars))
        for i in rows:
            values = {
                name: float(column[i])
                for name, column in columns.items()
                if math.isfinite(column[i])
            }
            out.append(
                FeatureVector(
                    ts=bars[i].ts,
                    instrument=bars[i].instrument,
                    values=values,
                    meta={"bars": i + 1, "interval": bars[i].interval},
                )
            )
    return out


def _columns(bars: Sequence[Candle]) -> dict[str, np.ndarray]:
    frame = pd.DataFrame(
        {
            "open": [c.open for c in bars],
            "high": [c.high for c in bars],
            "low": [c.low for c in bars],
            "close": [c.close for c in bars],
            "volume": [c.volume for c in bars],
        },
        dtype=np.float64,
    )
    close = frame["close"].to_numpy()

    def one(kind: str, **params: float) -> np.ndarray:
        return compute_indicator(kind, frame, params)["value"]

    # roc is in percent; the composer gets fractions like the rest of the lab.
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "close": close,
            "ret_1": one("roc", window=1) / 100.0,
            "ret_5": one("roc", window=5) / 100.0,
            "ret_20": one("roc", window=20) / 100.0,
            "rsi_14": one("rsi", window=14),
            "sma_ratio_20_50": one("sma", window=20) / one("sma", window=50),
            "volatility_20": one("volatility", window=20),
            "atr_14_pct": one("atr", window=14) / close,
        }
