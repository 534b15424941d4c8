"""Seeded synthetic daily bars for unit tests: never used as evidence about real markets.

The close is a geometric random walk whose drift and volatility switch between trend-up,
trend-down and sideways regimes of random length, so trend and mean-reversion rules both
have something to find. The same arguments always give the same frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (drift multiplier, volatility multiplier) per regime, cycled in this order.
_REGIMES = ((3.0, 1.0), (-3.0, 1.3), (0.0, 0.7))


def synthetic_ohlcv(
    *,
    bars: int = 1500,
    seed: int = 0,
    start: str = "2000-01-03",
    drift: float = 0.0003,
    volatility: float = 0.012,
    regimes: bool = True,
) -> pd.DataFrame:
    """A valid OHLCV frame (same shape as ``normalise_ohlcv`` output) on business days."""
    if bars < 2:
        raise ValueError(f"bars must be at least 2, got {bars}")
    if volatility <= 0:
        raise ValueError(f"volatility must be positive, got {volatility}")
    rng = np.random.default_rng(seed)
    mu, sigma = _regime_paths(rng, bars, drift, volatility, regimes)
    log_returns = mu - 0.5 * sigma**2 + sigma * rng.standard_normal(bars)
    close = 100.0 * np.exp(np.cumsum(log_returns))
    return ohlcv_around(rng, close, sigma, start)


def ohlcv_around(
    rng: np.random.Generator, close: np.ndarray, sigma: float | np.ndarray, start: str
) -> pd.DataFrame:
    """A valid OHLCV frame around a close path: opens gap a little from the previous
    close; highs and lows wrap the open-close body; business-day timestamps."""
    bars = close.size
    prev_close = np.concatenate(([100.0], close[:-1]))
    open_ = prev_close * np.exp(0.25 * sigma * rng.standard_normal(bars))
    body_high, body_low = np.maximum(open_, close), np.minimum(open_, close)
    high = body_high * np.exp(np.abs(0.5 * sigma * rng.standard_normal(bars)))
    low = body_low * np.exp(-np.abs(0.5 * sigma * rng.standard_normal(bars)))
    volume = np.round(rng.lognormal(mean=13.0, sigma=0.4, size=bars))
    index = pd.bdate_range(start=start, periods=bars, name="ts").as_unit("ns")
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index,
    )
    return frame.astype(np.float64)


def _regime_paths(
    rng: np.random.Generator, bars: int, drift: float, volatility: float, regimes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar drift and volatility: constant, or piecewise by regimes of 60-250 bars."""
    if not regimes:
        return np.full(bars, drift), np.full(bars, volatility)
    lengths = rng.integers(60, 251, size=bars // 60 + 1)
    labels = np.repeat(np.arange(len(lengths)) % len(_REGIMES), lengths)[:bars]
    table = np.asarray(_REGIMES)
    return drift * table[labels, 0], volatility * table[labels, 1]
