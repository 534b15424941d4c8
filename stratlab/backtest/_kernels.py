"""Numba kernels of the backtest engine, compiled once and cached on disk.

``simulate_long_only_nb`` runs vectorbt's signal simulator with only the arguments the
engine sets: numba compiles every other argument in as a constant, which makes a grid
simulation about 2.5x faster than ``Portfolio.from_signals`` (same kernel, same orders;
a unit test holds them equal). Wrapping the call in a function of our own also makes it
cacheable: numba cannot cache a call with omitted array defaults made from Python.

``column_sharpe_nb`` ranks a grid: it replays each column's orders against the close and
reduces its returns on the fly, instead of materialising vectorbt's cash, asset and value
frames (several bars x combinations arrays, most of the time spent in pandas).

Both release the GIL (``nogil``): fit_rules runs in a worker thread, and the event loop
that heartbeats for it keeps running while a large grid simulates.

The cache lives in NUMBA_CACHE_DIR, which the worker entry point sets to
$STRATLAB_HOME/numba-cache (numba falls back to ``__pycache__`` when it is unset). numba
keys the cache on this file only, so clear that directory after upgrading vectorbt.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from vectorbt.portfolio.nb import simulate_from_signals_nb

BUY = 0  # vectorbt's OrderSide.Buy; anything else is a sell


@njit(cache=True, nogil=True)
def simulate_long_only_nb(
    target_shape: tuple[int, int],
    group_lens: np.ndarray,
    init_cash: np.ndarray,
    call_seq: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    direction: np.ndarray,
    price: np.ndarray,
    fees: np.ndarray,
    slippage: np.ndarray,
    min_size: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    sl_stop: np.ndarray,
    tp_stop: np.ndarray,
    stop_entry_price: np.ndarray,
    stop_exit_price: np.ndarray,
    use_stops: bool,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """vectorbt's ``simulate_from_signals_nb`` with every unlisted argument at its default
    (no accumulation, no logs, ignore conflicting signals, amount sizing with inf size)."""
    return simulate_from_signals_nb(
        target_shape,
        group_lens,
        init_cash,
        call_seq,
        entries=entries,
        exits=exits,
        direction=direction,
        price=price,
        fees=fees,
        slippage=slippage,
        min_size=min_size,
        open=open_,
        high=high,
        low=low,
        close=close,
        sl_stop=sl_stop,
        tp_stop=tp_stop,
        stop_entry_price=stop_entry_price,
        stop_exit_price=stop_exit_price,
        use_stops=use_stops,
        flex_2d=True,
    )


@njit(cache=True, nogil=True)
def column_sharpe_nb(
    close_by_column: np.ndarray,
    order_col: np.ndarray,
    order_idx: np.ndarray,
    order_size: np.ndarray,
    order_price: np.ndarray,
    order_fees: np.ndarray,
    order_side: np.ndarray,
    init_cash: np.ndarray,
    periods_per_year: float,
    flat: float,
) -> np.ndarray:  # pragma: no cover - compiled
    """Annualised Sharpe of each column's equity returns (the first bar against the
    initial cash); 0 with fewer than two bars or a spread below ``flat``.

    ``close_by_column`` is (1, bars) or (columns, bars): one row per column, so each
    column's prices are contiguous. Orders must be sorted by column, then bar.
    """
    bars = close_by_column.shape[1]
    columns = init_cash.shape[0]
    out = np.zeros(columns)
    returns = np.empty(bars)
    pos_in_records = 0
    for col in range(columns):
        price_row = col if close_by_column.shape[0] > 1 else 0
        cash = init_cash[col]
        position = 0.0
        previous = cash
        last_close = np.nan
        for i in range(bars):
            while (
                pos_in_records < order_col.shape[0]
                and order_col[pos_in_records] == col
                and order_idx[pos_in_records] == i
            ):
                traded = order_size[pos_in_records] * order_price[pos_in_records]
                if order_side[pos_in_records] == BUY:
                    cash -= traded + order_fees[pos_in_records]
                    position += order_size[pos_in_records]
                else:
                    cash += traded - order_fees[pos_in_records]
                    position -= order_size[pos_in_records]
                pos_in_records += 1
            price = close_by_column[price_row, i]
            if not np.isnan(price):
                last_close = price
            value = cash if position == 0.0 else cash + position * last_close
            if previous > 0.0 and not np.isnan(value):
                returns[i] = value / previous - 1.0
            else:
                returns[i] = 0.0
            previous = value
        out[col] = _sharpe_of(returns, periods_per_year, flat)
    return out


@njit(cache=True, nogil=True)
def _sharpe_of(
    returns: np.ndarray, periods_per_year: float, flat: float
) -> float:  # pragma: no cover
    n = returns.shape[0]
    if n < 2:
        return 0.0
    mean = returns.mean()
    spread = 0.0
    for value in returns:
        spread += (value - mean) ** 2
    std = math.sqrt(spread / (n - 1))
    if std < flat:
        return 0.0
    return mean / std * math.sqrt(periods_per_year)
