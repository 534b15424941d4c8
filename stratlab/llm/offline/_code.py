"""Code families of the offline designer: ``signals(data, params)`` sources it writes.

Each family is a small, vectorised pandas/numpy function that follows the code contract
of the designer prompt: imports from numpy, pandas and math only, no dunders, no file
or network access, two boolean Series aligned with ``data``, and values at bar ``t``
computed from bars ``<= t`` only (rolling windows, ``shift(1)`` for "yesterday").
Parameters are read as ``params["name"]``; every family has three parameter ranges, so
a grid has 27-64 combinations (27 under the small-grid directive).

``with_bug`` makes the deliberate runtime error of the "write code with a bug" directive
(a misspelled variable, a ``NameError`` at the return line); the family builders never
produce it, so regenerating a family's code is how the offline designer repairs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from stratlab.llm.offline._families import (
    BREAKOUT,
    MEAN_REVERSION,
    TREND,
    Draft,
    Knobs,
    level,
    window,
)
from stratlab.models.research import StrategySpec

_HEADER = (
    "import numpy as np\n"
    "import pandas as pd\n"
    "\n"
    "\n"
    "def signals(data, params):\n"
    '    close = data["close"]\n'
)
_RETURN = "    return entries, exits\n"
_BUGGY_RETURN = "    return entires, exits\n"
_FILTER_MARK = "    # Trade only with the long-term trend"


def _source(body: str) -> str:
    """The full module: header, the family's body (4-space indented) and the return."""
    return _HEADER + body + _RETURN


def _moving_average(kind: str, name: str) -> str:
    if kind == "ema":
        return f"close.ewm(span={name}, adjust=False, min_periods={name}).mean()"
    return f"close.rolling({name}).mean()"


def ma_cross(rng: random.Random, knobs: Knobs) -> Draft:
    kind = rng.choice(["sma", "ema"])
    body = f"""\
    fast_window = int(params["fast_window"])
    slow_window = int(params["slow_window"])
    entry_gap = float(params["entry_gap"])
    fast = {_moving_average(kind, "fast_window")}
    slow = {_moving_average(kind, "slow_window")}
    # How far the fast average is above the slow one, as a fraction; NaN in warm-up.
    spread = fast / slow - 1.0
    above = spread > entry_gap
    entries = above & ~above.shift(1, fill_value=False)
    below = fast < slow
    exits = below & ~below.shift(1, fill_value=False)
"""
    return Draft(
        family="ma_cross",
        indicators=[],
        parameters=[
            window("fast_window", *rng.choice([(5, 20, 5), (8, 20, 4)]), knobs),
            window("slow_window", *rng.choice([(30, 90, 20), (40, 100, 20)]), knobs),
            level("entry_gap", 0.0, 0.01, 0.005),
        ],
        code=_source(body),
        idea=f"Trend following in code: buy when the fast {kind.upper()} moves above the slow "
        "one by at least entry_gap and sell when it crosses back below.",
    )


def rsi_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    crossing = rng.random() < 0.5
    oversold = (35, 45, 5) if knobs.loose else rng.choice([(25, 35, 5), (20, 35, 5)])
    entry = "(rsi > oversold) & (rsi.shift(1) <= oversold)" if crossing else "rsi < oversold"
    body = f"""\
    rsi_window = int(params["rsi_window"])
    oversold = float(params["oversold"])
    exit_level = float(params["exit_level"])
    change = close.diff()
    gain = change.clip(lower=0.0)
    loss = -change.clip(upper=0.0)
    # Wilder's smoothing is an exponential average with alpha = 1 / window.
    avg_gain = gain.ewm(alpha=1.0 / rsi_window, adjust=False, min_periods=rsi_window).mean()
    avg_loss = loss.ewm(alpha=1.0 / rsi_window, adjust=False, min_periods=rsi_window).mean()
    rsi = 100.0 - 100.0 / (1.0 + avg_gain / (avg_loss + 1e-12))
    entries = {entry}
    exits = rsi > exit_level
"""
    return Draft(
        family="rsi_reversion",
        indicators=[],
        parameters=[
            window("rsi_window", *rng.choice([(7, 21, 7), (10, 20, 5)]), knobs),
            level("oversold", *oversold),
            level("exit_level", *rng.choice([(50, 70, 10), (55, 75, 10)])),
        ],
        code=_source(body),
        idea="Mean reversion in code: buy when a hand-computed RSI "
        + ("climbs back out of" if crossing else "is in")
        + " oversold territory and sell once it has recovered to exit_level.",
    )


def bollinger_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    k = 1.5 if knobs.loose else rng.choice([2.0, 2.5])
    entry_band = (0.1, 0.3, 0.1) if knobs.loose else (0.0, 0.2, 0.1)
    body = f"""\
    bb_window = int(params["bb_window"])
    entry_pctb = float(params["entry_pctb"])
    exit_pctb = float(params["exit_pctb"])
    middle = close.rolling(bb_window).mean()
    width = {k!r} * close.rolling(bb_window).std(ddof=0)
    # Position of the close inside the band: 0 at the lower band, 1 at the upper one.
    pctb = (close - (middle - width)) / (2.0 * width)
    entries = pctb < entry_pctb
    exits = pctb > exit_pctb
"""
    return Draft(
        family="bollinger_reversion",
        indicators=[],
        parameters=[
            window("bb_window", *rng.choice([(10, 30, 5), (15, 30, 5)]), knobs),
            level("entry_pctb", *entry_band),
            level("exit_pctb", 0.5, 1.0, 0.25),
        ],
        code=_source(body),
        idea=f"Mean reversion in code: buy near the lower {k:g}-sigma Bollinger band "
        "(%B below entry_pctb) and sell back towards the middle or upper band.",
    )


