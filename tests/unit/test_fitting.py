"""fit_rules: one batched run, walk-forward folds chosen on the past, and no peeking at
the holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratlab.backtest.engine import Costs
from stratlab.backtest.runner import backtest_signals
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import ParamRange, StrategySpec, TrainingReport
from stratlab.strategies.fitting import fit_rules, trial_stats
from stratlab.strategies.rules import parameter_grid, rules_signals
from stratlab.strategies.validation import StrategyValidationError
from tests.fixtures.specs import sma_crossover

COSTS = Costs.from_bps(5, 5)

CROSSOVER = sma_crossover(fast=(3, 18, 3), slow=(20, 60, 20), stop_loss=0.1)


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
    dev = splits.bounds("validation")[1]
    wf = report.walk_forward
    assert wf is not None and len(wf.folds) == 5
    first = wf.folds[0].test_start
    assert first == round(dev * 0.4) and wf.folds[-1].test_end == dev
    assert all(a.test_end == b.test_start for a, b in zip(wf.folds, wf.folds[1:], strict=False))
    assert all(f.fit_end <= f.test_start for f in wf.folds)
    # the out-of-sample record is the stitched test blocks; in-sample is the whole period
    assert report.validation_metrics.bars == wf.oos_bars == dev - first
    assert report.validation_metrics.start == frame.index[first]
    assert report.validation_metrics.trades == wf.trades
    assert report.train_metrics.bars == dev
    assert report.trials is not None and report.trials.n_trials == 18
    assert 1.0 <= report.trials.n_effective <= 18.0
    assert report.pbo is not None and 0.0 <= report.pbo <= 1.0
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


def test_walk_forward_picks_what_single_backtests_pick(
    frame: pd.DataFrame, report: TrainingReport
) -> None:
    """Brute force: one backtest per combination over the development period, then each
    fold's choice by Sharpe on its past, and the stitched test blocks."""
    splits = split_by_time(frame)
    history = splits.through("validation")
    dev = len(history)
    grid = parameter_grid(CROSSOVER)
    entries, exits = rules_signals(CROSSOVER, history, grid)
    returns = []
    for i in range(len(grid)):
        run = backtest_signals(
            history,
            entries[:, i],
            exits[:, i],
            window=(0, dev),
            costs=COSTS,
            stop_loss=CROSSOVER.stop_loss,
        )
        equity = np.concatenate(([100_000.0], run.equity.to_numpy()))
        returns.append(equity[1:] / equity[:-1] - 1.0)
    matrix = np.column_stack(returns)
    wf = report.walk_forward
    assert wf is not None
    stitched = []
    for fold in wf.folds:
        past = matrix[: fold.fit_end]
        sharpe = past.mean(axis=0) / past.std(axis=0, ddof=1)
        best = int(np.argmax(sharpe))  # every combination of this grid trades early on
        assert fold.params == {k: float(v) for k, v in grid[best].items()}
        stitched.append(matrix[fold.test_start : fold.test_end, best])
    oos = np.concatenate(stitched)
    assert report.validation_metrics is not None
    assert report.validation_metrics.total_return == pytest.approx(
        np.prod(1.0 + oos) - 1.0, rel=1e-9, abs=1e-12
    )
    assert wf.sharpe_per_bar == pytest.approx(oos.mean() / oos.std(ddof=1), rel=1e-9)
    whole = matrix.mean(axis=0) / matrix.std(axis=0, ddof=1)
    assert report.best_params == {k: float(v) for k, v in grid[int(np.argmax(whole))].items()}


def test_trial_stats_count_correlated_trials_once() -> None:
    rng = np.random.default_rng(3)
    one = rng.normal(0, 0.01, size=(500, 1))
    copies = trial_stats(np.repeat(one, 10, axis=1))
    assert copies.n_trials == 10 and copies.n_effective == pytest.approx(1.0)
    independent = trial_stats(rng.normal(0, 0.01, size=(500, 10)))
    assert independent.n_effective == pytest.approx(10.0, rel=0.05)
    assert independent.sharpe_var == pytest.approx(1 / 499, rel=0.8)


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
    assert report.walk_forward is not None
    assert all(fold.params == {"lvl": 108.0} for fold in report.walk_forward.folds)
    assert report.validation_metrics is not None
    assert report.validation_metrics.win_rate == 1.0
    # one exit per ten-bar cycle in the 288 walk-forward bars (the first closes a trade
    # opened on the bars before them)
    assert report.validation_metrics.trades == 29


def test_grid_larger_than_the_cap_is_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(StrategyValidationError):
        fit_rules(CROSSOVER, split_by_time(frame), costs=COSTS, max_grid_size=10)
