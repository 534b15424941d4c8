"""Synthetic daily bars with a planted trend edge of known size: the lab's power benchmark.

The close follows a geometric random walk whose drift switches between persistent up and
down regimes that alternate (the first one is a coin flip; each lasts a whole number of
bars drawn uniformly from ``regime_bars``, 60-250 by default: the longer the regimes, the
more of the edge a lagging trend follower can take). In an up regime a bar's log return is
``+mu - sigma**2 / 2 + sigma * z``, in a down regime ``-mu - sigma**2 / 2 + sigma * z``,
so the expected simple return is ``exp(+mu) - 1`` or ``exp(-mu) - 1`` and buy-and-hold
has (almost) no edge. A long-only rule that is in the market while the price trends up
earns; one that cannot tell the regimes apart (mean reversion on this series) does not.

**True Sharpe.** The edge is named by the annualised Sharpe ratio of the ORACLE: the
long-only strategy that holds exactly the bars of the up regimes (close-to-close simple
returns on those bars, zero on the others; no costs, zero risk-free rate: the lab's own
definition in ``stratlab.backtest.metrics``). With the share of up bars ``pi = 1/2``,
``m = exp(mu) - 1`` and ``v = exp(2 mu) (exp(sigma**2) - 1)`` the oracle's returns have
mean ``pi m`` and variance ``pi (v + m**2) - (pi m)**2``, so

    sharpe = sqrt(periods_per_year) * pi m / sqrt(pi (v + m**2) - (pi m)**2)

and :func:`drift_for_sharpe` inverts it in closed form. That is the population value;
a finite path's realised oracle Sharpe scatters around it (:func:`oracle_sharpe` measures
it on any slice, e.g. the development period). ``sharpe=0`` gives ``mu = 0``: a driftless
random walk whose regime labels carry no information.

**Achievable Sharpe.** No trader can hold exactly the up regimes: the regime is only seen
through the noisy returns it drives. :func:`causal_returns` is the best a causal trader
can approximately do: a two-state Bayes filter (Hamilton 1989, "A New Approach to the
Economic Analysis of Nonstationary Time Series and the Business Cycle", Econometrica 57,
eq. 22: predicted state probability -> likelihood update -> transition) that knows the
true drift, volatility and mean regime length, and is long for a bar while the
probability of an up regime, given the bars before it, exceeds one half. It pays no
costs. Its Sharpe is the yardstick ``edge="causal"`` plants by: at an oracle Sharpe of 1.5
it is about 0.7, so an edge named by the oracle overstates what any strategy can take
by about a factor of two. :func:`drift_for_causal_sharpe` finds the drift at which the
filter's population Sharpe (one long simulated path, common random numbers) equals the
requested value.

Like ``stratlab.market.synthetic``, this is test and benchmark data, never evidence about
real markets. The same arguments always give the same frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from stratlab.market.synthetic import ohlcv_around

UP_SHARE = 0.5
"""Share of bars in up regimes (alternating regimes of one length distribution)."""

EdgeMeasure = Literal["oracle", "causal"]
"""What names a planted edge's Sharpe: the hindsight oracle, or the causal Bayes filter."""

POPULATION_BARS = 250_000
"""Length of the simulated path that estimates the filter's population Sharpe (standard
error about sqrt(252 / 250,000) = 0.03 annualised)."""


@dataclass(frozen=True)
class PlantedEdge:
    """What was planted in a frame: the regimes and the size of the edge."""

    sharpe: float
    """The requested annualised Sharpe ratio (population value) of ``measure``."""
    drift: float
    """``mu``: per-bar log drift of an up regime (``-mu`` in a down regime)."""
    volatility: float
    periods_per_year: int
    regime_bars: tuple[int, int]
    up: np.ndarray
    """One bool per bar: the bar's return was drawn in an up regime."""
    measure: EdgeMeasure = "oracle"
    """Whose Sharpe ``sharpe`` is: the oracle's, or the causal filter's."""

    @property
    def regimes(self) -> int:
        """Number of regimes in the frame."""
        return int(np.count_nonzero(np.diff(self.up.astype(np.int8)))) + 1

    @property
    def regime_lengths(self) -> np.ndarray:
        """Length in bars of each regime, in order (the last one may be cut by the frame's
        end)."""
        changes = np.flatnonzero(np.diff(self.up.astype(np.int8))) + 1
        return np.diff(np.concatenate(([0], changes, [self.up.size])))


