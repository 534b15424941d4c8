"""What kind of series a data set is: persistent (trending), reverting, or neither.

The designer is told this about the train split, as an analyst would tell a researcher
before they pick a strategy family: trend following needs returns that persist over
weeks, mean reversion needs returns that revert. The statistic is the variance ratio of
Lo & MacKinlay (1988), "Stock market prices do not follow random walks: evidence from a
simple specification test", Review of Financial Studies 1(1), 41-66, with its
heteroskedasticity-consistent z-statistic (real returns cluster in volatility, so the
homoskedastic one would call calm-then-wild stretches "persistence").

It is a description, not a verdict: on a random walk |z| exceeds 1.96 in about 5 % of
samples, and nothing downstream trusts it; the gates judge the strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERSISTENCE_Z = 1.96
"""|z| beyond which the series is described as persistent or reverting (two-sided 5 %)."""


@dataclass(frozen=True)
class VarianceRatio:
    horizon: int
    """q: the horizon in bars of the long returns compared with one-bar returns."""
    ratio: float
    """VR(q): variance of q-bar returns over q times the one-bar variance (1 on a random
    walk; above 1 when returns persist, below 1 when they revert)."""
    z: float
    """Heteroskedasticity-consistent z*(q): asymptotically standard normal under the null of
    uncorrelated (possibly heteroskedastic) increments."""

    @property
    def character(self) -> str:
        """``persistent``, ``reverting`` or ``random walk-like`` at two-sided 5 %."""
        if self.z >= PERSISTENCE_Z:
            return "persistent"
        if self.z <= -PERSISTENCE_Z:
            return "reverting"
        return "random walk-like"


def variance_ratio(close: np.ndarray, horizon: int) -> VarianceRatio:
    """Lo & MacKinlay's (1988) variance ratio of log prices at ``horizon`` bars.

    With log returns ``X_k`` (k = 1..T), ``mu = (p_T - p_0) / T``, the unbiased one-bar
    variance ``s_a = sum (X_k - mu)^2 / (T - 1)`` and the overlapping q-bar variance

        s_c(q) = sum_{k=q..T} (p_k - p_{k-q} - q mu)^2 / m,  m = q (T - q + 1) (1 - q / T),

    ``VR(q) = s_c(q) / s_a`` and ``M_r(q) = VR(q) - 1``. The heteroskedasticity-consistent
    statistic (sec. 1.2, "Heteroskedastic increments") is

        delta(j) = T sum_{k=j+1..T} (X_k - mu)^2 (X_{k-j} - mu)^2 / [sum_k (X_k - mu)^2]^2
        theta(q) = sum_{j=1..q-1} [2 (q - j) / q]^2 delta(j)
        z*(q)    = sqrt(T) M_r(q) / sqrt(theta(q)).
    """
    close = np.asarray(close, dtype=np.float64)
    if horizon < 2:
        raise ValueError(f"horizon must be at least 2 bars, got {horizon}")
    if not np.all(np.isfinite(close) & (close > 0)):
        raise ValueError("prices must be positive and finite")
    prices = np.log(close)
    returns = np.diff(prices)
    t = returns.size
    if t <= 2 * horizon:
        raise ValueError(f"{t} returns are too few for a {horizon}-bar variance ratio")
    mu = (prices[-1] - prices[0]) / t
    dev = returns - mu
    squares = dev * dev
    total = float(squares.sum())
    if total <= 0.0:
        return VarianceRatio(horizon=horizon, ratio=1.0, z=0.0)
    s_a = total / (t - 1)
    long_dev = prices[horizon:] - prices[:-horizon] - horizon * mu
    m = horizon * (t - horizon + 1) * (1.0 - horizon / t)
    ratio = float(long_dev @ long_dev) / m / s_a
    theta = 0.0
    for j in range(1, horizon):
        delta = t * float(squares[j:] @ squares[:-j]) / total**2
        theta += (2.0 * (horizon - j) / horizon) ** 2 * delta
    z = math.sqrt(t) * (ratio - 1.0) / math.sqrt(theta) if theta > 0 else 0.0
    return VarianceRatio(horizon=horizon, ratio=ratio, z=z)


def describe_persistence(close: np.ndarray, horizon: int = 60) -> str:
    """One sentence for the designer: the variance ratio, its z and what it suggests; empty
    when the series is too short to say."""
    try:
        vr = variance_ratio(close, horizon)
    except ValueError:
        return ""
    hint = {
        "persistent": "returns persist over weeks; trend following fits this data",
        "reverting": "returns revert over weeks; mean reversion fits this data",
        "random walk-like": "no persistence or reversal a test can tell from a random walk",
    }[vr.character]
    return (
        f"Variance ratio over {horizon} bars {vr.ratio:.2f} "
        f"(Lo-MacKinlay z* {vr.z:+.1f}): {vr.character}, {hint}."
    )
