"""Strategy families of the offline designer: each one builds a valid draft spec.

Every family uses only the expression language of ``stratlab.strategies.expr`` and the
indicator kinds of the registry, and keeps its parameter grid between about 20 and 400
combinations. ``Knobs`` carry what directives and feedback change: window scale, looser
thresholds (more trades) and the classifier.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from stratlab.models.research import IndicatorRef, MlSpec, ParamRange, StrategySpec

TREND, MEAN_REVERSION, BREAKOUT, ML = "trend", "mean_reversion", "breakout", "ml"


@dataclass(frozen=True)
class Knobs:
    window_scale: float = 1.0
    loose: bool = False
    classifier: str | None = None


@dataclass
class Draft:
    family: str
    indicators: list[IndicatorRef]
    entry: str = ""
    exit: str = ""
    parameters: list[ParamRange] = field(default_factory=list)
    ml: MlSpec | None = None
    idea: str = ""
    code: str | None = None  # kind code: the signals() source (see _code)


MAX_WINDOW = 200
"""The smallest upper bound of a window param in the indicator registry (rsi, atr,
stoch, macd fast and signal); every searched window stays within it."""
MAX_MA_WINDOW = 500
"""sma and ema allow longer windows; the fixed trend filter may use them."""


def window(name: str, low: int, high: int, step: int, knobs: Knobs) -> ParamRange:
    """A window range scaled by ``knobs.window_scale``, keeping its number of values."""
    scale = knobs.window_scale
    count = (high - low) // step + 1
    return fit_window_range(name, round(low * scale), round(step * scale), count)


def fit_window_range(name: str, low: int, step: int, count: int) -> ParamRange:
    """Whole-number range of ``count`` values within 2..MAX_WINDOW (step shrinks first)."""
    count = max(1, count)
    low = max(2, min(low, MAX_WINDOW - (count - 1)))
    step = max(1, min(step, (MAX_WINDOW - low) // (count - 1))) if count > 1 else max(1, step)
    return ParamRange(name=name, low=low, high=low + step * (count - 1), step=step)


def fixed_window(value: int, knobs: Knobs, cap: int = MAX_WINDOW) -> int:
    return min(cap, max(2, round(value * knobs.window_scale)))


def level(name: str, low: float, high: float, step: float) -> ParamRange:
    return ParamRange(name=name, low=round(low, 4), high=round(high, 4), step=round(step, 4))


def values_in(param: ParamRange) -> int:
    """Number of grid values of an inclusive range (a tiny epsilon absorbs float error)."""
    if param.step <= 0 or param.high < param.low:
        return 1
    return math.floor((param.high - param.low) / param.step + 1e-9) + 1


def grid_size(parameters: list[ParamRange]) -> int:
    return math.prod(values_in(p) for p in parameters)


_WINDOW_KEYS = frozenset({"window", "fast", "slow", "signal"})
"""Indicator param keys that are lookbacks (as are keys ending in ``_window``)."""


def is_window_key(key: str) -> bool:
    return key in _WINDOW_KEYS or key.endswith("_window")


def _ref(alias: str, kind: str, **params: float | int | str) -> IndicatorRef:
    return IndicatorRef(alias=alias, kind=kind, params=dict(params))


def ma_cross(rng: random.Random, knobs: Knobs) -> Draft:
    ma = rng.choice(["sma", "ema"])
    fast = window("fast_window", *rng.choice([(5, 20, 5), (5, 25, 5), (8, 24, 4)]), knobs)
    slow = window("slow_window", *rng.choice([(30, 90, 15), (40, 120, 20), (50, 150, 25)]), knobs)
    exit_rule, exit_words = rng.choice(
        [
            ("crosses_below(fast, slow)", "it crosses back below"),
            ("close < slow", "the close drops below the slow average"),
        ]
    )
    return Draft(
        family="ma_cross",
        indicators=[_ref("fast", ma, window="fast_window"), _ref("slow", ma, window="slow_window")],
        entry="crosses_above(fast, slow)",
        exit=exit_rule,
        parameters=[fast, slow],
        idea=f"Trend following: buy when a fast {ma.upper()} crosses above a slow one and "
        f"sell when {exit_words}.",
    )


def macd_cross(rng: random.Random, knobs: Knobs) -> Draft:
    below_zero = rng.random() < 0.5 and not knobs.loose
    entry = "crosses_above(macd.macd, macd.signal)" + (" and macd.macd < 0" if below_zero else "")
    return Draft(
        family="macd_cross",
        indicators=[_ref("macd", "macd", fast="fast", slow="slow", signal="signal")],
        entry=entry,
        exit="crosses_below(macd.macd, macd.signal)",
        parameters=[
            window("fast", 8, 16, 4, knobs),
            window("slow", 21, 35, 7, knobs),
            window("signal", *rng.choice([(5, 9, 2), (7, 11, 2)]), knobs),
        ],
        idea="Trend following: buy when the MACD line crosses above its signal line"
        + (" while still below zero (an early turn)" if below_zero else "")
        + " and sell on the opposite cross.",
    )


def rsi_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    crossing = rng.random() < 0.5
    oversold = (30, 45, 5) if knobs.loose else rng.choice([(20, 35, 5), (25, 35, 5)])
    return Draft(
        family="rsi_reversion",
        indicators=[_ref("rsi", "rsi", window="rsi_window")],
        entry="crosses_above(rsi, oversold)" if crossing else "rsi < oversold",
        exit="rsi > exit_level",
        parameters=[
            window("rsi_window", *rng.choice([(7, 21, 7), (10, 20, 5), (6, 18, 4)]), knobs),
            level("oversold", *oversold),
            level("exit_level", *rng.choice([(50, 70, 5), (55, 75, 10)])),
        ],
        idea="Mean reversion: buy when the RSI "
        + ("climbs back out of" if crossing else "is in")
        + " oversold territory and sell once it has recovered.",
    )


def bollinger_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    k = 1.5 if knobs.loose else rng.choice([2.0, 2.5])
    entry_band = (0.1, 0.3, 0.05) if knobs.loose else (0.0, 0.2, 0.05)
    return Draft(
        family="bollinger_reversion",
        indicators=[_ref("bb", "bbands", window="bb_window", k=k)],
        entry="bb.pctb < entry_pctb",
        exit="bb.pctb > exit_pctb",
        parameters=[
            window("bb_window", *rng.choice([(10, 30, 5), (15, 35, 5)]), knobs),
            level("entry_pctb", *entry_band),
            level("exit_pctb", 0.5, 1.0, 0.25),
        ],
        idea=f"Mean reversion: buy near the lower {k:g}-sigma Bollinger band and sell back "
        "towards the middle or upper band.",
    )


def stoch_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    oversold = (25, 40, 5) if knobs.loose else (15, 30, 5)
    return Draft(
        family="stoch_reversion",
        indicators=[_ref("stoch", "stoch", k_window="k_window", d_window=rng.choice([3, 5]))],
        entry="crosses_above(stoch.k, stoch.d) and stoch.k < oversold",
        exit="stoch.k > overbought",
        parameters=[
            window("k_window", 9, 21, 4, knobs),
            level("oversold", *oversold),
            level("overbought", 70, 85, 5),
        ],
        idea="Mean reversion: buy when the stochastic %K turns up through %D in oversold "
        "territory and sell when it reaches overbought.",
    )


def zscore_reversion(rng: random.Random, knobs: Knobs) -> Draft:
    entry_band = (-1.5, -0.5, 0.25) if knobs.loose else (-2.5, -1.0, 0.5)
    return Draft(
        family="zscore_reversion",
        indicators=[_ref("z", "zscore", window="z_window")],
        entry="z < entry_z",
        exit="z > exit_z",
        parameters=[
            window("z_window", *rng.choice([(10, 40, 10), (20, 60, 10)]), knobs),
            level("entry_z", *entry_band),
            level("exit_z", -0.5, 0.5, 0.5),
        ],
        idea="Mean reversion: buy when the close is stretched well below its rolling mean "
        "(a negative z-score) and sell once it is back near the mean.",
    )


def atr_breakout(rng: random.Random, knobs: Knobs) -> Draft:
    reference = rng.choice(["lag(high, 1)", "max(lag(high, 1), lag(high, 2))"])
    band = (0.0, 0.5, 0.25) if knobs.loose else (0.0, 1.0, 0.25)
    return Draft(
        family="atr_breakout",
        indicators=[
            _ref("atr", "atr", window="atr_window"),
            _ref("trail", "ema", window="exit_window"),
        ],
        entry=f"close > {reference} + band * atr",
        exit="crosses_below(close, trail)",
        parameters=[
            window("atr_window", 10, 20, 5, knobs),
            level("band", *band),
            window("exit_window", 10, 30, 5, knobs),
        ],
        idea="Volatility breakout: buy when the close clears the recent high by a fraction "
        "of the average true range and ride the move until the close falls below a "
        "trailing average.",
    )


def donchian_breakout(rng: random.Random, knobs: Knobs) -> Draft:
    return Draft(
        family="donchian_breakout",
        indicators=[
            _ref("dc", "donchian", window="entry_window"),
            _ref("dx", "donchian", window="exit_window"),
        ],
        # The channel includes the current bar, so the breakout compares with yesterday's.
        entry="close > lag(dc.upper, 1)",
        exit="close < lag(dx.lower, 1)",
        parameters=[
            window("entry_window", *rng.choice([(20, 60, 5), (10, 60, 10)]), knobs),
            window("exit_window", 5, 20, 5, knobs),
        ],
        idea="Channel breakout: buy when the close breaks above the highest high of the "
        "entry channel and sell when it breaks below the lowest low of a shorter exit channel.",
    )


def bollinger_breakout(rng: random.Random, knobs: Knobs) -> Draft:
    k_range = (1.0, 2.0, 0.5) if knobs.loose else (1.5, 2.5, 0.5)
    exit_rule = rng.choice(["close < bb.middle", "crosses_below(close, bb.middle)"])
    return Draft(
        family="bollinger_breakout",
        indicators=[_ref("bb", "bbands", window="bb_window", k="bb_k")],
        entry="close > lag(bb.upper, 1)",
        exit=exit_rule,
        parameters=[window("bb_window", 10, 40, 5, knobs), level("bb_k", *k_range)],
        idea="Breakout: buy when the close breaks above yesterday's upper Bollinger band and "
        "sell when it falls back below the middle band.",
    )


_ML_FEATURES: dict[str, tuple[str, IndicatorRef]] = {
    "roc": ("roc", _ref("roc", "roc", window=10)),
    "z": ("z", _ref("z", "zscore", window=20)),
    "bb": ("bb.pctb", _ref("bb", "bbands", window=20, k=2.0)),
    "stoch": ("stoch.k", _ref("stoch", "stoch", k_window=14, d_window=3)),
    "macd": ("macd.hist", _ref("macd", "macd", fast=12, slow=26, signal=9)),
}


def ml_classifier(rng: random.Random, knobs: Knobs) -> Draft:
    extra = rng.sample(sorted(_ML_FEATURES), k=rng.choice([2, 3]))
    indicators = [_ref("rsi", "rsi", window=fixed_window(14, knobs))]
    features = ["rsi"]
    for key in extra:
        feature, ref = _ML_FEATURES[key]
        params = {
            name: fixed_window(int(value), knobs) if is_window_key(name) else value
            for name, value in ref.params.items()
        }
        indicators.append(IndicatorRef(alias=ref.alias, kind=ref.kind, params=params))
        features.append(feature)
    classifier = knobs.classifier or rng.choice(["logistic", "mlp"])
    threshold = 0.52 if knobs.loose else rng.choice([0.55, 0.58, 0.6])
    horizon = max(1, round(rng.choice([3, 5, 10]) * knobs.window_scale))
    ml = MlSpec(
        features=features,
        label_horizon=horizon,
        classifier=classifier,  # type: ignore[arg-type]
        threshold=threshold,
        exit_threshold=0.48 if knobs.loose else 0.5,
        epochs=rng.choice([20, 30]),
    )
    return Draft(
        family="ml",
        indicators=indicators,
        ml=ml,
        idea=f"A {classifier} classifier over {', '.join(features)} predicts whether the close "
        f"{horizon} bars ahead is higher; it buys when that probability clears {threshold:g}.",
    )


FAMILIES: dict[str, tuple[str, Callable[[random.Random, Knobs], Draft]]] = {
    "ma_cross": (TREND, ma_cross),
    "macd_cross": (TREND, macd_cross),
    "rsi_reversion": (MEAN_REVERSION, rsi_reversion),
    "bollinger_reversion": (MEAN_REVERSION, bollinger_reversion),
    "stoch_reversion": (MEAN_REVERSION, stoch_reversion),
    "zscore_reversion": (MEAN_REVERSION, zscore_reversion),
    "atr_breakout": (BREAKOUT, atr_breakout),
    "donchian_breakout": (BREAKOUT, donchian_breakout),
    "bollinger_breakout": (BREAKOUT, bollinger_breakout),
    "ml": (ML, ml_classifier),
}
"""Family name -> (style, builder)."""


def style_of(family: str | None) -> str | None:
    return FAMILIES[family][0] if family in FAMILIES else None


def family_of(spec: StrategySpec) -> str | None:
    """Which family a spec belongs to, judged from its indicators and rules."""
    if spec.kind == "ml":
        return "ml"
    kinds = {ref.kind for ref in spec.indicators}
    entry = spec.entry.replace(" ", "")
    for kind, family in (
        ("stoch", "stoch_reversion"),
        ("zscore", "zscore_reversion"),
        ("rsi", "rsi_reversion"),
    ):
        if kind in kinds:
            return family
    if "donchian" in kinds:
        return "donchian_breakout"
    if "bbands" in kinds:
        return "bollinger_breakout" if "upper" in entry else "bollinger_reversion"
    if "macd" in kinds:
        return "macd_cross"
    if "atr" in kinds or "lag(high" in entry:
        return "atr_breakout"
    if kinds & {"sma", "ema"}:
        return "ma_cross"
    return None


_NAME_HINTS: tuple[tuple[frozenset[str], str], ...] = tuple(
    (frozenset(words.split()), family)
    for words, family in (
        ("bollinger breakout", "bollinger_breakout"),
        ("ma cross", "ma_cross"),
        ("sma cross", "ma_cross"),
        ("ema cross", "ma_cross"),
        ("macd", "macd_cross"),
        ("rsi", "rsi_reversion"),
        ("bollinger", "bollinger_reversion"),
        ("stoch", "stoch_reversion"),
        ("zscore", "zscore_reversion"),
        ("donchian", "donchian_breakout"),
        ("atr", "atr_breakout"),
        ("breakout", "atr_breakout"),
        ("ml", "ml"),
        ("logistic", "ml"),
        ("mlp", "ml"),
    )
)


def family_from_name(name: str) -> str | None:
    """The family a strategy name suggests: offline names carry their family's slug.

    Whole words only ("reversion" must not read as "rsi").
    """
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    return next((family for hint, family in _NAME_HINTS if hint <= words), None)
