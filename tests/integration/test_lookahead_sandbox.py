"""The look-ahead probe of code strategies, run inside the real (bwrap) sandbox.

Every strategy below runs once, concurrently, with a probe at ``cut_points`` of the
frame. Each biased one reads the future in a different way and must be rejected with the
bar that changed; each honest one (rolling, ewm, expanding, cumulative, shifted by +n,
loops over past bars) must never be. The sandbox's answer must equal the in-process
``probe_signals`` over the same code, so both follow one policy.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import LookaheadProbe
from stratlab.sandbox._isolation import find_bwrap
from stratlab.sandbox.executor import SandboxLimits, SandboxRun, run_signals
from stratlab.strategies.lookahead import cut_points, probe_signals

pytestmark = [
    pytest.mark.skipif(
        find_bwrap() is None,
        reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap",
    ),
    pytest.mark.slow,
]

# Roomy: the machine is shared, and the process start alone can take seconds under load.
LIMITS = SandboxLimits(cpu_seconds=60, wall_seconds=120)
CONCURRENCY = 2
HEADER = "import math\n\nimport numpy as np\nimport pandas as pd\n\n\ndef signals(data, params):\n"
CROSS = (
    "    c = data['close']\n"
    "    up = c.rolling(10).mean() > c.rolling(30).mean()\n"
    "    cross = up & ~up.shift(1, fill_value=False)\n"
)

# name -> body of signals(data, params); each returns (entries, exits)
BIASED: dict[str, str] = {
    "close.shift(-1)": "    c = data['close']\n    return c.shift(-1) > c, c.shift(-1) < c\n",
    "sparse crossover confirmed by close.shift(-1)": CROSS
    + "    return cross & (c.shift(-1) > c), ~up\n",
    "volume.shift(-5)": (
        "    v = data['volume']\n    return v.shift(-5) > v, v.shift(-5) < v * 0.8\n"
    ),
    "sparse exit on high.shift(-5)": CROSS
    + "    return cross, data['high'].shift(-5) > c * 1.04\n",
    "centred rolling mean": (
        "    c = data['close']\n    m = c.rolling(20, center=True).mean()\n"
        "    return c < m, c > m\n"
    ),
    "whole-series z-score": (
        "    c = data['close']\n    z = (c - c.mean()) / c.std()\n    return z < -0.5, z > 0.5\n"
    ),
    "bfill of a rolling warm-up": (
        "    c = data['close']\n    m = c.rolling(20).mean().bfill()\n    return c > m, c < m\n"
    ),
    "rank(pct=True) of the whole series": (
        "    r = data['close'].rank(pct=True)\n    return r < 0.3, r > 0.7\n"
    ),
    "close.max() normalisation": (
        "    c = data['close']\n    n = c / c.max()\n    return n > 0.8, n < 0.7\n"
    ),
    "iloc[-1] reference to the last close": (
        "    c = data['close']\n    return c < c.iloc[-1], c > c.iloc[-1] * 1.1\n"
    ),
    "min-max scaling": (
        "    c = data['close']\n    s = (c - c.min()) / (c.max() - c.min())\n"
        "    return s < 0.3, s > 0.6\n"
    ),
    "whole-series median": "    c = data['close']\n    return c < c.median(), c > c.median()\n",
    "centred np.convolve": (
        "    c = data['close'].to_numpy()\n    m = np.convolve(c, np.ones(9) / 9, mode='same')\n"
        "    return pd.Series(c > m, index=data.index), pd.Series(c < m, index=data.index)\n"
    ),
    "future return via pct_change(-3)": (
        "    r = data['close'].pct_change(-3)\n    return r < -0.01, r > 0.01\n"
    ),
    "future high via rolling max shift(-10)": (
        "    c = data['close']\n    ahead = c.rolling(10).max().shift(-10)\n"
        "    return ahead > c * 1.03, ahead < c\n"
    ),
    "interpolate both directions": (
        "    c = data['close']\n    m = c.rolling(30).mean().interpolate(limit_direction='both')\n"
        "    return c > m, c < m\n"
    ),
}

HONEST: dict[str, str] = {
    "SMA crossover": CROSS + "    return cross, ~up\n",
    "EMA crossover (adjust=False)": (
        "    c = data['close']\n"
        "    f, s = c.ewm(span=12, adjust=False).mean(), c.ewm(span=26, adjust=False).mean()\n"
        "    return (f > s) & (f.shift(1) <= s.shift(1)), f < s\n"
    ),
    "EMA crossover (adjust=True)": (
        "    c = data['close']\n    f, s = c.ewm(span=8).mean(), c.ewm(span=40).mean()\n"
        "    return f > s, f < s\n"
    ),
    "RSI via ewm (Wilder)": (
        "    d = data['close'].diff()\n"
        "    gain = d.clip(lower=0).ewm(alpha=1 / 14, min_periods=14, adjust=False).mean()\n"
        "    loss = (-d.clip(upper=0)).ewm(alpha=1 / 14, min_periods=14, adjust=False).mean()\n"
        "    rsi = 100 - 100 / (1 + gain / loss)\n"
        "    return rsi < 35, rsi > 65\n"
    ),
    "Bollinger bands": (
        "    c = data['close']\n    m, s = c.rolling(20).mean(), c.rolling(20).std()\n"
        "    return c < m - 1.5 * s, c > m\n"
    ),
    "breakout over the previous 20-bar high": (
        "    c = data['close']\n"
        "    return c > data['high'].rolling(20).max().shift(1), "
        "c < data['low'].rolling(10).min().shift(1)\n"
    ),
    "momentum via pct_change": (
        "    r = data['close'].pct_change(20)\n    return r > 0.03, r < 0\n"
    ),
    "MACD signal cross": (
        "    c = data['close']\n"
        "    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()\n"
        "    sig = macd.ewm(span=9, adjust=False).mean()\n"
        "    above = macd > sig\n"
        "    return above & ~above.shift(1, fill_value=False), ~above\n"
    ),
    "volume filter": (
        "    c, v = data['close'], data['volume']\n"
        "    return (v > 1.2 * v.rolling(20).mean()) & (c > c.shift(1)), c < c.rolling(10).mean()\n"
    ),
    "expanding mean": (
        "    c = data['close']\n    m = c.expanding().mean()\n    return c > m, c < m\n"
    ),
    "cumulative max drawdown filter": (
        "    c = data['close']\n    dd = c / c.cummax() - 1\n"
        "    return (dd < -0.08) & (c > c.shift(1)), dd > -0.01\n"
    ),
    "ATR expansion": (
        "    c, h, lo = data['close'], data['high'], data['low']\n"
        "    tr = pd.concat([h - lo, (h - c.shift(1)).abs(), (lo - c.shift(1)).abs()], axis=1)"
        ".max(axis=1)\n"
        "    atr = tr.rolling(14).mean()\n"
        "    return c > c.shift(1) + 0.5 * atr, c < c.shift(1) - 0.5 * atr\n"
    ),
    "rolling z-score": (
        "    c = data['close']\n    z = (c - c.rolling(30).mean()) / c.rolling(30).std()\n"
        "    return z < -1.0, z > 0\n"
    ),
    "rolling median": (
        "    c = data['close']\n    m = c.rolling(25).median()\n    return c > m, c < m\n"
    ),
    "stochastic %K": (
        "    c = data['close']\n"
        "    lo, hi = data['low'].rolling(14).min(), data['high'].rolling(14).max()\n"
        "    k = (c - lo) / (hi - lo)\n    return k < 0.2, k > 0.8\n"
    ),
    "rolling quantile": (
        "    c = data['close']\n"
        "    return c > c.rolling(50).quantile(0.8), c < c.rolling(50).quantile(0.3)\n"
    ),
    "rolling rank(pct=True)": (
        "    r = data['close'].rolling(20).rank(pct=True)\n    return r < 0.15, r > 0.85\n"
    ),
    "trailing stop in a loop over past bars": (
        "    c = data['close'].to_numpy()\n"
        "    entries = np.zeros(len(c), dtype=bool)\n    exits = np.zeros(len(c), dtype=bool)\n"
        "    peak, held = 0.0, False\n"
        "    for t in range(1, len(c)):\n"
        "        if not held and c[t] > c[t - 1] * 1.01:\n"
        "            entries[t], held, peak = True, True, c[t]\n"
        "        elif held:\n"
        "            peak = max(peak, c[t])\n"
        "            if c[t] < peak * 0.95:\n"
        "                exits[t], held = True, False\n"
        "    return entries, exits\n"
    ),
    "on-balance volume": (
        "    c = data['close']\n    obv = (np.sign(c.diff()).fillna(0) * data['volume']).cumsum()\n"
        "    return obv > obv.rolling(20).mean(), obv < obv.rolling(20).mean()\n"
    ),
    "weekday filter": (
        "    c = data['close']\n"
        "    monday = pd.Series(data.index.dayofweek == 0, index=data.index)\n"
        "    return monday & (c > c.rolling(20).mean()), c < c.rolling(20).mean()\n"
    ),
    "gap up": (
        "    c = data['close']\n"
        "    return data['open'] > c.shift(1) * 1.003, data['open'] < c.shift(1) * 0.997\n"
    ),
    "volatility regime": (
        "    r = data['close'].pct_change()\n"
        "    return r.ewm(span=20).std() < r.rolling(100).std(), r.rolling(5).sum() < -0.03\n"
    ),
    "rolling regression slope": (
        "    c = data['close']\n    t = pd.Series(np.arange(len(c), dtype=float), index=c.index)\n"
        "    slope = c.rolling(20).cov(t) / t.rolling(20).var()\n"
        "    return slope > 0.1, slope < 0\n"
    ),
    "new expanding high": (
        "    c = data['close']\n    return c >= c.expanding().max(), c < c.rolling(20).mean()\n"
    ),
    "rolling mean with min_periods=1": (
        "    c = data['close']\n    m = c.rolling(200, min_periods=1).mean()\n"
        "    return c > m, c < m\n"
    ),
    "hysteresis state carried by ffill": (
        "    c = data['close']\n    z = (c - c.rolling(20).mean()) / c.rolling(20).std()\n"
        "    state = pd.Series(np.where(z < -1, 1.0, np.where(z > 1, 0.0, np.nan)), "
        "index=c.index).ffill()\n"
        "    held = state.fillna(0) > 0.5\n"
        "    return held & ~held.shift(1, fill_value=False), ~held\n"
    ),
    "needs 30 bars, raises on a shorter history": (
        "    c = data['close']\n"
        "    if len(c) < 30:\n        raise ValueError('need at least 30 bars')\n"
        "    return c > c.shift(1), c < c.shift(1)\n"
    ),
}


def strategy(body: str) -> str:
    return HEADER + body


def in_process_probe(code: str, frame: pd.DataFrame, cuts: list[int]) -> LookaheadProbe:
    namespace: dict[str, Any] = {}
    exec(code, namespace)

    def signals_of(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        entries, exits = namespace["signals"](data, {})
        return np.asarray(entries), np.asarray(exits)

    return probe_signals(signals_of, frame, cuts)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1500, seed=11)


@pytest.fixture(scope="module")
def cuts(frame: pd.DataFrame) -> list[int]:
    return cut_points(len(frame))


@pytest.fixture(scope="module")
async def runs(frame: pd.DataFrame, cuts: list[int]) -> dict[str, SandboxRun]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(body: str) -> SandboxRun:
        async with gate:
            return await run_signals(strategy(body), frame, [{}], limits=LIMITS, probe_cuts=cuts)

    names = [*BIASED, *HONEST]
    done = await asyncio.gather(*(one({**BIASED, **HONEST}[n]) for n in names))
    return dict(zip(names, done, strict=True))


def test_there_are_enough_cases(cuts: list[int]) -> None:
    assert len(cuts) == 20
    assert len(BIASED) >= 8 and len(HONEST) >= 20


@pytest.mark.parametrize("name", list(BIASED))
def test_biased_strategy_is_rejected_with_the_bar_that_changed(
    name: str, runs: dict[str, SandboxRun], frame: pd.DataFrame, cuts: list[int]
) -> None:
    run = runs[name]
    assert run.ok, run.error
    probe = run.probe
    assert probe is not None and not probe.passed, probe
    assert probe.first_bar is not None and probe.cut is not None
    assert 0 <= probe.first_bar <= probe.cut <= len(frame) - 2
    assert probe.series in ("entries", "exits")
    assert probe.first_ts == frame.index[probe.first_bar].to_pydatetime()
    assert f"the {probe.series} signal at bar {probe.first_bar} (" in probe.detail
    assert probe == in_process_probe(strategy(BIASED[name]), frame, cuts)


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_strategy_is_never_rejected(
    name: str, runs: dict[str, SandboxRun], frame: pd.DataFrame, cuts: list[int]
) -> None:
    run = runs[name]
    assert run.ok, run.error
    probe = run.probe
    assert probe is not None and probe.passed, probe
    assert probe.first_bar is None and probe.cuts >= len(cuts)
    assert probe == in_process_probe(strategy(HONEST[name]), frame, cuts)


async def test_the_probe_runs_the_chosen_parameter_set(
    frame: pd.DataFrame, cuts: list[int]
) -> None:
    code = strategy(
        "    c = data['close']\n    ahead = c.shift(-1) if params['peek'] else c.shift(1)\n"
        "    return ahead > c, ahead < c\n"
    )
    sets: list[dict[str, float]] = [{"peek": 0}, {"peek": 1}, {"peek": 0}]
    middle, first = await asyncio.gather(
        run_signals(code, frame, sets, limits=LIMITS, probe_cuts=cuts),
        run_signals(code, frame, sets, limits=LIMITS, probe_cuts=cuts, probe_param_index=0),
    )
    assert middle.probe is not None and middle.probe.first_bar is not None
    assert first.probe is not None and first.probe.passed


async def test_code_failing_on_a_prefix_past_the_warm_up_cannot_be_checked(
    frame: pd.DataFrame, cuts: list[int]
) -> None:
    code = strategy(
        "    c = data['close']\n"
        "    if len(c) < 400:\n        raise ValueError('need 400 bars')\n"
        "    return c > c.shift(1), c < c.shift(1)\n"
    )
    run = await run_signals(code, frame, [{}], limits=LIMITS, probe_cuts=cuts)
    assert run.ok  # the full run is fine; the probe says it could not check it
    probe = run.probe
    assert probe is not None and not probe.passed and probe.first_bar is None
    assert probe.cut == cuts[0]
    assert "failed on a shorter history" in probe.detail
    assert "ValueError: need 400 bars, line 10" in probe.detail
    assert "look ahead" not in probe.detail


async def test_no_probe_unless_asked_and_none_for_failed_code(frame: pd.DataFrame) -> None:
    honest = strategy(HONEST["SMA crossover"])
    broken = strategy("    return data['nope'], data['close'] > 0\n")
    plain, failed = await asyncio.gather(
        run_signals(honest, frame, [{}], limits=LIMITS),
        run_signals(broken, frame, [{}], limits=LIMITS, probe_cuts=[100, 200]),
    )
    assert plain.ok and plain.probe is None
    assert failed.error_kind == "runtime" and failed.probe is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probe_cuts": [1499]}, "outside"),
        ({"probe_cuts": [-1]}, "outside"),
        ({"probe_cuts": [True]}, "whole bar positions"),
        ({"probe_cuts": [10.0]}, "whole bar positions"),
        ({"probe_cuts": [10], "probe_param_index": 1}, "probe_param_index"),
        ({"probe_cuts": [10], "probe_signal_cuts": -1}, "probe_signal_cuts"),
    ],
)
async def test_bad_probe_requests_are_refused(
    frame: pd.DataFrame, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await run_signals(strategy(HONEST["SMA crossover"]), frame, [{}], limits=LIMITS, **kwargs)
