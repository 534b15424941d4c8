"""The planted-edge generator: the edge it plants has the size it names, and no more."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratlab.market.ohlcv import normalise_ohlcv
from stratlab.market.planted import (
    causal_returns,
    causal_sharpe,
    causal_sharpe_of,
    drift_for_causal_sharpe,
    drift_for_sharpe,
    oracle_sharpe,
    oracle_sharpe_of,
    planted_edge_ohlcv,
)

# Long samples (about 160 years of daily bars each) keep the realised oracle Sharpe within
# a few hundredths of its population value: its standard error is about sqrt(252 / bars).
LONG = 40_000
SEEDS = range(4)


def _long(sharpe: float, seed: int) -> tuple:
    return planted_edge_ohlcv(bars=LONG, seed=seed, sharpe=sharpe, start="1850-01-01")


@pytest.mark.parametrize("sharpe", [0.5, 1.5, 3.0])
def test_realised_oracle_sharpe_is_close_to_the_requested_one(sharpe: float) -> None:
    realised = [oracle_sharpe(*_long(sharpe, seed)) for seed in SEEDS]
    # Four paths of 40,000 bars: standard error of the mean about 0.04.
    assert np.mean(realised) == pytest.approx(sharpe, abs=0.15)


def test_drift_and_sharpe_are_inverse() -> None:
    for sharpe in (0.0, 0.25, 1.0, 2.0, 4.0):
        mu = drift_for_sharpe(sharpe, volatility=0.02)
        assert oracle_sharpe_of(mu, volatility=0.02) == pytest.approx(sharpe, abs=1e-9)
    assert drift_for_sharpe(0.0) == 0.0
    assert drift_for_sharpe(2.0) > drift_for_sharpe(1.0) > 0


def test_sharpe_zero_is_a_random_walk_with_no_timing_edge() -> None:
    realised, gaps = [], []
    for seed in SEEDS:
        frame, info = _long(0.0, seed)
        assert info.drift == 0.0
        log_returns = np.diff(np.log(frame["close"].to_numpy()))
        up = info.up[1:]
        # The regime labels say nothing about the returns: same mean in both.
        gaps.append(log_returns[up].mean() - log_returns[~up].mean())
        realised.append(oracle_sharpe(frame, info))
    se = 0.012 * math.sqrt(4 / LONG)  # of one path's difference of two half-sample means
    assert abs(np.mean(gaps)) < 3 * se / math.sqrt(len(SEEDS))
    assert abs(np.mean(realised)) < 0.15


def test_a_planted_edge_is_in_the_regimes_and_not_in_buy_and_hold() -> None:
    frame, info = _long(2.0, seed=7)
    log_returns = np.diff(np.log(frame["close"].to_numpy()), prepend=np.log(100.0))
    assert log_returns[info.up].mean() > 0 > log_returns[~info.up].mean()
    # Alternating regimes of 60-250 bars: about as many up bars as down bars.
    assert info.up.mean() == pytest.approx(0.5, abs=0.03)
    assert LONG / 250 <= info.regimes <= LONG / 60 + 1


@pytest.mark.parametrize("regime_bars", [(60, 250), (20, 40), (300, 300)])
def test_regimes_last_as_long_as_asked(regime_bars: tuple[int, int]) -> None:
    frame, info = planted_edge_ohlcv(bars=5000, seed=1, sharpe=1.0, regime_bars=regime_bars)
    lengths = info.regime_lengths
    assert info.regime_bars == regime_bars
    assert lengths.sum() == len(frame) and lengths.size == info.regimes
    low, high = regime_bars
    # Every regime but the last (cut by the frame's end) has a length in [low, high].
    assert lengths[:-1].min() >= low and lengths[:-1].max() <= high
    assert 1 <= lengths[-1] <= high
    # Regimes alternate: up, down, up, ... (or the other way round).
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    assert (np.diff(info.up[starts].astype(np.int8)) != 0).all()


def test_the_true_sharpe_does_not_depend_on_the_regime_length() -> None:
    """The oracle's population Sharpe depends on the drift and the up share alone: short
    regimes plant the same edge (only harder for a lagging rule to take)."""
    realised = [
        oracle_sharpe(
            *planted_edge_ohlcv(
                bars=LONG, seed=seed, sharpe=1.5, regime_bars=(10, 30), start="1850-01-01"
            )
        )
        for seed in SEEDS
    ]
    assert np.mean(realised) == pytest.approx(1.5, abs=0.15)


def test_frames_are_valid_ohlcv_and_reproducible() -> None:
    frame, info = planted_edge_ohlcv(bars=500, seed=3, sharpe=1.0)
    again, _ = planted_edge_ohlcv(bars=500, seed=3, sharpe=1.0)
    assert frame.equals(again)
    assert normalise_ohlcv(frame).shape == (500, 5)
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert info.up.shape == (500,)
    other, _ = planted_edge_ohlcv(bars=500, seed=4, sharpe=1.0)
    assert not frame.equals(other)


@pytest.mark.parametrize("sharpe", [0.5, 1.5, 3.0])
def test_an_edge_named_by_the_causal_filter_has_that_size(sharpe: float) -> None:
    paths = [
        planted_edge_ohlcv(bars=LONG, seed=s, sharpe=sharpe, start="1850-01-01", edge="causal")
        for s in SEEDS
    ]
    assert all(info.measure == "causal" for _, info in paths)
    realised = [causal_sharpe(frame, info) for frame, info in paths]
    # The population value was estimated on a path of its own; these are four others.
    assert np.mean(realised) == pytest.approx(sharpe, abs=0.15)
    # Hindsight beats any causal trader, by a wide margin at these sizes.
    assert all(oracle_sharpe(f, i) > causal_sharpe(f, i) + 0.3 for f, i in paths)


def test_the_causal_filter_is_monotone_and_zero_without_drift() -> None:
    assert drift_for_causal_sharpe(0.0) == 0.0
    assert causal_sharpe_of(0.0) == 0.0
    drifts = [drift_for_causal_sharpe(s) for s in (0.5, 1.5, 3.0)]
    assert drifts == sorted(drifts)
    # The same drift named by the oracle is a smaller edge for a causal trader.
    assert all(d > drift_for_sharpe(s) for d, s in zip(drifts, (0.5, 1.5, 3.0), strict=True))
    assert causal_sharpe_of(drifts[1]) == pytest.approx(1.5, abs=1e-3)
    with pytest.raises(ValueError, match="sharpe"):
        drift_for_causal_sharpe(-0.5)
    with pytest.raises(ValueError, match="beyond"):
        drift_for_causal_sharpe(50.0)


def test_the_causal_filter_decides_a_bar_from_the_bars_before_it() -> None:
    frame, info = planted_edge_ohlcv(bars=2000, seed=3, sharpe=2.0, edge="causal")
    returns = causal_returns(frame, info)
    cut = 1200
    poisoned = frame.copy()
    poisoned.iloc[cut:, poisoned.columns.get_loc("close")] *= 3.0
    again = causal_returns(poisoned, info)
    # Bars before the cut and the decision to hold the cut bar are unchanged.
    assert np.array_equal(returns[:cut], again[:cut])
    assert (returns[cut] != 0.0) == (again[cut] != 0.0)
    assert not np.array_equal(returns[cut + 1 :], again[cut + 1 :])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sharpe"):
        planted_edge_ohlcv(sharpe=-1.0)
    with pytest.raises(ValueError, match="regime_bars"):
        planted_edge_ohlcv(regime_bars=(50, 10))
    with pytest.raises(ValueError, match="regime_bars"):
        planted_edge_ohlcv(regime_bars=(0, 10))
    with pytest.raises(ValueError, match="bars"):
        planted_edge_ohlcv(bars=1)
    with pytest.raises(ValueError, match="edge"):
        planted_edge_ohlcv(edge="hindsight")  # type: ignore[arg-type]


def test_the_benchmark_trend_follower_is_a_valid_design() -> None:
    """perf/integrity.py's evaluate mode: the fixed SMA crossover it runs through
    EvaluateStrategyWorkflow validates like a design, on a 6 x 7 grid, with no stops."""
    from perf._integrity import sma_cross_spec
    from stratlab.llm.offline.inspect import family_of, grid_size
    from stratlab.strategies.validation import validate_spec

    spec = sma_cross_spec("pe0-eval-0001")
    validate_spec(spec)
    assert spec.symbol == "pe0-eval-0001"
    assert grid_size(spec.parameters) == 6 * 7
    assert spec.stop_loss is None and spec.take_profit is None
    assert family_of(spec) == "ma_cross"
