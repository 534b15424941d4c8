"""The variance ratio the designer is told: Lo & MacKinlay's statistic, checked against an
independent implementation (the arch package), its size on random walks and its power on
the planted trend edge."""

from __future__ import annotations

import numpy as np
import pytest
from arch.unitroot import VarianceRatio as ArchVarianceRatio

from stratlab.market.character import describe_persistence, variance_ratio
from stratlab.market.planted import planted_edge_ohlcv


def _heteroskedastic_walk(seed: int, bars: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    log_vol = np.zeros(bars)  # volatility that clusters: an AR(1) in its logarithm
    for t in range(1, bars):
        log_vol[t] = 0.98 * log_vol[t - 1] + 0.1 * rng.standard_normal()
    volatility = 0.01 * np.exp(log_vol)
    return np.exp(4.6 + np.cumsum(rng.standard_normal(bars) * volatility))


@pytest.mark.parametrize("horizon", [2, 5, 20, 60])
def test_matches_the_arch_package(horizon: int) -> None:
    close = _heteroskedastic_walk(seed=horizon)
    ours = variance_ratio(close, horizon)
    reference = ArchVarianceRatio(
        np.log(close), lags=horizon, robust=True, debiased=True, overlap=True
    )
    assert ours.ratio == pytest.approx(reference.vr, abs=1e-10)
    assert ours.z == pytest.approx(reference.stat, abs=1e-9)


def test_random_walks_are_called_persistent_or_reverting_about_5_percent_of_the_time() -> None:
    calls = [variance_ratio(_heteroskedastic_walk(seed), 60).character for seed in range(200)]
    share = 1 - calls.count("random walk-like") / len(calls)
    assert 0.01 <= share <= 0.10, share


def test_the_planted_trend_edge_reads_as_persistent() -> None:
    persistent = 0
    for seed in range(20):
        frame, _ = planted_edge_ohlcv(seed=seed, sharpe=2.0)
        persistent += variance_ratio(frame["close"].to_numpy()[:3000], 60).character == (
            "persistent"
        )
    assert persistent >= 18


def test_a_reverting_series_reads_as_reverting() -> None:
    rng = np.random.default_rng(7)
    shocks = rng.standard_normal(3000) * 0.01
    # An AR(1) log price around a level: strong reversion over weeks.
    level = np.zeros(3000)
    for t in range(1, 3000):
        level[t] = 0.95 * level[t - 1] + shocks[t]
    assert variance_ratio(np.exp(4.6 + level), 60).character == "reverting"


def test_description_and_limits() -> None:
    frame, _ = planted_edge_ohlcv(seed=1, sharpe=2.0)
    text = describe_persistence(frame["close"].to_numpy()[:3000])
    assert text.startswith("Variance ratio over 60 bars") and "persistent" in text
    assert describe_persistence(np.linspace(100, 110, 50)) == ""  # too short to say
    with pytest.raises(ValueError, match="positive"):
        variance_ratio(np.r_[np.linspace(100, 110, 499), 0.0], 20)
    with pytest.raises(ValueError, match="horizon"):
        variance_ratio(np.linspace(100, 110, 500), 1)
    flat = variance_ratio(np.full(500, 100.0), 20)
    assert (flat.ratio, flat.z) == (1.0, 0.0)