def drift_for_sharpe(
    sharpe: float, *, volatility: float = 0.012, periods_per_year: int = 252
) -> float:
    """The up-regime log drift ``mu`` at which the oracle's annualised Sharpe is ``sharpe``."""
    if sharpe < 0:
        raise ValueError(f"sharpe must be >= 0, got {sharpe}")
    if volatility <= 0:
        raise ValueError(f"volatility must be positive, got {volatility}")
    s = (sharpe / math.sqrt(periods_per_year)) ** 2  # per-bar Sharpe, squared
    k = math.expm1(volatility**2)
    # s * k * (1 + d)**2 = (pi - s (1 - pi)) * d**2 with d = exp(mu) - 1 > 0.
    room = UP_SHARE - s * (1.0 - UP_SHARE)
    if room <= s * k:
        raise ValueError(f"sharpe {sharpe} is beyond what this model can plant")
    d = math.sqrt(s * k) / (math.sqrt(room) - math.sqrt(s * k))
    return math.log1p(d)


def oracle_sharpe_of(drift: float, *, volatility: float, periods_per_year: int = 252) -> float:
    """The oracle's annualised Sharpe for an up-regime log drift (the population value)."""
    m = math.expm1(drift)
    v = math.exp(2 * drift) * math.expm1(volatility**2)
    mean = UP_SHARE * m
    var = UP_SHARE * (v + m * m) - mean * mean
    return math.sqrt(periods_per_year) * mean / math.sqrt(var)


def planted_edge_ohlcv(
    *,
    bars: int = 5000,
    seed: int = 0,
    sharpe: float = 1.5,
    volatility: float = 0.012,
    regime_bars: tuple[int, int] = (60, 250),
    periods_per_year: int = 252,
    start: str = "2000-01-03",
    edge: EdgeMeasure = "oracle",
) -> tuple[pd.DataFrame, PlantedEdge]:
    """A valid OHLCV frame on business days and what was planted in it; ``sharpe`` names
    the oracle's Sharpe, or with ``edge="causal"`` the causal filter's."""
    if bars < 2:
        raise ValueError(f"bars must be at least 2, got {bars}")
    shortest, longest = regime_bars
    if not 1 <= shortest <= longest:
        raise ValueError(f"regime_bars must be 1 <= low <= high, got {regime_bars}")
    if edge == "causal":
        mu = drift_for_causal_sharpe(
            sharpe,
            volatility=volatility,
            regime_bars=regime_bars,
            periods_per_year=periods_per_year,
        )
    elif edge == "oracle":
        mu = drift_for_sharpe(sharpe, volatility=volatility, periods_per_year=periods_per_year)
    else:
        raise ValueError(f"edge must be 'oracle' or 'causal', got {edge!r}")
    rng = np.random.default_rng(seed)
    up, log_returns = _planted_log_returns(rng, bars, mu, volatility, (shortest, longest))
    frame = ohlcv_around(rng, np.exp(np.cumsum(log_returns)) * 100.0, volatility, start)
    info = PlantedEdge(
        sharpe=float(sharpe),
        drift=mu,
        volatility=volatility,
        periods_per_year=periods_per_year,
        regime_bars=(shortest, longest),
        up=up,
        measure=edge,
    )
    return frame, info


def oracle_returns(frame: pd.DataFrame, info: PlantedEdge) -> np.ndarray:
    """Per-bar simple returns of the oracle: the close-to-close return on up bars, else 0.

    The first bar's return is taken from the walk's starting level of 100."""
    close = frame["close"].to_numpy(dtype=np.float64)
    simple = np.diff(close, prepend=100.0) / np.concatenate(([100.0], close[:-1]))
    return np.where(info.up[: len(close)], simple, 0.0)


def oracle_sharpe(frame: pd.DataFrame, info: PlantedEdge, *, bars: slice | None = None) -> float:
    """The oracle's realised annualised Sharpe on ``frame`` (or the ``bars`` slice of it)."""
    returns = oracle_returns(frame, info)[bars if bars is not None else slice(None)]
    return _annualised(returns, info.periods_per_year)


def causal_returns(frame: pd.DataFrame, info: PlantedEdge) -> np.ndarray:
    """Per-bar simple returns of the causal Bayes filter: the close-to-close return on the
    bars it holds (decided from the closes before them), else 0."""
    close = frame["close"].to_numpy(dtype=np.float64)
    previous = np.concatenate(([100.0], close[:-1]))
    simple = close / previous - 1.0
    held = _filter_holds(
        np.log(close / previous), info.drift, info.volatility, _hazard(info.regime_bars)
    )
    return np.where(held, simple, 0.0)


def causal_sharpe(frame: pd.DataFrame, info: PlantedEdge, *, bars: slice | None = None) -> float:
    """The causal filter's realised annualised Sharpe on ``frame`` (or its ``bars`` slice)."""
    returns = causal_returns(frame, info)[bars if bars is not None else slice(None)]
    return _annualised(returns, info.periods_per_year)


