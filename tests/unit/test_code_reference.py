"""Honest reference strategies: the sandbox returns exactly what the code returns in-process.

Each strategy is ``signals(data, params)`` code as a designer would write it, run for a
small parameter grid once in the bwrap sandbox (validator on) and once in this process;
the signals must be identical bit for bit, and so must the backtest metrics.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratlab.backtest.engine import Costs
from stratlab.backtest.runner import backtest_signals
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.sandbox._isolation import find_bwrap
from stratlab.sandbox.executor import SandboxLimits, SandboxRun, run_signals

pytestmark = pytest.mark.skipif(
    find_bwrap() is None,
    reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap",
)

HEADER = "import math\n\nimport numpy as np\nimport pandas as pd\n\n\ndef signals(data, params):\n"

# name -> (body of signals, parameter sets)
REFERENCE: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "sma_cross": ("""
    fast = data["close"].rolling(int(params["fast"])).mean()
    slow = data["close"].rolling(int(params["slow"])).mean()
    above = fast > slow
    return above & ~above.shift(1, fill_value=False), ~above
""", [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 50}]),
    "ema_cross": ("""
    close = data["close"]
    fast = close.ewm(span=int(params["fast"]), adjust=False).mean()
    slow = close.ewm(span=int(params["slow"]), adjust=False).mean()
    return fast > slow, fast < slow
""", [{"fast": 8, "slow": 21}, {"fast": 12, "slow": 26}]),
    "rsi_reversion": ("""
    change = data["close"].diff()
    window = int(params["window"])
    gain = change.clip(lower=0).ewm(alpha=1 / window, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / window, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / (loss + 1e-12))
    return rsi < params["oversold"], rsi > 60
""", [{"window": 14, "oversold": 30.0}, {"window": 7, "oversold": 25.0}]),
    "bollinger": ("""
    close = data["close"]
    window = int(params["window"])
    mid = close.rolling(window).mean()
    band = params["k"] * close.rolling(window).std()
    return close < mid - band, close > mid
""", [{"window": 20, "k": 2.0}, {"window": 10, "k": 1.5}]),
    "momentum": ("""
    roc = data["close"].pct_change(int(params["lookback"]))
    return (roc > params["threshold"]).to_numpy(), (roc < 0).to_numpy()
""", [{"lookback": 20, "threshold": 0.02}, {"lookback": 60, "threshold": 0.0}]),
    "donchian_breakout": ("""
    upper = data["high"].rolling(int(params["entry"])).max().shift(1)
    lower = data["low"].rolling(int(params["exit"])).min().shift(1)
    return data["close"] > upper, data["close"] < lower
""", [{"entry": 20, "exit": 10}, {"entry": 55, "exit": 20}]),
    "macd": ("""
    close = data["close"]
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    signal = macd.ewm(span=int(params["signal"]), adjust=False).mean()
    up = macd > signal
    return up & ~up.shift(1, fill_value=False), macd < signal
""", [{"signal": 9}, {"signal": 5}]),
    "zscore": ("""
    close = data["close"]
    window = int(params["window"])
    z = (close - close.rolling(window).mean()) / close.rolling(window).std(ddof=0)
    return z < -params["entry"], z > 0
""", [{"window": 20, "entry": 1.5}, {"window": 40, "entry": 2.0}]),
    "atr_breakout": ("""
    high, low, close = data["high"], data["low"], data["close"]
    prev = close.shift(1)
    ranges = [high - low, (high - prev).abs(), (low - prev).abs()]
    true_range = pd.concat(ranges, axis=1).max(axis=1)
    atr = true_range.rolling(int(params["window"])).mean()
    return close > prev + params["k"] * atr, close < prev - atr
""", [{"window": 14, "k": 0.5}, {"window": 20, "k": 1.0}]),
    "stochastic": ("""
    window = int(params["window"])
    low = data["low"].rolling(window).min()
    high = data["high"].rolling(window).max()
    k = 100 * (data["close"] - low) / (high - low)
    d = k.rolling(3).mean()
    return (k > d) & (k < params["level"]), k > 80
""", [{"window": 14, "level": 20.0}, {"window": 9, "level": 30.0}]),
    "williams_r": ("""
    window = int(params["window"])
    high = data["high"].rolling(window).max()
    low = data["low"].rolling(window).min()
    r = -100 * (high - data["close"]) / (high - low)
    return r < -params["level"], r > -20
""", [{"window": 14, "level": 80.0}, {"window": 21, "level": 90.0}]),
    "volume_spike": ("""
    volume = data["volume"]
    spike = volume > params["ratio"] * volume.rolling(20).mean()
    up_day = data["close"] > data["open"]
    return (spike & up_day).to_numpy(), (data["close"] < data["open"]).to_numpy()
""", [{"ratio": 1.5}, {"ratio": 2.0}]),
    "dual_momentum": ("""
    close = data["close"]
    long_ret = close.pct_change(int(params["long"]))
    short_ret = close.pct_change(int(params["short"]))
    return (long_ret > 0) & (short_ret > 0), long_ret < 0
""", [{"long": 120, "short": 20}, {"long": 250, "short": 60}]),
    "keltner": ("""
    close = data["close"]
    window = int(params["window"])
    mid = close.ewm(span=window, adjust=False).mean()
    width = (data["high"] - data["low"]).rolling(window).mean()
    return close > mid + params["mult"] * width, close < mid
