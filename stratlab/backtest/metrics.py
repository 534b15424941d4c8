"""Backtest metrics with stable, documented definitions.

``compute_metrics`` is pure (arrays in, a ``BacktestMetrics`` out) so every number can be
checked by hand; ``metrics_from_portfolio`` only extracts its inputs from a vectorbt
``Portfolio``; ``score_columns`` is the vectorised Sharpe used to rank a parameter grid.

Definitions (fractions, never percent; ``v`` is the equity curve, one value per bar at
the close; ``v_init`` is the value before the first bar, ``initial_value`` when given,
else ``v[0]``):

* ``total_return`` = ``v[-1] / v_init - 1``.
* ``cagr`` = ``(1 + total_return) ** (1 / years) - 1`` with ``years`` = calendar days
  from the first to the last bar / 365.25; 0 when that span is zero, -1 when all is lost.
* per-bar returns ``r[t] = v[t] / v[t-1] - 1``, with ``v[-1] = v_init`` when
  ``initial_value`` is given (else the first bar has no return).
* ``sharpe`` = ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``, zero risk-free
  rate; 0 with fewer than two returns or a flat curve (std below 1e-12).
  ``periods_per_year`` is inferred from the equity's timestamps unless given (see
  ``periods_per_year()``): 252 for daily bars, 52 weekly, 12 monthly, and 252 times the
  bars per trading day for intraday bars (7 hourly bars a session: 1764).
* ``sortino`` = ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(periods_per_year)``; with
  no downside it is ``RATIO_CAP`` when ``mean(r) > 0`` else 0; clipped to ±``RATIO_CAP``.
* ``max_drawdown`` = largest ``1 - v[t] / max(v_init, v[..t])``: a positive fraction.
* ``trades`` = closed trades; ``win_rate`` = trades with return > 0 / ``trades`` (0 when
  none); ``profit_factor`` = sum of winning trade returns / |sum of losing trade
  returns|, ``RATIO_CAP`` when there are wins and no losses, 0 without wins, and never
  above ``RATIO_CAP``. Trade returns are P&L after fees over entry value, so each trade
  weighs the same whatever its size.
* ``exposure`` = fraction of bars holding a position at the close.
* ``benchmark_return`` = buy-and-hold over the same bars: ``close[-1] / close[0] - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import vectorbt as vbt
from vectorbt.portfolio.enums import OrderSide

from stratlab.backtest._kernels import column_sharpe_nb
from stratlab.backtest._returns import FLAT
from stratlab.backtest.drawdown import max_drawdown
from stratlab.models.research import BacktestMetrics

TRADING_DAYS_PER_YEAR = 252.0
"""Trading days in a year: the periods per year of daily bars and the default of
``periods_per_year()`` when the spacing of bars cannot be measured."""

_NOMINAL_SPACING = (
    (1.0, 252.0),
    (7.0, 52.0),
    (365.25 / 12, 12.0),
    (365.25 / 4, 4.0),
    (365.25, 1.0),
)
"""(calendar days between bars, periods per year) of daily, weekly, monthly, quarterly and
yearly bars; a median spacing of a day or more is annualised as the nearest one."""

RATIO_CAP = 100.0
"""Ceiling of ``profit_factor`` and ``|sortino|``: both are unbounded when nothing is lost."""

_ORDER_FIELDS = ("col", "idx", "size", "price", "fees", "side")


def compute_metrics(
    *,
    equity: pd.Series,
    trade_returns: Sequence[float] | np.ndarray,
    in_market: np.ndarray,
    benchmark_close: pd.Series,
    periods_per_year: float | None = None,
    initial_value: float | None = None,
) -> BacktestMetrics:
    """Metrics of one equity curve (DatetimeIndex) and its closed trades' returns.

    ``periods_per_year`` annualises Sharpe and Sortino; by default it is inferred from the
    spacing of ``equity``'s timestamps with ``periods_per_year()``.
    """
    values = _clean_equity(equity)
    if values.size == 0:
        return BacktestMetrics()
    if periods_per_year is None:
        periods_per_year = _periods_per_year_of(equity.index)
    v_init = _initial(values, initial_value)
    returns = _returns(values, v_init if initial_value is not None else None)
    start, end = pd.Timestamp(equity.index[0]), pd.Timestamp(equity.index[-1])
    total_return = values[-1] / v_init - 1.0 if v_init > 0 else 0.0
    wins, trades, profit_factor = _trade_stats(trade_returns)
    exposure = np.asarray(in_market, dtype=bool)
    return BacktestMetrics(
        total_return=_finite(total_return),
        cagr=_cagr(total_return, start, end),
        sharpe=float(sharpe_ratios(returns[:, None], periods_per_year=periods_per_year)[0]),
        sortino=_sortino(returns, periods_per_year),
        max_drawdown=max_drawdown(values, v_init),
        win_rate=wins / trades if trades else 0.0,
        trades=trades,
        profit_factor=profit_factor,
        exposure=float(exposure.mean()) if exposure.size else 0.0,
        benchmark_return=_buy_and_hold(benchmark_close),
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        bars=int(values.size),
    )


def metrics_from_portfolio(
    pf: vbt.Portfolio,
    *,
    column: int | None = None,
    benchmark_close: pd.Series | None = None,
    periods_per_year: float | None = None,
) -> BacktestMetrics:
    """``compute_metrics`` of one column of ``pf`` (``column`` may be omitted when there
    is only one). The benchmark defaults to the portfolio's own close prices;
    ``periods_per_year`` to the one inferred from the portfolio's timestamps."""
    one = _select(pf, column)
    equity = one.value()
    close = one.close if benchmark_close is None else benchmark_close
    return compute_metrics(
        equity=equity,
        trade_returns=np.asarray(one.trades.closed.returns.values, dtype=np.float64),
        in_market=np.asarray(one.assets()) > 0,
        benchmark_close=pd.Series(np.asarray(close, dtype=np.float64).ravel()),
        periods_per_year=periods_per_year,
        initial_value=float(np.asarray(one.init_cash).ravel()[0]),
    )


