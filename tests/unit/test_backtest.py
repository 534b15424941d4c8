"""The engine's execution model: next-bar-open fills, windows, stops and their fill order,
costs, bar frequency; the runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from stratlab.backtest._kernels import column_sharpe_nb, simulate_long_only_nb
from stratlab.backtest.engine import Costs, simulate
from stratlab.backtest.metrics import metrics_from_portfolio, score_columns
from stratlab.backtest.runner import backtest_signals
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.strategies.fitting import backtest_rules
from stratlab.strategies.rules import rules_signals
from tests.fixtures.specs import sma_crossover

BUY, SELL = 0, 1


def bars(opens: list[float], *, closes: list[float] | None = None, lows=None, highs=None):
    """A small frame whose opens differ from its closes, so a fill price tells which it is."""
    o = np.asarray(opens, dtype=float)
    c = o + 0.5 if closes is None else np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "open": o,
            "high": np.maximum(o, c) + 0.5 if highs is None else np.asarray(highs, float),
            "low": np.minimum(o, c) - 0.5 if lows is None else np.asarray(lows, float),
            "close": c,
            "volume": 1.0,
        },
        index=pd.bdate_range("2024-01-01", periods=len(o), name="ts"),
    )


def signal(n: int, *at: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(at)] = True
    return out


STAIRS = bars([10, 11, 12, 13, 14, 15])  # closes 10.5 .. 15.5


def test_costs_from_bps_and_validation() -> None:
    assert Costs.from_bps(5, 5) == Costs(fees=0.0005, slippage=0.0005)
    with pytest.raises(ValueError):
        Costs(fees=-0.1)
    with pytest.raises(ValueError):
        Costs(slippage=float("nan"))


def test_signals_fill_at_the_next_bars_open_with_costs() -> None:
    costs = Costs(fees=0.001, slippage=0.002)
    pf = simulate(STAIRS, signal(6, 0), signal(6, 2), costs=costs)
    orders = pf.order_records
    assert orders["side"].tolist() == [BUY, SELL]
    assert orders["idx"].tolist() == [1, 3]  # the bars after the signals
    # open[1] = 11 plus 0.2% slippage (the close would be 11.5); open[3] = 13 minus 0.2%.
    assert orders["price"].tolist() == pytest.approx([11 * 1.002, 13 * 0.998])
    # all in: size * price * (1 + fees) spends exactly the 100,000 of cash
    size = 100_000 / (11.022 * 1.001)
    assert orders["size"].tolist() == pytest.approx([size, size])
    assert orders["fees"].tolist() == pytest.approx([size * 11.022 * 0.001, size * 12.974 * 0.001])

    m = metrics_from_portfolio(pf)
    final_cash = size * 12.974 * 0.999
    assert m.total_return == pytest.approx(final_cash / 100_000 - 1)
    assert m.trades == 1 and m.win_rate == 1.0
    # exposure: in the market at the close of bars 1 and 2 of 6
    assert m.exposure == pytest.approx(2 / 6)
    assert m.benchmark_return == pytest.approx(15.5 / 10.5 - 1)
    # equity is valued at the close: bar 1 holds `size` shares at 11.5 and no cash
    equity = pf.value()[0]
    assert equity.iloc[0] == 100_000
    assert equity.iloc[1] == pytest.approx(size * 11.5)
    assert equity.iloc[-1] == pytest.approx(final_cash)


def test_vectorbt_trade_return_is_what_metrics_use() -> None:
    pf = simulate(STAIRS, signal(6, 0), signal(6, 2), costs=Costs(fees=0.001, slippage=0.002))
    # P&L after both fees over the entry value: (12.974 - 11.022 - fees per unit) / 11.022
    expected = (12.974 - 11.022 - 0.011022 - 0.012974) / 11.022
    assert pf.trades.closed.returns.values[0] == pytest.approx(expected)


def test_a_signal_on_the_last_bar_is_never_filled() -> None:
    assert len(simulate(STAIRS, signal(6, 5), signal(6), costs=Costs()).order_records) == 0
    held = simulate(STAIRS, signal(6, 0), signal(6, 5), costs=Costs())
    assert held.order_records["side"].tolist() == [BUY]  # the last bar's exit never fills
    assert metrics_from_portfolio(held).trades == 0  # an open position is not a closed trade


def test_window_starts_flat_and_takes_a_fill_from_the_bar_before() -> None:
    pf = simulate(STAIRS, signal(6, 1), signal(6), costs=Costs(), window=(2, 6))
    assert pf.wrapper.index.equals(STAIRS.index[2:])
    orders = pf.order_records
    assert orders["idx"].tolist() == [0] and orders["price"].tolist() == [12.0]
    assert pf.value()[0].iloc[0] == pytest.approx(100_000 / 12 * 12.5)
    # a signal two bars before the window is history: it was never filled in this window
    assert (
        len(simulate(STAIRS, signal(6, 0), signal(6), costs=Costs(), window=(2, 6)).order_records)
        == 0
    )


@pytest.mark.parametrize(
    ("lows", "opens", "stop_loss", "take_profit", "exit_price"),
    [
        ([95, 85, 94, 99, 99], [100, 100, 99, 99, 99], 0.05, None, 95.0),  # hit intrabar
        ([95, 85, 89, 99, 99], [100, 100, 90, 99, 99], 0.05, None, 90.0),  # gap: the open
        ([95, 85, 96, 99, 99], [100, 100, 101, 99, 99], None, 0.10, 110.0),  # take profit
    ],
)
def test_stops_are_measured_from_the_fill(lows, opens, stop_loss, take_profit, exit_price) -> None:
    frame = bars(
        opens, closes=[100, 100, 100, 100, 100], lows=lows, highs=[101, 101, 112, 101, 101]
    )
    pf = simulate(
        frame,
        signal(5, 0),
        signal(5),
        costs=Costs(),
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    orders = pf.order_records
    # Entry fills at bar 1's open (100); bar 1's own low of 85 does not stop it out,
    # because vectorbt checks stops from the bar after the fill.
    assert orders["idx"].tolist() == [1, 2]
    assert orders["price"].tolist() == pytest.approx([100.0, exit_price])


# An entry at bar 0 fills at bar 1's open (100 + 0.1% slippage = 100.1); an exit signal
# at bar 1 fills at bar 2's open (104). Bars 1 and 2 both reach 108: bar 1's high does not
# count (stops start on the bar after the fill), bar 2's would fill a 5% take profit.
EXIT_BAR: dict[str, list[float]] = {
    "opens": [100.0, 100.0, 104.0, 100.0, 100.0],
    "closes": [100.0, 100.0, 104.0, 100.0, 100.0],
    "highs": [101.0, 108.0, 108.0, 101.0, 101.0],
    "lows": [99.0, 99.0, 103.0, 99.0, 99.0],
}


@pytest.mark.parametrize(
    ("bar_2", "stop_loss", "take_profit", "conservative", "optimistic"),
    [
        # the take profit (100.1 * 1.05) is reached after the open the exit sells at
        ({}, None, 0.05, 104.0, 100.1 * 1.05),
        # the stop loss (100.1 * 0.95) is reached after the open: the exit still sells first
        ({"open": 99.0, "low": 94.0}, 0.05, None, 99.0, 100.1 * 0.95),
        # the open gaps through the stop loss: the exit and the stop are the same order
        ({"open": 90.0, "low": 89.0}, 0.05, 0.05, 90.0, 90.0),
        # the open gaps through the take profit: the same order again
        ({"open": 106.0}, None, 0.05, 106.0, 106.0),
    ],
)
def test_an_exit_filled_at_the_open_comes_before_a_stop_in_the_same_bar(
    bar_2, stop_loss, take_profit, conservative, optimistic
) -> None:
    frame = bars(**EXIT_BAR)
    for column, value in bar_2.items():
        frame.iloc[2, frame.columns.get_loc(column)] = value
    costs = Costs(fees=0.001, slippage=0.001)
    prices = {}
    for fill_order in ("conservative", "optimistic"):
        pf = simulate(
            frame,
            signal(5, 0),
            signal(5, 1),
            costs=costs,
            stop_loss=stop_loss,
            take_profit=take_profit,
            fill_order=fill_order,
        )
        orders = pf.order_records
        assert orders["idx"].tolist() == [1, 2] and orders["side"].tolist() == [BUY, SELL]
        assert orders["size"][0] == orders["size"][1]  # the whole position, either way
        prices[fill_order] = orders["price"][1]
    # every sell pays the slippage, at the open or at the stop
    assert prices["conservative"] == pytest.approx(conservative * 0.999, rel=1e-12)
    assert prices["optimistic"] == pytest.approx(optimistic * 0.999, rel=1e-12)


def test_an_exit_cancelled_by_an_entry_leaves_the_stops_live() -> None:
    # Entry and exit both fill at bar 2: vectorbt ignores the pair, so no exit sells at the
    # open and bar 2's take profit still fills, in either order.
    frame = bars(**EXIT_BAR)
    for fill_order in ("conservative", "optimistic"):
        pf = simulate(
            frame,
            signal(5, 0, 1),
            signal(5, 1),
            costs=Costs(),
            take_profit=0.05,
            fill_order=fill_order,
        )
        assert pf.order_records["idx"].tolist() == [1, 2]
        assert pf.order_records["price"].tolist() == pytest.approx([100.0, 105.0])


def test_fill_order_is_checked() -> None:
    with pytest.raises(ValueError, match="fill_order"):
        simulate(STAIRS, signal(6), signal(6), costs=Costs(), fill_order="stop_first")  # type: ignore[arg-type]


def _vectorbt_from_signals(frame, entries, exits, *, window, stop_loss, take_profit):
    """vectorbt's own ``Portfolio.from_signals`` under the engine's fill model."""
    filled_e, filled_x = np.roll(entries, 1, axis=0), np.roll(exits, 1, axis=0)
    filled_e[0] = filled_x[0] = False
    col = {name: frame[name].to_numpy()[window, None] for name in frame.columns}
    return vbt.Portfolio.from_signals(
        col["close"],
        filled_e[window],
        filled_x[window],
        price=col["open"],
        open=col["open"],
        high=col["high"],
        low=col["low"],
        fees=0.001,
        slippage=0.002,
        sl_stop=np.nan if stop_loss is None else stop_loss,
        tp_stop=np.nan if take_profit is None else take_profit,
        stop_entry_price="fillprice",
        stop_exit_price="stopmarket",
        direction="longonly",
        init_cash=100_000.0,
        freq="1D",
    )


@pytest.mark.parametrize(
    ("fill_order", "stop_loss", "take_profit"),
    [
        ("optimistic", None, None),
        ("optimistic", 0.03, 0.06),
        ("optimistic", 0.02, None),
        ("conservative", None, None),  # without stops the two orders are the same
    ],
)
def test_engine_equals_vectorbt_from_signals(fill_order, stop_loss, take_profit) -> None:
    # vectorbt leaves this kernel out of numba's disk cache; caching it saves every later
    # test session the seconds it takes to compile.
    vbt.portfolio.nb.simulate_from_signals_nb.enable_caching()
    frame = synthetic_ohlcv(bars=500, seed=2)
    rng = np.random.default_rng(0)
    entries, exits = rng.random((500, 8)) < 0.05, rng.random((500, 8)) < 0.05
    ours = simulate(
        frame,
        entries,
        exits,
        costs=Costs(fees=0.001, slippage=0.002),
        stop_loss=stop_loss,
        take_profit=take_profit,
        window=(50, 450),
        fill_order=fill_order,
    )
    reference = _vectorbt_from_signals(
        frame,
        entries,
        exits,
        window=slice(50, 450),
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    assert len(ours.order_records) > 20
    for field in ("col", "idx", "size", "price", "fees", "side"):
        np.testing.assert_array_equal(ours.order_records[field], reference.order_records[field])


def test_with_stops_the_conservative_order_departs_from_vectorbt() -> None:
    # The same signals as above: some exits fill on a bar that also reaches a stop, and
    # there the conservative order sells at the open where vectorbt fills the stop.
    frame = synthetic_ohlcv(bars=500, seed=2)
    rng = np.random.default_rng(0)
    entries, exits = rng.random((500, 8)) < 0.05, rng.random((500, 8)) < 0.05
    ours = simulate(
        frame,
        entries,
        exits,
        costs=Costs(fees=0.001, slippage=0.002),
        stop_loss=0.03,
        take_profit=0.06,
        window=(50, 450),
    )
    reference = _vectorbt_from_signals(
        frame, entries, exits, window=slice(50, 450), stop_loss=0.03, take_profit=0.06
    )
    assert not np.array_equal(ours.order_records["price"], reference.order_records["price"])


def test_repeated_calls_do_not_recompile() -> None:
    frame = synthetic_ohlcv(bars=300, seed=1)
    entries = np.zeros(300, dtype=bool)
    score_columns(simulate(frame, entries, entries, costs=Costs()))
    compiled = (len(simulate_long_only_nb.signatures), len(column_sharpe_nb.signatures))
    rng = np.random.default_rng(1)
    grid = rng.random((300, 5)) < 0.1
    runs = [
        simulate(frame, grid, ~grid, costs=Costs(fees=0.01), stop_loss=0.05, window=(10, 200)),
        simulate(frame, grid.astype(float), grid[::-1], costs=Costs(), take_profit=0.2),
        simulate(frame, entries, entries, costs=Costs(), window=(0, 1)),
        simulate(frame.iloc[::2], grid[::2, 0], grid[::2, 1], costs=Costs()),
        # stop checks against masked (bars, columns) highs and lows, or the (bars, 1) ones
        simulate(frame, grid[:, 0], grid[:, 1], costs=Costs(), stop_loss=0.01),
        simulate(frame, grid, grid[::-1], costs=Costs(), stop_loss=0.01, fill_order="optimistic"),
    ]
    for pf in runs:
        score_columns(pf)
    assert compiled == (1, 1)
    assert (len(simulate_long_only_nb.signatures), len(column_sharpe_nb.signatures)) == compiled


def test_the_portfolio_frequency_is_the_bars_spacing() -> None:
    daily = synthetic_ohlcv(bars=300, seed=1)
    never = np.zeros(300, dtype=bool)
    assert simulate(daily, never, never, costs=Costs()).wrapper.freq == pd.Timedelta(days=1)
    hourly = daily.set_index(pd.date_range("2024-01-02 09:30", periods=300, freq="h"))
    pf = simulate(hourly, never, never, costs=Costs(), window=(100, 101))
    # measured on the whole frame, so a one-bar window still has it
    assert pf.wrapper.freq == pd.Timedelta(hours=1)
    assert simulate(STAIRS.iloc[:1], signal(1), signal(1), costs=Costs()).wrapper.freq == (
        pd.Timedelta(days=1)
    )


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        simulate(STAIRS, signal(5), signal(5), costs=Costs())
    with pytest.raises(ValueError, match="window"):
        simulate(STAIRS, signal(6), signal(6), costs=Costs(), window=(4, 4))
    with pytest.raises(ValueError, match="stop_loss"):
        simulate(STAIRS, signal(6), signal(6), costs=Costs(), stop_loss=-0.1)


SPEC = sma_crossover(fast=(5, 15, 5), slow=(30, 60, 30), stop_loss=0.08)


def test_backtest_rules_runs_on_the_test_window_only() -> None:
    frame = synthetic_ohlcv(bars=1000, seed=4)
    splits = split_by_time(frame)
    run = backtest_rules(SPEC, {"fw": 10, "sw": 30}, splits, costs=Costs.from_bps(5, 5))
    start, end = splits.bounds("test")
    assert run.equity.index.equals(frame.index[start:end])
    assert run.metrics.bars == end - start and run.metrics.start == frame.index[start]
    assert run.benchmark.iloc[0] == pytest.approx(100_000 * 1.0)
    assert run.benchmark.iloc[-1] == pytest.approx(
        100_000 * frame["close"].iloc[end - 1] / frame["close"].iloc[start]
    )
    assert run.metrics.benchmark_return == pytest.approx(run.benchmark.iloc[-1] / 100_000 - 1)
    assert (run.drawdown >= 0).all()
    assert run.drawdown.max() == pytest.approx(run.metrics.max_drawdown)
    # Same as backtesting the signals computed on the history through the test split.
    entries, exits = rules_signals(SPEC, frame, [{"fw": 10, "sw": 30}])
    direct = backtest_signals(
        frame,
        entries,
        exits,
        window=(start, end),
        costs=Costs.from_bps(5, 5),
        stop_loss=0.08,
        take_profit=None,
    )
    assert direct.metrics == run.metrics


def test_backtest_signals_takes_one_column() -> None:
    with pytest.raises(ValueError, match="one column"):
        backtest_signals(
            STAIRS,
            np.zeros((6, 2), bool),
            np.zeros((6, 2), bool),
            window=(0, 6),
            costs=Costs(),
        )


def test_constant_prices_give_finite_metrics() -> None:
    flat = bars([100.0] * 50, closes=[100.0] * 50, lows=[100.0] * 50, highs=[100.0] * 50)
    run = backtest_signals(
        flat, signal(50, 3, 20), signal(50, 10, 30), window=(0, 50), costs=Costs.from_bps(5, 5)
    )
    m = run.metrics
    assert m.trades == 2 and m.win_rate == 0.0  # costs make each round trip a small loss
    assert m.total_return < 0 and m.max_drawdown > 0 and m.benchmark_return == 0.0
    assert all(np.isfinite(v) for v in m.model_dump().values() if isinstance(v, float))