""", [{"window": 20, "mult": 1.5}, {"window": 10, "mult": 1.0}]),
    "triple_ma": ("""
    close = data["close"]
    a, b, c = (close.rolling(int(params[n])).mean() for n in ("short", "mid", "long"))
    aligned = (a > b) & (b > c)
    return aligned, a < b
""", [{"short": 5, "mid": 20, "long": 60}, {"short": 10, "mid": 30, "long": 90}]),
    "trailing_stop": ("""
    close = data["close"]
    roc = close.pct_change(int(params["lookback"]))
    peak = close.rolling(int(params["lookback"])).max()
    return roc > 0.03, close < peak * (1 - params["stop"])
""", [{"lookback": 10, "stop": 0.05}, {"lookback": 20, "stop": 0.08}]),
    "n_day_low": ("""
    close = data["close"]
    low = close.rolling(int(params["entry"])).min()
    high = close.rolling(int(params["exit"])).max()
    return close <= low, close >= high
""", [{"entry": 10, "exit": 5}, {"entry": 20, "exit": 10}]),
    "gap_up": ("""
    gap = data["open"] > data["high"].shift(1) * (1 + params["gap"])
    return gap, data["close"] < data["open"]
""", [{"gap": 0.0}, {"gap": 0.002}]),
    "cci": ("""
    typical = (data["high"] + data["low"] + data["close"]) / 3
    window = int(params["window"])
    mean = typical.rolling(window).mean()
    deviation = (typical - mean).abs().rolling(window).mean()
    cci = (typical - mean) / (0.015 * deviation)
    return cci < -params["level"], cci > 0
""", [{"window": 20, "level": 100.0}, {"window": 14, "level": 150.0}]),
    "inside_bar": ("""
    inside = (data["high"] < data["high"].shift(1)) & (data["low"] > data["low"].shift(1))
    breakout = inside.shift(1, fill_value=False) & (data["close"] > data["high"].shift(1))
    return breakout, data["close"] < data["low"].shift(int(params["hold"]))
""", [{"hold": 3}, {"hold": 5}]),
    "regression_slope": ("""
    close = np.log(data["close"])
    window = int(params["window"])
    t = pd.Series(np.arange(len(close), dtype=float), index=close.index)
    slope = close.rolling(window).cov(t) / t.rolling(window).var()
    return (slope > params["min_slope"]).to_numpy(), (slope < 0).to_numpy()
""", [{"window": 20, "min_slope": 0.001}, {"window": 50, "min_slope": 0.0005}]),
    "vol_target_trend": ("""
    close = data["close"]
    returns = np.log(close / close.shift(1))
    vol = returns.rolling(20).std() * math.sqrt(252)
    trend = close > close.rolling(int(params["window"])).mean()
    calm = vol < params["max_vol"]
    return (trend & calm).to_numpy(dtype=bool), (~trend).to_numpy(dtype=bool)
""", [{"window": 50, "max_vol": 0.25}, {"window": 100, "max_vol": 0.35}]),
}  # fmt: skip

LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=30)
COSTS = Costs.from_bps(5, 5)


def in_process(source: str, frame: pd.DataFrame, param_sets: list[dict[str, Any]]) -> tuple:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<reference>", "exec"), namespace)
    columns = [namespace["signals"](frame.copy(), dict(p)) for p in param_sets]
    for entries, exits in columns:
        assert np.asarray(entries).dtype == bool and np.asarray(exits).dtype == bool
    entries = np.column_stack([np.asarray(e, dtype=bool) for e, _ in columns])
    exits = np.column_stack([np.asarray(x, dtype=bool) for _, x in columns])
    return entries, exits


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=800, seed=11)


@pytest.fixture(scope="module")
async def sandboxed(frame: pd.DataFrame) -> dict[str, SandboxRun]:
    semaphore = asyncio.Semaphore(2)

    async def one(body: str, param_sets: list[dict[str, Any]]) -> SandboxRun:
        async with semaphore:
            return await run_signals(HEADER + body, frame, param_sets, limits=LIMITS)

    runs = await asyncio.gather(*(one(body, sets) for body, sets in REFERENCE.values()))
    return dict(zip(REFERENCE, runs, strict=True))


def test_there_are_at_least_twenty() -> None:
    assert len(REFERENCE) >= 20


@pytest.mark.parametrize("name", list(REFERENCE))
def test_signals_and_metrics_match_in_process(
    name: str, frame: pd.DataFrame, sandboxed: dict[str, SandboxRun]
) -> None:
    body, param_sets = REFERENCE[name]
    run = sandboxed[name]
    assert run.ok, run.error
    assert run.isolation == "bwrap" and run.entries is not None and run.exits is not None
    entries, exits = in_process(HEADER + body, frame, param_sets)
    assert run.entries.shape == (len(frame), len(param_sets))
    np.testing.assert_array_equal(run.entries, entries)
    np.testing.assert_array_equal(run.exits, exits)
    assert entries.any(), "a reference strategy that never enters tests nothing"
    for column in range(len(param_sets)):
        inside = backtest_signals(
            frame, run.entries[:, column], run.exits[:, column], window=(0, len(frame)), costs=COSTS
        )
        outside = backtest_signals(
            frame, entries[:, column], exits[:, column], window=(0, len(frame)), costs=COSTS
        )
        assert inside.metrics == outside.metrics
