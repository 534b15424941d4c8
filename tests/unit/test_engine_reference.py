"""The engine against an independent pure-Python simulator of the same fill model.

``reference_equity`` is written from the execution model in ``stratlab.backtest.engine``'s
docstring, one bar at a time, without vectorbt: long only and all in, next-open fills,
fees and slippage per side, stops measured from the entry fill and checked from the bar
after it, and the conservative fill order (an exit filled at the open comes before a stop
on the same bar). The engine's equity curves must agree with it on random signals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratlab.backtest.engine import Costs, simulate
from stratlab.market.synthetic import synthetic_ohlcv

INIT_CASH = 100_000.0
COSTS = Costs(fees=0.001, slippage=0.002)


def reference_equity(
    frame: pd.DataFrame,
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    costs: Costs,
    stop_loss: float | None,
    take_profit: float | None,
) -> np.ndarray:
    """Equity at each bar's close of one column of signals, starting flat with INIT_CASH.

    A signal on bar ``t - 1`` fills at bar ``t``'s open; an entry and an exit filling
    together cancel out. At most one order a bar: holding at the open, the exit sells
    there, else a stop may sell within the bar (the stop loss first when both are
    reached, the open when the open is already through the level); flat at the open, an
    entry buys there, and its stops are live from the next bar on.
    """
    opens, highs, lows, closes = (
        frame[name].to_numpy() for name in ("open", "high", "low", "close")
    )
    cash, units = INIT_CASH, 0.0
    stop_level = profit_level = math.nan
    equity = np.empty(len(frame))
    for t in range(len(frame)):
        entry = t > 0 and bool(entries[t - 1]) and not exits[t - 1]
        exit_ = t > 0 and bool(exits[t - 1]) and not entries[t - 1]
        if units > 0:
            price = (
                opens[t]
                if exit_
                else _stop_fill(opens[t], highs[t], lows[t], stop_level, profit_level)
            )
            if not math.isnan(price):
                proceeds = units * price * (1 - costs.slippage)
                cash += proceeds * (1 - costs.fees)
                units = 0.0
        elif entry:
            fill = opens[t] * (1 + costs.slippage)
            units = cash / (1 + costs.fees) / fill
            cash = 0.0
            stop_level = fill * (1 - stop_loss) if stop_loss else math.nan
            profit_level = fill * (1 + take_profit) if take_profit else math.nan
        equity[t] = cash + units * closes[t]
    return equity


def _stop_fill(open_: float, high: float, low: float, stop: float, profit: float) -> float:
    """Where a held position's stops sell within a bar; NaN when neither is reached."""
    if not math.isnan(stop):
        if open_ <= stop:
            return open_
        if low <= stop:
            return stop
    if not math.isnan(profit):
        if open_ >= profit:
            return open_
        if high >= profit:
            return profit
    return math.nan


STOPS = [(None, None), (0.02, None), (None, 0.03), (0.03, 0.06), (0.01, 0.01), (0.05, 0.02)]


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = synthetic_ohlcv(bars=800, seed=7)
    rng = np.random.default_rng(42)
    # Dense signals, so exits often fill on bars that also reach a stop.
    entries = rng.random((800, 10)) < 0.15
    exits = rng.random((800, 10)) < 0.10
    return frame, entries, exits


@pytest.mark.parametrize(("stop_loss", "take_profit"), STOPS)
def test_engine_equals_the_reference_simulator(market, stop_loss, take_profit) -> None:
    frame, entries, exits = market
    pf = simulate(frame, entries, exits, costs=COSTS, stop_loss=stop_loss, take_profit=take_profit)
    ours = pf.value().to_numpy()
    for column in range(entries.shape[1]):
        expected = reference_equity(
            frame,
            entries[:, column],
            exits[:, column],
            costs=COSTS,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        np.testing.assert_allclose(ours[:, column], expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize(("stop_loss", "take_profit"), [(None, None), (0.03, 0.06)])
def test_a_window_equals_the_reference_from_the_bar_before(market, stop_loss, take_profit) -> None:
    # The window starts flat; a signal on the bar before it may fill at its first open.
    frame, entries, exits = market
    start, end = 300, 700
    pf = simulate(
        frame,
        entries,
        exits,
        costs=COSTS,
        stop_loss=stop_loss,
        take_profit=take_profit,
        window=(start, end),
    )
    ours = pf.value().to_numpy()
    for column in range(entries.shape[1]):
        expected = reference_equity(
            frame.iloc[start - 1 : end],
            entries[start - 1 : end, column],
            exits[start - 1 : end, column],
            costs=COSTS,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )[1:]
        np.testing.assert_allclose(ours[:, column], expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize(("stop_loss", "take_profit"), [(None, 0.03), (0.03, 0.06), (0.02, None)])
def test_the_reference_sees_the_bars_where_the_fill_orders_differ(
    market, stop_loss, take_profit
) -> None:
    # Not a vacuous agreement: on these signals vectorbt's optimistic order (a stop in the
    # bar beats the exit at its open) gives other curves than the reference.
    frame, entries, exits = market
    optimistic = simulate(
        frame,
        entries,
        exits,
        costs=COSTS,
        stop_loss=stop_loss,
        take_profit=take_profit,
        fill_order="optimistic",
    ).value()
    differs = 0
    for column in range(entries.shape[1]):
        expected = reference_equity(
            frame,
            entries[:, column],
            exits[:, column],
            costs=COSTS,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        differs += not np.allclose(optimistic.iloc[:, column].to_numpy(), expected, rtol=1e-9)
    assert differs >= 3
