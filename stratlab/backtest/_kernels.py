"""Numba kernels behind grid scoring: one pass per column, no (bars x columns) temporaries.

Ranking a grid needs only each column's Sharpe, so instead of materialising vectorbt's
cash, asset and value frames for every combination (several copies of a bars x
combinations float array, most of the time spent in pandas) the kernel replays each
column's orders against the close and reduces its returns on the fly. Cached on disk
like vectorbt's own kernels (see ``stratlab.backtest.engine``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

BUY = 0  # vectorbt's OrderSide.Buy; anything else is a sell


@njit(cache=True)
def column_sharpe_nb(
    close: np.ndarray,
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

    ``close`` is (bars, 1) or (bars, columns); orders must be sorted by column, then bar.
    """
    bars = close.shape[0]
    columns = init_cash.shape[0]
    out = np.zeros(columns)
    returns = np.empty(bars)
    pos_in_records = 0
    for col in range(columns):
        price_col = col if close.shape[1] > 1 else 0
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
            price = close[i, price_col]
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


@njit(cache=True)
def _sharpe_of(returns: np.ndarray, periods_per_year: float, flat: float) -> float:  # pragma: no cover
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
