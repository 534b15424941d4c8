"""The classic rules design, written once: the simple-moving-average crossover.

Long while a fast simple moving average is above a slow one: enter when it crosses above,
leave when it crosses below. The numba warm-up, the benchmarks in ``perf/`` and the tests
all run it with their own grids, so its shape lives here.
"""

from __future__ import annotations

from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec

Grid = tuple[float, float, float]
"""A parameter's ``(low, high, step)``."""


def sma_crossover(
    *,
    fast: Grid,
    slow: Grid,
    window_params: tuple[str, str] = ("fast_window", "slow_window"),
    name: str = "sma crossover",
    symbol: str = "sp500",
    rationale: str = "",
    stop_loss: float | None = None,
    take_profit: float | None = None,
) -> StrategySpec:
    """Two ``sma`` indicators, ``fast`` and ``slow``, whose windows are the parameters named
    ``window_params`` searched over the ``fast`` and ``slow`` grids."""
    fast_param, slow_param = window_params
    return StrategySpec(
        name=name,
        kind="rules",
        symbol=symbol,
        rationale=rationale,
        indicators=[
            IndicatorRef(alias="fast", kind="sma", params={"window": fast_param}),
            IndicatorRef(alias="slow", kind="sma", params={"window": slow_param}),
        ],
        entry="crosses_above(fast, slow)",
        exit="crosses_below(fast, slow)",
        parameters=[
            ParamRange(name=fast_param, low=fast[0], high=fast[1], step=fast[2]),
            ParamRange(name=slow_param, low=slow[0], high=slow[1], step=slow[2]),
        ],
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