def score_columns(pf: vbt.Portfolio, *, periods_per_year: float | None = None) -> np.ndarray:
    """Sharpe of every column of ``pf``, as ``compute_metrics`` defines it; always finite.
    ``periods_per_year`` defaults to the one inferred from the portfolio's timestamps.

    Computed straight from the order records in one numba pass per column, so ranking a
    grid of thousands of combinations never builds a (bars x combinations) value frame.
    """
    if periods_per_year is None:
        periods_per_year = _periods_per_year_of(pf.wrapper.index)
    records = pf.order_records
    # Per column, bars stay in time order. Fields are copied out of the record array so the
    # kernel always gets C-contiguous arrays (one compiled version, whatever the count).
    by_column = records[np.argsort(records["col"], kind="stable")]
    col, idx, size, price, fees, side = (np.ascontiguousarray(by_column[f]) for f in _ORDER_FIELDS)
    close = np.asarray(pf.close, dtype=np.float64)
    # vectorbt keeps close column-major, so the transpose is a free C-contiguous view (for
    # one column too); marked read-only either way, again for a single compiled version.
    close_by_column = np.ascontiguousarray(close.reshape(close.shape[0], -1).T).view()
    close_by_column.flags.writeable = False
    scores = column_sharpe_nb(
        close_by_column,
        col,
        idx,
        size,
        price,
        fees,
        side,
        np.array(pf.init_cash, dtype=np.float64, copy=True).reshape(-1),
        float(periods_per_year),
        FLAT,
    )
    return np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)


def closed_trades(pf: vbt.Portfolio) -> np.ndarray:
    """Closed trades of every column of ``pf``. Long-only all-in positions are closed by
    selling all of them at once, so every sell order closes exactly one trade."""
    records = pf.order_records
    sells = records["col"][records["side"] == OrderSide.Sell]
    return np.bincount(sells, minlength=pf.wrapper.shape_2d[1])