def zscore_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    entry_band = (-1.5, -0.5, 0.5) if knobs.loose else (-2.5, -1.5, 0.5)
    body = """\
    z_window = int(params["z_window"])
    entry_z = float(params["entry_z"])
    exit_z = float(params["exit_z"])
    mean = close.rolling(z_window).mean()
    spread = close.rolling(z_window).std(ddof=0)
    z = (close - mean) / spread
    entries = z < entry_z
    exits = z > exit_z
"""
    return Draft(
        family="zscore_reversion",
        indicators=[],
        parameters=[
            window("z_window", *rng.choice([(10, 40, 10), (20, 50, 10)]), knobs),
            level("entry_z", *entry_band),
            level("exit_z", -0.5, 0.5, 0.5),
        ],
        code=_source(body),
        idea="Mean reversion in code: buy when the close is stretched below its rolling "
        "mean (z-score under entry_z) and sell once it is back near the mean.",
    )


def donchian_breakout(rng: random.Random, knobs: Knobs) -> Draft:
    buffer = (0.0, 0.004, 0.002) if knobs.loose else (0.0, 0.01, 0.005)
    body = """\
    entry_window = int(params["entry_window"])
    exit_window = int(params["exit_window"])
    breakout_buffer = float(params["breakout_buffer"])
    # Yesterday's channel: today's bar must not be part of the level it breaks.
    upper = data["high"].rolling(entry_window).max().shift(1)
    lower = data["low"].rolling(exit_window).min().shift(1)
    entries = close > upper * (1.0 + breakout_buffer)
    exits = close < lower
"""
    return Draft(
        family="donchian_breakout",
        indicators=[],
        parameters=[
            window("entry_window", *rng.choice([(20, 50, 10), (15, 60, 15)]), knobs),
            window("exit_window", 5, 20, 5, knobs),
            level("breakout_buffer", *buffer),
        ],
        code=_source(body),
        idea="Channel breakout in code: buy when the close clears yesterday's highest high "
        "of the entry channel and sell below the lowest low of a shorter exit channel.",
    )


def momentum(rng: random.Random, knobs: Knobs) -> Draft:
    entry_band = (-1.0, 1.0, 1.0) if knobs.loose else rng.choice([(0.0, 4.0, 2.0), (1.0, 5.0, 2.0)])
    body = """\
    roc_window = int(params["roc_window"])
    entry_roc = float(params["entry_roc"])
    exit_roc = float(params["exit_roc"])
    # Rate of change in percent over roc_window bars.
    roc = (close / close.shift(roc_window) - 1.0) * 100.0
    rising = roc > entry_roc
    entries = rising & ~rising.shift(1, fill_value=False)
    exits = roc < exit_roc
"""
    return Draft(
        family="momentum",
        indicators=[],
        parameters=[
            window("roc_window", *rng.choice([(20, 80, 20), (10, 40, 10)]), knobs),
            level("entry_roc", *entry_band),
            level("exit_roc", -4.0, 0.0, 2.0),
        ],
        code=_source(body),
        idea="Momentum in code: buy when the rate of change over roc_window bars rises "
        "through entry_roc percent and sell when it falls below exit_roc.",
    )


CODE_FAMILIES: dict[str, tuple[str, Callable[[random.Random, Knobs], Draft]]] = {
    "ma_cross": (TREND, ma_cross),
    "momentum": (TREND, momentum),
    "rsi_reversion": (MEAN_REVERSION, rsi_reversion),
    "bollinger_reversion": (MEAN_REVERSION, bollinger_reversion),
    "zscore_reversion": (MEAN_REVERSION, zscore_reversion),
    "donchian_breakout": (BREAKOUT, donchian_breakout),
}
"""Code family name -> (style, builder); names match the rules families where they can."""

_CODE_HINTS: tuple[tuple[str, str], ...] = (
    ("pctb", "bollinger_reversion"),
    ("rsi", "rsi_reversion"),
    ("z_window", "zscore_reversion"),
    ("roc", "momentum"),
    (".max()", "donchian_breakout"),
    ("slow", "ma_cross"),
)


def code_family_of(spec: StrategySpec) -> str | None:
    """The code family of a spec: from its name's slug, else from words in its code."""
    name = spec.name.lower()
    for family in CODE_FAMILIES:
        if family.replace("_", "-") in name:
            return family
    code = spec.code or ""
    return next((family for hint, family in _CODE_HINTS if hint in code), None)


def with_bug(code: str) -> str:
    """The same code with a misspelled variable at the return: a NameError when run."""
    return code.replace(_RETURN, _BUGGY_RETURN) if _RETURN in code else code + _BUGGY_RETURN


def with_trend_filter(code: str, length: int) -> str:
    """Entries also need the close above its ``length``-bar average (added once)."""
    if _FILTER_MARK in code or _RETURN not in code:
        return code
    snippet = (
        f"{_FILTER_MARK}: entries need the close above its {length}-bar average.\n"
        f"    trend = close.rolling({length}).mean()\n"
        "    entries = entries & (close > trend)\n"
    )
    return code.replace(_RETURN, snippet + _RETURN)


def has_trend_filter(code: str | None) -> bool:
    return bool(code) and _FILTER_MARK in (code or "")
