"""fit_rules: one batched run per window, the selection rule, and no peeking at test data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratlab.backtest.engine import Costs
from stratlab.backtest.runner import backtest_signals
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec, TrainingReport
from stratlab.strategies.fitting import fit_rules, select_combination
from stratlab.strategies.rules import parameter_grid, rules_signals
from stratlab.strategies.validation import StrategyValidationError

COSTS = Costs.from_bps(5, 5)

CROSSOVER = StrategySpec(
    name="sma crossover",
    indicators=[
        IndicatorRef(alias="fast", kind="sma", params={"window": "fw"}),
        IndicatorRef(alias="slow", kind="sma", params={"window": "sw"}),
    ],
    entry="crosses_above(fast, slow)",
    exit="crosses_below(fast, slow)",
    parameters=[
        ParamRange(name="fw", low=3, high=18, step=3),
        ParamRange(name="sw", low=20, high=60, step=20),
    ],
    stop_loss=0.1,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1500, seed=7)


@pytest.fixture(scope="module")
def report(frame: pd.DataFrame) -> TrainingReport:
    return fit_rules(CROSSOVER, split_by_time(frame), costs=COSTS)


def comparable(report: TrainingReport) -> dict:
    return report.model_dump(exclude={"duration_ms"})


def test_report_describes_the_fit(frame: pd.DataFrame, report: TrainingReport) -> None:
    splits = split_by_time(frame)
    assert report.kind == "rules" and report.grid_size == 18
    assert report.best_params in [
        {k: float(v) for k, v in p.items()} for p in parameter_grid(CROSSOVER)
    ]
    assert report.splits == splits.describe()
    assert report.train_metrics is not None and report.validation_metrics is not None
    start, end = splits.bounds("validation")
    assert report.validation_metrics.bars == end - start
    assert report.validation_metrics.start == frame.index[start]
    assert report.train_metrics.bars == splits.bounds("train")[1]
    assert report.duration_ms > 0


@pytest.mark.parametrize("garbage", [np.nan, 1e9, -5.0])
def test_fit_never_reads_the_test_split(
    frame: pd.DataFrame, report: TrainingReport, garbage: float
) -> None:
    start, _ = split_by_time(frame).bounds("test")
    spoiled = frame.copy()
    spoiled.iloc[start:] = garbage
    assert comparable(fit_rules(CROSSOVER, split_by_time(spoiled), costs=COSTS)) == comparable(
        report
    )


def test_batched_fit_picks_what_single_backtests_pick(
    frame: pd.DataFrame, report: TrainingReport
) -> None:
    """Brute force: one backtest per combination and window, then the selection rule."""
    splits = split_by_time(frame)
    history = splits.through("validation")
    grid = parameter_grid(CROSSOVER)
    entries, exits = rules_signals(CROSSOVER, history, grid)
    runs = {
        name: [
            backtest_signals(
                history,
                entries[:, i],
                exits[:, i],
                window=splits.bounds(name),
                costs=COSTS,
                stop_loss=CROSSOVER.stop_loss,
            ).metrics
            for i in range(len(grid))
        ]
        for name in ("train", "validation")
    }
    traded = [i for i, m in enumerate(runs["validation"]) if m.trades >= 1]
    assert traded, "the constructed case must have combinations that trade"
    best = max(traded, key=lambda i: (runs["validation"][i].sharpe, runs["train"][i].sharpe))
    assert report.best_params == {k: float(v) for k, v in grid[best].items()}
    assert report.validation_metrics == runs["validation"][best]
    assert report.train_metrics == runs["train"][best]


def sawtooth(cycles: int = 60) -> pd.DataFrame:
    """Closes climb 100, 101, ..., 109 and gap back down to 100, every ten bars."""
    step = np.tile(np.arange(10.0), cycles)
    close = 100.0 + step
    open_ = np.where(step == 0, 100.0, close - 1.0)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        },
        index=pd.bdate_range("2010-01-04", periods=len(close), name="ts"),
    )


def test_fit_picks_the_known_best_exit_on_a_sawtooth() -> None:
    """Buy after each gap down at 100; selling at the open after the close reaches ``lvl``
    rides more of the +1-a-bar climb the higher ``lvl`` is, so 108 is best. At 109 the exit
    fills after the next gap down and gives the whole climb back."""
    spec = StrategySpec(
        name="sawtooth",
        entry="close < lag(close, 1)",
        exit="close >= lvl",
        parameters=[ParamRange(name="lvl", low=102, high=109, step=1)],
    )
    report = fit_rules(spec, split_by_time(sawtooth()), costs=Costs())
    assert report.best_params == {"lvl": 108.0}
    assert report.validation_metrics is not None
    assert report.validation_metrics.win_rate == 1.0
    assert report.validation_metrics.trades == 12  # one round trip per ten-bar cycle


def test_selection_rule() -> None:
    # best validation Sharpe among combinations that traded (column 2 did not trade)
    assert (
        select_combination(
            validation_sharpe=np.array([0.5, 1.0, 3.0]),
            validation_trades=np.array([2, 1, 0]),
            train_sharpe=np.array([0.0, 0.0, 9.0]),
        )
        == 1
    )
    # a tie on validation Sharpe goes to the better train Sharpe
    assert (
        select_combination(
            validation_sharpe=np.array([1.0, 1.0, 0.2]),
            validation_trades=np.array([1, 1, 1]),
            train_sharpe=np.array([0.1, 0.7, 2.0]),
        )
        == 1
    )
    # nothing traded in validation: best train Sharpe
    assert (
        select_combination(
            validation_sharpe=np.zeros(3),
            validation_trades=np.zeros(3, dtype=int),
            train_sharpe=np.array([0.1, np.nan, 0.3]),
        )
        == 2
    )
    # a complete tie picks the first combination
    assert (
        select_combination(
            validation_sharpe=np.ones(3),
            validation_trades=np.ones(3, dtype=int),
            train_sharpe=np.ones(3),
        )
        == 0
    )


def test_grid_larger_than_the_cap_is_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(StrategyValidationError):
        fit_rules(CROSSOVER, split_by_time(frame), costs=COSTS, max_grid_size=10)