def sharpe_ratios(
    returns: np.ndarray, *, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> np.ndarray:
    """Annualised Sharpe of each column of a (bars, columns) array of periodic returns;
    non-finite returns count as 0, and flat or too-short columns score 0. Returns carry no
    timestamps: pass ``periods_per_year`` for anything but daily bars."""
    clean = np.where(np.isfinite(returns), returns, 0.0)
    bars = clean.shape[0]
    if bars < 2:
        return np.zeros(clean.shape[1])
    mean = clean.mean(axis=0)
    std = clean.std(axis=0, ddof=1)
    flat = std < FLAT
    ratio = np.divide(mean, std, out=np.zeros_like(mean), where=~flat)
    return ratio * math.sqrt(periods_per_year)


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year of ``index``, from the median spacing between its bars.

    * Intraday (median spacing under a day): 252 times the median number of bars per
      calendar date (in the index's own time zone), e.g. 7 hourly bars a session -> 1764,
      24 a day -> 6048. Dates count only when they have bars, so nights, weekends and
      holidays are not periods.
    * A day or more: the nearest of daily (1 day -> 252), weekly (7 days -> 52), monthly
      (~30.4 days -> 12), quarterly (-> 4) and yearly (-> 1) bars, nearest on a log scale.
      Business-day bars have a median spacing of one day (weekends and holidays are the
      exceptions), so they count as daily: 252.

    Calendar-day markets (crypto every day of the week) are annualised like exchange
    trading days too: 252 per year for daily bars. With fewer than two bars, or an index
    that is not a ``DatetimeIndex``, the spacing is unknown and the answer is 252.
    """
    spacing = median_bar_spacing(index) if isinstance(index, pd.DatetimeIndex) else None
    if spacing is None:
        return TRADING_DAYS_PER_YEAR
    days = spacing / pd.Timedelta(days=1)
    if days < 1.0:
        return max(_median_bars_per_date(index), 1.0) * TRADING_DAYS_PER_YEAR
    _, periods = min(_NOMINAL_SPACING, key=lambda row: abs(math.log(days / row[0])))
    return periods


def median_bar_spacing(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """Median time between consecutive bars; None with fewer than two bars or when the
    index is not increasing (a median spacing of zero or less)."""
    if len(index) < 2:
        return None
    ticks = np.diff(index.asi8)  # in the index's own unit (ns, us, ms or s)
    median = float(np.median(ticks))
    if not median > 0:
        return None
    return pd.Timedelta(median, unit=index.unit)


def _median_bars_per_date(index: pd.DatetimeIndex) -> float:
    # Calendar dates in the index's time zone: a session must not straddle UTC midnight.
    local = index.tz_localize(None) if index.tz is not None else index
    ticks_per_day = pd.Timedelta(days=1) // pd.Timedelta(1, unit=local.unit)
    _, counts = np.unique(local.asi8 // ticks_per_day, return_counts=True)
    return float(np.median(counts))


def _periods_per_year_of(index: pd.Index) -> float:
    # periods_per_year() under another name: the functions taking a periods_per_year
    # argument shadow it.
    if isinstance(index, pd.DatetimeIndex):
        return periods_per_year(index)
    return TRADING_DAYS_PER_YEAR


def _clean_equity(equity: pd.Series) -> np.ndarray:
    # A missing value carries the last known one: a gap in prices is not a loss.
    values = pd.Series(np.asarray(equity, dtype=np.float64)).ffill().bfill()
    return values.to_numpy(dtype=np.float64)


def _initial(values: np.ndarray, initial_value: float | None) -> float:
    if initial_value is not None and math.isfinite(initial_value) and initial_value > 0:
        return float(initial_value)
    return float(values[0])


def _returns(values: np.ndarray, v_init: float | None) -> np.ndarray:
    previous = values[:-1] if v_init is None else np.concatenate(([v_init], values[:-1]))
    current = values[1:] if v_init is None else values
    safe = previous > 0
    return np.divide(current - previous, previous, out=np.zeros_like(current), where=safe)


def _cagr(total_return: float, start: pd.Timestamp, end: pd.Timestamp) -> float:
    years = (end - start).total_seconds() / (365.25 * 86_400)
    growth = 1.0 + total_return
    if years <= 0 or not math.isfinite(growth):
        return 0.0
    if growth <= 0:
        return -1.0
    # Clamped in log space so a huge return over a few days stays a (huge) finite number.
    return math.exp(min(math.log(growth) / years, 700.0)) - 1.0


def _sortino(returns: np.ndarray, periods_per_year: float) -> float:
    if returns.size < 2:
        return 0.0
    mean = float(returns.mean())
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside < FLAT:
        return RATIO_CAP if mean > FLAT else 0.0
    ratio = mean / downside * math.sqrt(periods_per_year)
    return float(np.clip(ratio, -RATIO_CAP, RATIO_CAP))


def _trade_stats(trade_returns: Sequence[float] | np.ndarray) -> tuple[int, int, float]:
    """(winning trades, closed trades, profit factor) of finite trade returns."""
    returns = np.asarray(trade_returns, dtype=np.float64).ravel()
    returns = returns[np.isfinite(returns)]
    gross_profit = float(returns[returns > 0].sum())
    gross_loss = float(-returns[returns < 0].sum())
    if gross_loss > 0:
        profit_factor = min(gross_profit / gross_loss, RATIO_CAP)
    else:
        profit_factor = RATIO_CAP if gross_profit > 0 else 0.0
    return int((returns > 0).sum()), int(returns.size), profit_factor


def _buy_and_hold(close: pd.Series) -> float:
    prices = np.asarray(close, dtype=np.float64).ravel()
    prices = prices[np.isfinite(prices)]
    if prices.size < 2 or prices[0] <= 0:
        return 0.0
    return _finite(prices[-1] / prices[0] - 1.0)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _select(pf: vbt.Portfolio, column: int | None) -> vbt.Portfolio:
    if pf.wrapper.ndim == 1:
        return pf
    if column is None:
        if pf.wrapper.shape_2d[1] != 1:
            raise ValueError(f"pf has {pf.wrapper.shape_2d[1]} columns: pass column=")
        column = 0
    return pf[pf.wrapper.columns[column]]
