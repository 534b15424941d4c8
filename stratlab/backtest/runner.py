"""Out-of-sample backtests: one strategy over one window, with the series a report plots.

``backtest_test_split`` is the research cycle's backtest step for every kind: signals
computed on the history through the test split are simulated on the held-out test split
only. Indicators are thus warmed up on past bars, and every signal still uses bars up to
its own bar only; the simulation itself covers just the test window and starts flat. The
signals come from the strategy layer above the engine (``stratlab.strategies``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratlab.backtest.drawdown import drawdown
from stratlab.backtest.engine import Costs, FillOrder, Signals, simulate
from stratlab.backtest.metrics import metrics_from_portfolio
from stratlab.market.splits import Splits
from stratlab.models.research import BacktestMetrics, LookaheadProbe, StrategySpec

DEFAULT_INIT_CASH = 100_000.0


@dataclass(frozen=True)
class BacktestRun:
    """Metrics of one backtest plus its curves, all on the window's timestamps.

    ``benchmark`` is buy-and-hold of the close scaled to the same initial cash, and
    ``drawdown`` is the equity's fall from its running peak as a positive fraction;
    ``lookahead`` is the look-ahead probe made with the signals, when one was asked for.
    """

    metrics: BacktestMetrics
    equity: pd.Series
    benchmark: pd.Series
    drawdown: pd.Series
    lookahead: LookaheadProbe | None = None


def backtest_signals(
    frame: pd.DataFrame,
    entries: Signals,
    exits: Signals,
    *,
    window: tuple[int, int],
    costs: Costs,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    init_cash: float = DEFAULT_INIT_CASH,
    fill_order: FillOrder = "conservative",
) -> BacktestRun:
    """Backtest one column of signals (aligned with ``frame``) over bars ``window``
    (start inclusive, end exclusive), starting flat with ``init_cash``."""
    if np.ndim(entries) == 2 and np.shape(entries)[1] != 1:
        raise ValueError(f"backtest_signals takes one column of signals, got {np.shape(entries)}")
    pf = simulate(
        frame,
        entries,
        exits,
        costs=costs,
        stop_loss=stop_loss,
        take_profit=take_profit,
        init_cash=init_cash,
        window=window,
        fill_order=fill_order,
    )
    start, end = window
    close = frame["close"].iloc[start:end]
    metrics = metrics_from_portfolio(pf, column=0, benchmark_close=close)
    equity = pf[pf.wrapper.columns[0]].value().rename("equity")
    return BacktestRun(
        metrics=metrics,
        equity=equity,
        benchmark=_buy_and_hold(close, init_cash),
        drawdown=_drawdown(equity, init_cash),
    )


def backtest_test_split(
    spec: StrategySpec,
    splits: Splits,
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    costs: Costs,
    init_cash: float = DEFAULT_INIT_CASH,
    fill_order: FillOrder = "conservative",
) -> BacktestRun:
    """Any kind's signals over ``splits.through("test")``, simulated on the test window
    only with the spec's stops: the one place every kind's backtest goes through."""
    return backtest_signals(
        splits.through("test"),
        entries,
        exits,
        window=splits.bounds("test"),
        costs=costs,
        stop_loss=spec.stop_loss,
        take_profit=spec.take_profit,
        init_cash=init_cash,
        fill_order=fill_order,
    )


def _buy_and_hold(close: pd.Series, init_cash: float) -> pd.Series:
    prices = close.astype(np.float64).ffill().bfill()
    first = float(prices.iloc[0]) if len(prices) else float("nan")
    if not np.isfinite(first) or first <= 0:
        return pd.Series(init_cash, index=close.index, name="benchmark")
    return (prices / first * init_cash).rename("benchmark")


def _drawdown(equity: pd.Series, init_cash: float) -> pd.Series:
    return pd.Series(drawdown(equity.to_numpy(), init_cash), index=equity.index, name="drawdown")
