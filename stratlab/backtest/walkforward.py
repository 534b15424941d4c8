"""Walk-forward out-of-sample evaluation of a parameter grid on the development period.

The grid is simulated ONCE over the whole development period (one batched simulation, as
the fit always did), and its per-bar returns are read off the order records. The
development period is then cut into anchored folds: for fold ``k`` the combination with
the best Sharpe on bars ``[0, fit_end)`` is chosen (parameters refit on the past only),
and its returns on ``[test_start, test_end)`` are its out-of-sample returns. The folds
tile ``[first test bar, end of the development period)``, so the stitched out-of-sample
returns are one contiguous series: the thing every feedback, choice and statistic of
the lab is computed on.

A combination's book is carried across a fold boundary: when fold ``k`` switches to
combination ``j``, a position ``j`` opened before the boundary (on signals computed from
past bars only) is held. That is what running ``j`` from the boundary on would hold, and
no return of a bar at or after ``test_start`` was used to choose ``j``.

Purge: rules and code signals use past bars only and have no labels, so nothing spans a
boundary and the purge is 0; a caller whose labels span ``h`` bars passes ``purge=h``
(the last ``h`` bars before each test block are then left out of the fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vectorbt as vbt
from vectorbt.portfolio.enums import OrderSide

from stratlab.backtest._returns import FLAT

_BLOCK = 256  # columns per block of dense intermediates


@dataclass(frozen=True)
class Fold:
    """Bars ``[0, fit_end)`` choose, bars ``[test_start, test_end)`` judge."""

    fit_end: int
    test_start: int
    test_end: int


def anchored_folds(bars: int, *, folds: int, first_test: float, purge: int = 0) -> list[Fold]:
    """``folds`` equal test blocks tiling ``[round(bars * first_test), bars)``.

    Raises ``ValueError`` when the blocks or the first fit would be empty.
    """
    if folds < 1:
        raise ValueError(f"walk-forward needs at least one fold, got {folds}")
    if not 0 < first_test < 1:
        raise ValueError(f"first_test must be a fraction in (0, 1), got {first_test}")
    first = round(bars * first_test)
    edges = np.linspace(first, bars, folds + 1).round().astype(int)
    plan = [
        Fold(fit_end=int(edges[k]) - purge, test_start=int(edges[k]), test_end=int(edges[k + 1]))
        for k in range(folds)
        if edges[k + 1] > edges[k]
    ]
    if not plan or plan[0].fit_end < 2:
        raise ValueError(
            f"{bars} bars cannot hold {folds} walk-forward folds after a first fit of "
            f"{first} bars (purge {purge})"
        )
    return plan


@dataclass(frozen=True)
class GridPaths:
    """Every combination's per-bar returns and position, and its closed trades.

    ``returns[t, j]`` is combination ``j``'s equity at bar ``t``'s close over the one
    before (the first bar against the initial cash); ``trade_*`` hold one entry per closed
    trade: the bar of its exit order, its column and its return (P&L after fees over the
    entry value, as ``stratlab.backtest.metrics`` defines trade returns).
    """

    returns: np.ndarray
    in_market: np.ndarray
    trade_exit: np.ndarray
    trade_col: np.ndarray
    trade_return: np.ndarray

    @property
    def combinations(self) -> int:
        return int(self.returns.shape[1])


def grid_paths(pf: vbt.Portfolio) -> GridPaths:
    """Per-bar paths of every column of a portfolio made by ``stratlab.backtest.engine``.

    Long-only and all-in: cash and position change only at orders, so both are cumulative
    sums of the order records, and the equity at each close is ``cash + position * close``.
    """
    bars, columns = pf.wrapper.shape_2d
    records = pf.order_records
    records = records[np.lexsort((records["idx"], records["col"]))]
    idx, col = records["idx"].astype(np.int64), records["col"].astype(np.int64)
    buy = records["side"] == OrderSide.Buy
    size, price, fees = records["size"], records["price"], records["fees"]
    init_cash = np.broadcast_to(np.asarray(pf.init_cash, dtype=np.float64), (columns,))
    close = np.asarray(pf.close, dtype=np.float64).reshape(bars, -1)
    returns = np.zeros((bars, columns))
    in_market = np.zeros((bars, columns), dtype=bool)
    # Column blocks keep the dense intermediates small on a grid of thousands.
    for first in range(0, columns, _BLOCK):
        last = min(first + _BLOCK, columns)
        # Records are sorted by column: this block's are one contiguous slice.
        mine = slice(*np.searchsorted(col, [first, last]))
        at = (idx[mine], col[mine] - first)
        delta_position = np.zeros((bars, last - first))
        np.add.at(delta_position, at, np.where(buy[mine], size[mine], -size[mine]))
        delta_cash = np.zeros((bars, last - first))
        flow = np.where(buy[mine], -size[mine] * price[mine], size[mine] * price[mine])
        np.add.at(delta_cash, at, flow - fees[mine])
        position = np.cumsum(delta_position, axis=0)
        value = init_cash[first:last] + np.cumsum(delta_cash, axis=0)
        value += position * (close if close.shape[1] == 1 else close[:, first:last])
        previous = np.vstack([init_cash[None, first:last], value[:-1]])
        block = np.divide(value, previous, out=np.ones_like(value), where=previous > 0) - 1.0
        returns[:, first:last] = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        in_market[:, first:last] = position > 0
    # A sell is preceded by the buy that opened its trade (one position at a time).
    sells = np.flatnonzero(~buy)
    opened = sells - 1
    paired = (opened >= 0) & (col[np.maximum(opened, 0)] == col[sells])
    paired &= buy[np.maximum(opened, 0)]
    sells, opened = sells[paired], opened[paired]
    entry_value = size[opened] * price[opened]
    pnl = size[sells] * price[sells] - fees[sells] - entry_value - fees[opened]
    trade_return = np.divide(pnl, entry_value, out=np.zeros_like(pnl), where=entry_value > 0)
    return GridPaths(
        returns=returns,
        in_market=in_market,
        trade_exit=idx[sells],
        trade_col=col[sells],
        trade_return=trade_return,
    )


def column_sharpes(returns: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
    """Per-bar Sharpe (mean / std, ddof 1) of every column over rows ``[start, end)``;
    0 for a flat column or fewer than two rows."""
    rows = returns[start:end]
    if rows.shape[0] < 2:
        return np.zeros(returns.shape[1])
    mean = rows.mean(axis=0)
    std = rows.std(axis=0, ddof=1)
    return np.divide(mean, std, out=np.zeros_like(mean), where=std >= FLAT)


def choose_column(paths: GridPaths, fit_end: int) -> int:
    """The combination with the best Sharpe on bars ``[0, fit_end)`` among those that
    closed a trade there (all of them when none did); the first one on a tie."""
    sharpe = column_sharpes(paths.returns, 0, fit_end)
    closed = paths.trade_col[paths.trade_exit < fit_end]
    traded = np.bincount(closed, minlength=paths.combinations) > 0
    if traded.any():
        sharpe = np.where(traded, sharpe, -np.inf)
    return int(np.argmax(sharpe))


@dataclass(frozen=True)
class WalkForward:
    """The stitched out-of-sample result: bars ``[start, end)`` of the development period."""

    folds: list[Fold]
    columns: list[int]
    final_column: int
    start: int
    end: int
    returns: np.ndarray
    in_market: np.ndarray
    trade_returns: np.ndarray


def walk_forward(paths: GridPaths, folds: list[Fold]) -> WalkForward:
    """Choose on each fold's past, collect its test block; ``final_column`` is chosen on
    the whole development period (the choice a later holdout evaluates)."""
    columns = [choose_column(paths, fold.fit_end) for fold in folds]
    returns, in_market, trades = [], [], []
    for fold, column in zip(folds, columns, strict=True):
        rows = slice(fold.test_start, fold.test_end)
        returns.append(paths.returns[rows, column])
        in_market.append(paths.in_market[rows, column])
        closed = (
            (paths.trade_col == column)
            & (paths.trade_exit >= fold.test_start)
            & (paths.trade_exit < fold.test_end)
        )
        trades.append(paths.trade_return[closed])
    bars = paths.returns.shape[0]
    return WalkForward(
        folds=folds,
        columns=columns,
        final_column=choose_column(paths, bars),
        start=folds[0].test_start,
        end=folds[-1].test_end,
        returns=np.concatenate(returns),
        in_market=np.concatenate(in_market),
        trade_returns=np.concatenate(trades),
    )
