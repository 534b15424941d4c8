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

Like ``stratlab.market.synthetic``, this is test and benchmark data, never evidence about
real markets. The same arguments always give the same frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratlab.market.synthetic import ohlcv_around

UP_SHARE = 0.5
"""Share of bars in up regimes (alternating regimes of one length distribution)."""


@dataclass(frozen=True)
class PlantedEdge:
    """What was planted in a frame: the regimes and the size of the edge."""

    sharpe: float
    """The oracle's annualised Sharpe ratio, population value (the requested one)."""
    drift: float
    """``mu``: per-bar log drift of an up regime (``-mu`` in a down regime)."""
    volatility: float
    periods_per_year: int
    regime_bars: tuple[int, int]
    up: np.ndarray
    """One bool per bar: the bar's return was drawn in an up regime."""

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
) -> tuple[pd.DataFrame, PlantedEdge]:
    """A valid OHLCV frame on business days and what was planted in it."""
    if bars < 2:
        raise ValueError(f"bars must be at least 2, got {bars}")
    shortest, longest = regime_bars
    if not 1 <= shortest <= longest:
        raise ValueError(f"regime_bars must be 1 <= low <= high, got {regime_bars}")
    mu = drift_for_sharpe(sharpe, volatility=volatility, periods_per_year=periods_per_year)
    rng = np.random.default_rng(seed)
    up = _regime_labels(rng, bars, shortest, longest)
    drift = np.where(up, mu, -mu)
    log_returns = drift - 0.5 * volatility**2 + volatility * rng.standard_normal(bars)
    frame = ohlcv_around(rng, np.exp(np.cumsum(log_returns)) * 100.0, volatility, start)
    info = PlantedEdge(
        sharpe=float(sharpe),
        drift=mu,
        volatility=volatility,
        periods_per_year=periods_per_year,
        regime_bars=(shortest, longest),
        up=up,
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
    if returns.size < 2:
        return 0.0
    std = float(returns.std(ddof=1))
    if std < 1e-12:
        return 0.0
    return float(returns.mean() / std * math.sqrt(info.periods_per_year))


def _regime_labels(rng: np.random.Generator, bars: int, shortest: int, longest: int) -> np.ndarray:
    lengths = rng.integers(shortest, longest + 1, size=bars // shortest + 1)
    first_up = bool(rng.integers(0, 2))
    labels = (np.arange(lengths.size) % 2 == 0) == first_up
    return np.repeat(labels, lengths)[:bars]
