"""Parameter grids and rules signals, checked against a hand-built crossover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec
from stratlab.strategies.expr import ExpressionError
from stratlab.strategies.rules import indicator_env, parameter_grid, range_values, rules_signals
from tests.fixtures.specs import sma_crossover


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1200, seed=5)


def test_grid_is_the_cartesian_product_with_integral_ints() -> None:
    grid = parameter_grid(sma_crossover(fast=(5, 15, 5), slow=(20, 30, 10)))
    assert grid == [
        {"fw": 5, "sw": 20},
        {"fw": 5, "sw": 30},
        {"fw": 10, "sw": 20},
        {"fw": 10, "sw": 30},
        {"fw": 15, "sw": 20},
        {"fw": 15, "sw": 30},
    ]
    assert all(isinstance(v, int) for combo in grid for v in combo.values())
    assert parameter_grid(StrategySpec(name="x")) == [{}]


def test_float_steps_do_not_accumulate_error() -> None:
    values = range_values(ParamRange(name="t", low=0.1, high=1.0, step=0.1))
    assert values == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert range_values(ParamRange(name="k", low=1.5, high=2.6, step=0.5)) == [1.5, 2.0, 2.5]
    assert range_values(ParamRange(name="n", low=3, high=3)) == [3]


def sma(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for t in range(window - 1, len(values)):
        out[t] = values[t - window + 1 : t + 1].mean()
    return out


def hand_crossover(close: np.ndarray, fw: int, sw: int) -> tuple[np.ndarray, np.ndarray]:
    fast, slow = sma(close, fw), sma(close, sw)
    entries = np.zeros(len(close), dtype=bool)
    exits = np.zeros(len(close), dtype=bool)
    for t in range(1, len(close)):
        entries[t] = fast[t] > slow[t] and fast[t - 1] <= slow[t - 1]
        exits[t] = fast[t] < slow[t] and fast[t - 1] >= slow[t - 1]
    return entries, exits


def test_rules_signals_match_a_hand_built_crossover(frame: pd.DataFrame) -> None:
    spec = sma_crossover(fast=(5, 20, 5), slow=(30, 60, 15))
    grid = parameter_grid(spec)
    entries, exits = rules_signals(spec, frame, grid)
    assert entries.shape == exits.shape == (len(frame), len(grid)) and entries.dtype == bool
    close = frame["close"].to_numpy()
    for column, combo in enumerate(grid):
        want_entries, want_exits = hand_crossover(close, int(combo["fw"]), int(combo["sw"]))
        np.testing.assert_array_equal(entries[:, column], want_entries, err_msg=str(combo))
        np.testing.assert_array_equal(exits[:, column], want_exits, err_msg=str(combo))
    assert entries.sum() > 10 * len(grid) // 2


def test_signals_never_use_later_bars(frame: pd.DataFrame) -> None:
    spec = sma_crossover(fast=(5, 10, 5), slow=(30, 40, 10)).model_copy(
        update={"entry": "crosses_above(fast, slow) and close > lag(close, 3)"}
    )
    grid = parameter_grid(spec)
    full_entries, full_exits = rules_signals(spec, frame, grid)
    head_entries, head_exits = rules_signals(spec, frame.iloc[:700], grid)
    np.testing.assert_array_equal(head_entries, full_entries[:700])
    np.testing.assert_array_equal(head_exits, full_exits[:700])


def test_indicator_env_exposes_prices_outputs_and_parameters(frame: pd.DataFrame) -> None:
    spec = StrategySpec(
        name="macd",
        indicators=[IndicatorRef(alias="m", kind="macd", params={"fast": "f"})],
        entry="m > m.signal",
        exit="m < m.signal",
        parameters=[ParamRange(name="f", low=5, high=10)],
    )
    env = indicator_env(spec, frame, {"f": 8})
    assert {"open", "high", "low", "close", "volume", "m", "m.macd", "m.signal", "m.hist"} <= set(
        env
    )
    np.testing.assert_array_equal(env["m"], env["m.macd"])
    assert env["f"] == 8.0 and isinstance(env["f"], float)


def test_parameters_can_appear_in_expressions(frame: pd.DataFrame) -> None:
    spec = StrategySpec(
        name="rsi band",
        indicators=[IndicatorRef(alias="r", kind="rsi")],
        entry="r < low_band",
        exit="r > 100 - low_band",
        parameters=[ParamRange(name="low_band", low=20, high=40, step=10)],
    )
    entries, _ = rules_signals(spec, frame, parameter_grid(spec))
    assert entries[:, 0].sum() <= entries[:, 1].sum() <= entries[:, 2].sum()


def test_bad_expressions_surface_as_expression_errors(frame: pd.DataFrame) -> None:
    spec = sma_crossover(fast=(5, 5, 1), slow=(20, 20, 1)).model_copy(update={"exit": "fast +"})
    with pytest.raises(ExpressionError):
        rules_signals(spec, frame, parameter_grid(spec))


def test_a_thousand_combination_grid_on_5000_bars_runs() -> None:
    # Speed is measured in perf/, not asserted; this only proves the large shape works.
    frame = synthetic_ohlcv(bars=5000, seed=1)
    spec = sma_crossover(fast=(5, 54, 1), slow=(60, 250, 10))
    grid = parameter_grid(spec)
    assert len(grid) == 1000
    entries, exits = rules_signals(spec, frame, grid)
    assert entries.shape == exits.shape == (5000, 1000) and entries.any(axis=0).all()
