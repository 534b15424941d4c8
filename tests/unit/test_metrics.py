"""compute_metrics against numbers worked out by hand, degenerate inputs, grid scores, and
annualisation from the spacing of bars."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from stratlab.backtest.engine import Costs, simulate
from stratlab.backtest.metrics import (
    RATIO_CAP,
    closed_trades,
    compute_metrics,
    median_bar_spacing,
    metrics_from_portfolio,
    periods_per_year,
    score_columns,
)
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import BacktestMetrics

# Four bars from 2020-01-01 to 2022-01-01 (731 calendar days), starting from 100 in cash,
# annualised as daily bars (252 a year) whatever their spacing, so the sums stay simple.
DATES = pd.DatetimeIndex(["2020-01-01", "2020-06-01", "2021-06-01", "2022-01-01"], name="ts")
EQUITY = pd.Series([110.0, 99.0, 99.0, 118.8], index=DATES)
TRADES = [0.10, -0.05, 0.20, 0.0]
IN_MARKET = np.array([True, True, False, True])
BENCHMARK = pd.Series([50.0, 55.0, 45.0, 60.0], index=DATES)


def hand_metrics(**overrides: object) -> BacktestMetrics:
    kwargs: dict = {
        "equity": EQUITY,
        "trade_returns": TRADES,
        "in_market": IN_MARKET,
        "benchmark_close": BENCHMARK,
        "initial_value": 100.0,
        "periods_per_year": 252,
    }
    kwargs.update(overrides)
    return compute_metrics(**kwargs)


def test_metrics_match_a_hand_computed_curve() -> None:
    m = hand_metrics()
    # total return: 118.8 / 100 - 1
    assert m.total_return == pytest.approx(0.188)
    # CAGR: 731 days = 731 / 365.25 years, so 1.188 ** (365.25 / 731) - 1 = 0.0898899...
    assert m.cagr == pytest.approx(1.188 ** (365.25 / 731) - 1)
    assert m.cagr == pytest.approx(0.0898899, abs=1e-7)
    # daily returns vs the 100 start: +0.10, -0.10, 0.00, +0.20 -> mean 0.05;
    # squared deviations 0.0025 + 0.0225 + 0.0025 + 0.0225 = 0.05, / (4 - 1) -> std sqrt(1/60)
    # Sharpe = 0.05 * sqrt(60) * sqrt(252) = 6.1481704...
    assert m.sharpe == pytest.approx(0.05 * math.sqrt(60) * math.sqrt(252))
    assert m.sharpe == pytest.approx(6.1481705, abs=1e-6)
    # downside: only -0.10 -> sqrt(0.01 / 4) = 0.05; Sortino = 0.05 / 0.05 * sqrt(252)
    assert m.sortino == pytest.approx(math.sqrt(252))
    # peak 110 then 99: (110 - 99) / 110 = 0.1
    assert m.max_drawdown == pytest.approx(0.1)
    # trades +0.10, -0.05, +0.20, 0.00: 2 winners of 4; profit factor 0.30 / 0.05 = 6
    assert m.trades == 4
    assert m.win_rate == pytest.approx(0.5)
    assert m.profit_factor == pytest.approx(6.0)
    # 3 of 4 bars in the market; buy and hold 50 -> 60
    assert m.exposure == pytest.approx(0.75)
    assert m.benchmark_return == pytest.approx(0.2)
    assert (m.start, m.end, m.bars) == (DATES[0].to_pydatetime(), DATES[-1].to_pydatetime(), 4)


def test_without_initial_value_the_first_bar_is_the_start() -> None:
    m = compute_metrics(
        equity=pd.Series(
            [100.0, 110.0, 99.0, 99.0, 118.8], index=pd.bdate_range("2021-01-04", periods=5)
        ),
        trade_returns=[],
        in_market=np.zeros(5, dtype=bool),
        benchmark_close=BENCHMARK,
    )
    # The same four returns as above, measured from the first bar's 100.
    assert m.total_return == pytest.approx(0.188)
    assert m.sharpe == pytest.approx(0.05 * math.sqrt(60) * math.sqrt(252))
    assert m.max_drawdown == pytest.approx(0.1)


def test_profit_factor_and_sortino_caps() -> None:
    only_wins = hand_metrics(trade_returns=[0.1, 0.2])
    assert (only_wins.profit_factor, only_wins.win_rate) == (RATIO_CAP, 1.0)
    only_losses = hand_metrics(trade_returns=[-0.1, -0.2])
    assert (only_losses.profit_factor, only_losses.win_rate) == (0.0, 0.0)
    huge = hand_metrics(trade_returns=[5000.0, -0.001])
    assert huge.profit_factor == RATIO_CAP
    rising = hand_metrics(equity=pd.Series([101.0, 102.0, 104.0, 105.0], index=DATES))
    assert rising.sortino == RATIO_CAP
    assert rising.max_drawdown == 0.0


def test_trades_with_nan_returns_are_ignored() -> None:
    m = hand_metrics(trade_returns=[0.1, float("nan"), -0.1])
    assert (m.trades, m.win_rate, m.profit_factor) == (2, 0.5, pytest.approx(1.0))


@pytest.mark.parametrize(
    "equity",
    [
        pd.Series([100.0] * 10, index=pd.bdate_range("2021-01-04", periods=10)),
        pd.Series([100.0], index=pd.bdate_range("2021-01-04", periods=1)),
        pd.Series([100.0, np.nan, 100.0], index=pd.bdate_range("2021-01-04", periods=3)),
        pd.Series([100.0, 0.0, 0.0], index=pd.bdate_range("2021-01-04", periods=3)),
        pd.Series([100.0, 1e9], index=pd.bdate_range("2021-01-04", periods=2)),
    ],
)
def test_degenerate_curves_give_finite_metrics(equity: pd.Series) -> None:
    constant = pd.Series(42.0, index=equity.index)
    m = compute_metrics(
        equity=equity,
        trade_returns=[],
        in_market=np.zeros(len(equity), dtype=bool),
        benchmark_close=constant,
        initial_value=100.0,
    )
    for name, value in m.model_dump().items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert (m.trades, m.win_rate, m.profit_factor, m.benchmark_return) == (0, 0.0, 0.0, 0.0)
    BacktestMetrics.model_validate_json(m.model_dump_json())  # JSON-safe


def test_flat_curve_is_all_zero() -> None:
    flat = pd.Series([100.0] * 10, index=pd.bdate_range("2021-01-04", periods=10))
    m = compute_metrics(
        equity=flat, trade_returns=[], in_market=np.zeros(10, bool), benchmark_close=flat
    )
    assert (m.total_return, m.cagr, m.sharpe, m.sortino, m.max_drawdown) == (0, 0, 0, 0, 0)


def test_empty_equity_gives_defaults() -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([]), dtype=float)
    m = compute_metrics(
        equity=empty, trade_returns=[], in_market=np.zeros(0, bool), benchmark_close=empty
    )
    assert m == BacktestMetrics()


@pytest.fixture(scope="module")
def grid_pf() -> vbt.Portfolio:
    frame = synthetic_ohlcv(bars=600, seed=11)
    rng = np.random.default_rng(3)
    entries = rng.random((600, 12)) < 0.05
    exits = rng.random((600, 12)) < 0.05
    entries[:, 0] = exits[:, 0] = False  # a column that never trades
    return simulate(frame, entries, exits, costs=Costs.from_bps(5, 5), window=(100, 600))


def test_score_columns_equals_the_metrics_sharpe(grid_pf: vbt.Portfolio) -> None:
    scores = score_columns(grid_pf)
    expected = [metrics_from_portfolio(grid_pf, column=c).sharpe for c in range(12)]
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
    assert scores[0] == 0.0
    # ... and vectorbt's own Sharpe of the same returns (zero risk-free, 252 days a year).
    vbt_sharpe = grid_pf.returns().vbt.returns(freq="1D", year_freq="252D").sharpe_ratio()
    np.testing.assert_allclose(scores[1:], vbt_sharpe.to_numpy()[1:], rtol=1e-9)


def test_closed_trades_match_vectorbt(grid_pf: vbt.Portfolio) -> None:
    counts = closed_trades(grid_pf)
    np.testing.assert_array_equal(counts, grid_pf.trades.closed.count().to_numpy())
    assert counts[0] == 0
    for column in (1, 5):
        assert metrics_from_portfolio(grid_pf, column=column).trades == counts[column]


def test_metrics_from_portfolio_needs_a_column_when_there_are_many(
    grid_pf: vbt.Portfolio,
) -> None:
    with pytest.raises(ValueError, match="column"):
        metrics_from_portfolio(grid_pf)


def hourly_index(
    days: int, *, per_day: int = 7, minutes: int = 60, tz: str | None = None
) -> pd.DatetimeIndex:
    """Bars from 09:30 each business day, ``minutes`` apart: by default hourly bars of a
    09:30-16:00 session, 7 a day."""
    sessions = pd.bdate_range("2024-01-02", periods=days)
    step = pd.Timedelta(minutes=minutes)
    stamps = [day + pd.Timedelta(hours=9.5) + k * step for day in sessions for k in range(per_day)]
    return pd.DatetimeIndex(stamps, name="ts", tz=tz)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2021-01-04", periods=300), 252.0),
        # holidays and a missing week do not make business days anything but daily
        (pd.bdate_range("2021-01-04", periods=300).delete([5, 40, 41, 42, 43, 44, 90]), 252.0),
        (pd.date_range("2021-01-01", periods=400, freq="D"), 252.0),
        (pd.date_range("2021-01-01", periods=100, freq="W-FRI"), 52.0),
        (pd.date_range("2015-01-01", periods=60, freq="ME"), 12.0),
        (pd.date_range("2015-01-01", periods=60, freq="BME"), 12.0),
        (pd.date_range("2000-01-01", periods=40, freq="QE"), 4.0),
        (hourly_index(30), 7 * 252.0),
        (hourly_index(30, per_day=13).delete(0), 13 * 252.0),  # a partial first day
        # 14:30-20:30 UTC is the same session; the dates are New York's
        (hourly_index(30, tz="America/New_York").tz_convert("UTC"), 7 * 252.0),
        (pd.date_range("2024-01-01", periods=24 * 60, freq="h"), 24 * 252.0),
        (hourly_index(5, per_day=78, minutes=5), 78 * 252.0),
        (pd.DatetimeIndex(["2024-01-02"]), 252.0),  # one bar: no spacing to measure
        (pd.DatetimeIndex([]), 252.0),
    ],
)
def test_periods_per_year_follows_the_bar_spacing(index: pd.DatetimeIndex, expected: float) -> None:
    assert periods_per_year(index) == expected


def test_median_bar_spacing_in_any_unit() -> None:
    index = pd.date_range("2024-01-02", periods=24 * 3, freq="h")
    assert median_bar_spacing(index.as_unit("s")) == pd.Timedelta(hours=1)
    assert median_bar_spacing(index.as_unit("ns")) == pd.Timedelta(hours=1)
    assert median_bar_spacing(index[:1]) is None
    assert periods_per_year(index.as_unit("us")) == 24 * 252.0


def test_hourly_metrics_annualise_by_bars_per_day() -> None:
    daily_index = pd.bdate_range("2024-01-02", periods=70)
    values = 100.0 * np.cumprod(1.0 + np.random.default_rng(5).normal(0.001, 0.01, 70))
    kwargs: dict[str, Any] = {
        "trade_returns": [],
        "in_market": np.ones(70, dtype=bool),
        "initial_value": 100.0,
    }
    daily = compute_metrics(
        equity=pd.Series(values, index=daily_index),
        benchmark_close=pd.Series(values, index=daily_index),
        **kwargs,
    )
    hourly_stamps = hourly_index(10)  # the same 70 values, 7 bars a day
    hourly = compute_metrics(
        equity=pd.Series(values, index=hourly_stamps),
        benchmark_close=pd.Series(values, index=hourly_stamps),
        **kwargs,
    )
    assert daily == compute_metrics(
        equity=pd.Series(values, index=daily_index),
        benchmark_close=pd.Series(values, index=daily_index),
        periods_per_year=252,
        **kwargs,
    )  # a daily curve's metrics are what they were with 252 fixed
    assert hourly.sharpe == pytest.approx(daily.sharpe * math.sqrt(7))
    assert hourly.sortino == pytest.approx(daily.sortino * math.sqrt(7))
    assert (hourly.total_return, hourly.max_drawdown) == (daily.total_return, daily.max_drawdown)


def test_hourly_portfolio_scores_agree_with_metrics_and_vectorbt() -> None:
    frame = synthetic_ohlcv(bars=7 * 80, seed=11).set_index(hourly_index(80))
    rng = np.random.default_rng(3)
    entries, exits = rng.random((7 * 80, 6)) < 0.05, rng.random((7 * 80, 6)) < 0.05
    pf = simulate(frame, entries, exits, costs=Costs.from_bps(5, 5), window=(70, 7 * 80))
    scores = score_columns(pf)
    expected = [metrics_from_portfolio(pf, column=c).sharpe for c in range(6)]
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
    # vectorbt's own Sharpe with the portfolio's own (hourly) frequency and a year of
    # 252 sessions of 7 hours
    assert pf.wrapper.freq == pd.Timedelta(hours=1)
    year = pd.Timedelta(hours=7 * 252)
    vbt_sharpe = pf.returns().vbt.returns(freq=pf.wrapper.freq, year_freq=year).sharpe_ratio()
    np.testing.assert_allclose(scores, vbt_sharpe.to_numpy(), rtol=1e-9)
    fixed = score_columns(pf, periods_per_year=252)
    np.testing.assert_allclose(scores, fixed * math.sqrt(7), rtol=1e-12)
