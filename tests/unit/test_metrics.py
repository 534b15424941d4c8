"""compute_metrics against numbers worked out by hand, degenerate inputs, and grid scores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from stratlab.backtest.engine import Costs, simulate
from stratlab.backtest.metrics import (
    RATIO_CAP,
    closed_trades,
    compute_metrics,
    metrics_from_portfolio,
    score_columns,
)
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import BacktestMetrics

# Four bars from 2020-01-01 to 2022-01-01 (731 calendar days), starting from 100 in cash.
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