@lru_cache(maxsize=64)
def causal_sharpe_of(
    drift: float,
    *,
    volatility: float = 0.012,
    regime_bars: tuple[int, int] = (60, 250),
    periods_per_year: int = 252,
) -> float:
    """The causal filter's annualised Sharpe for an up-regime log drift, estimated on one
    simulated path of ``POPULATION_BARS`` bars (always the same regimes and noise, so the
    estimate moves smoothly with the drift)."""
    rng = np.random.default_rng(20_261_205)
    _, log_returns = _planted_log_returns(rng, POPULATION_BARS, drift, volatility, regime_bars)
    held = _filter_holds(log_returns, drift, volatility, _hazard(regime_bars))
    returns = np.where(held, np.expm1(log_returns), 0.0)
    return _annualised(returns, periods_per_year)


def drift_for_causal_sharpe(
    sharpe: float,
    *,
    volatility: float = 0.012,
    regime_bars: tuple[int, int] = (60, 250),
    periods_per_year: int = 252,
) -> float:
    """The up-regime log drift at which the causal filter's population Sharpe is
    ``sharpe`` (bisection to 1e-4 in Sharpe; the filter's Sharpe grows with the drift)."""
    if sharpe < 0:
        raise ValueError(f"sharpe must be >= 0, got {sharpe}")
    if sharpe == 0:
        return 0.0

    def of(drift: float) -> float:
        return causal_sharpe_of(
            drift,
            volatility=volatility,
            regime_bars=tuple(regime_bars),  # type: ignore[arg-type]
            periods_per_year=periods_per_year,
        )

    low, high = 0.0, drift_for_sharpe(sharpe, volatility=volatility) * 4.0
    if of(high) < sharpe:
        raise ValueError(f"a causal Sharpe of {sharpe} is beyond what this model can plant")
    for _ in range(40):
        mid = (low + high) / 2.0
        value = of(mid)
        if abs(value - sharpe) < 1e-4:
            return mid
        low, high = (mid, high) if value < sharpe else (low, mid)
    return (low + high) / 2.0


def _filter_holds(
    log_returns: np.ndarray, drift: float, volatility: float, hazard: float
) -> np.ndarray:
    """Whether the filter holds each bar: P(up | bars before it) > 1/2.

    Hamilton's recursion in log-odds: the bar's log-likelihood ratio of up against down is
    ``2 mu (x - c) / sigma**2`` for a log return ``x`` with ``c = -sigma**2 / 2``; the
    regime then switches with probability ``hazard`` before the next bar."""
    if drift == 0.0:
        return np.zeros(log_returns.size, dtype=bool)
    ratios = (2.0 * drift / volatility**2) * (log_returns + 0.5 * volatility**2)
    held = np.empty(log_returns.size, dtype=bool)
    odds = 0.0  # log-odds of an up regime before the first bar: a coin flip
    stay = 1.0 - hazard
    for t, ratio in enumerate(ratios.tolist()):
        held[t] = odds > 0.0
        posterior = odds + ratio
        p = 1.0 / (1.0 + math.exp(-posterior)) if posterior > -700 else 0.0
        predicted = p * stay + (1.0 - p) * hazard
        odds = math.log(predicted / (1.0 - predicted))
    return held


def _annualised(returns: np.ndarray, periods_per_year: int) -> float:
    if returns.size < 2:
        return 0.0
    std = float(returns.std(ddof=1))
    if std < 1e-12:
        return 0.0
    return float(returns.mean() / std * math.sqrt(periods_per_year))


def _planted_log_returns(
    rng: np.random.Generator,
    bars: int,
    drift: float,
    volatility: float,
    regime_bars: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The up-regime labels and the bars' log returns: ``+-drift - sigma**2 / 2 + sigma z``."""
    up = _regime_labels(rng, bars, *regime_bars)
    noise = rng.standard_normal(bars)
    return up, np.where(up, drift, -drift) - 0.5 * volatility**2 + volatility * noise


def _hazard(regime_bars: tuple[int, int]) -> float:
    """The filter's chance of a switch per bar: one over the mean regime length."""
    return 2.0 / (regime_bars[0] + regime_bars[1])


def _regime_labels(rng: np.random.Generator, bars: int, shortest: int, longest: int) -> np.ndarray:
    lengths = rng.integers(shortest, longest + 1, size=bars // shortest + 1)
    first_up = bool(rng.integers(0, 2))
    labels = (np.arange(lengths.size) % 2 == 0) == first_up
    return np.repeat(labels, lengths)[:bars]
