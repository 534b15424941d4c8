"""The probability of backtest overfitting of a grid, by combinatorially symmetric
cross-validation (CSCV).

A grid's in-sample winner looks good partly because it was picked; ``pbo_cscv`` (Bailey,
Borwein, López de Prado & Zhu 2017) estimates how often that winner falls below the median
of the grid out of sample, over every way of splitting the bars into equal in-sample and
out-of-sample halves. Sharpe ratios are PER BAR, as in ``stratlab.backtest.significance``.
The function is pure: a matrix in, a frozen dataclass out.

Reference:

* Bailey, D. H., Borwein, J., López de Prado, M. & Zhu, Q. J. (2017). "The Probability of
  Backtest Overfitting". Journal of Computational Finance 20(4). (CSCV, PBO.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from stratlab.backtest._returns import FLAT, as_matrix

PboMetric = Literal["sharpe", "mean"]
"""What CSCV ranks columns by: per-bar Sharpe ratio, or mean bar return."""

_PBO_CHUNK = 1024  # CSCV combinations per vectorised step: bounds memory at M x 1024 floats


@dataclass(frozen=True, slots=True)
class Pbo:
    """The probability of backtest overfitting from CSCV.

    ``probability`` is the share of the ``combinations`` train/test splits (of ``splits``
    blocks) whose in-sample winner ranked at or below the out-of-sample median;
    ``logits`` holds each split's λ, in the order of ``itertools.combinations``.
    """

    probability: float
    splits: int
    combinations: int
    logits: tuple[float, ...] = field(repr=False)


def pbo_cscv(
    returns_matrix: npt.ArrayLike,
    *,
    splits: int = 16,
    metric: PboMetric = "sharpe",
) -> Pbo | None:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest
    Overfitting", §2 (CSCV steps) and the PBO definition: split the rows of the (bars, M)
    matrix into S = ``splits`` contiguous blocks; for each of the C(S, S/2) choices of S/2
    blocks as in-sample set J (complement J̄ out of sample), take the column n* that is
    best on J, its relative rank ω̄ = rank(R̄_n*) / (M + 1) among the M columns on J̄
    (average ranks for ties), and λ = ln(ω̄ / (1 - ω̄)); PBO = share of λ ≤ 0.

    ``metric`` ranks columns by per-bar Sharpe ratio (flat: 0) or mean return. When S does
    not divide the bars, block sizes differ by one row rather than dropping bars. None when
    M < 2 or bars < 2·S: too little to split, so the caller reports it as not run. An odd
    or non-positive S is a caller error (ValueError). Non-finite entries are read as 0.
    """
    if splits < 2 or splits % 2:
        raise ValueError(f"splits must be a positive even number, got {splits}")
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"unknown metric {metric!r}")
    matrix = as_matrix(returns_matrix)
    bars, columns = matrix.shape
    if columns < 2 or bars < 2 * splits:
        return None
    stats = _block_stats(matrix, splits)
    membership = _half_combinations(splits)
    logits = np.concatenate(
        [
            _split_logits(membership[start : start + _PBO_CHUNK], stats, metric)
            for start in range(0, membership.shape[0], _PBO_CHUNK)
        ]
    )
    return Pbo(
        probability=float(np.mean(logits <= 0.0)),
        splits=splits,
        combinations=int(logits.size),
        logits=tuple(logits.tolist()),
    )


# --- private helpers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _BlockStats:
    """Per-block sufficient statistics of a (bars, M) matrix for CSCV.

    ``count`` (S,) rows per block; ``total`` and ``square`` (S, M) sums of returns and of
    squared returns after subtracting each column's full-sample mean ``centre`` (M,).
    Centring keeps ``square - total²/n`` free of cancellation when the mean is large.
    """

    count: np.ndarray
    total: np.ndarray
    square: np.ndarray
    centre: np.ndarray


def _block_stats(matrix: np.ndarray, splits: int) -> _BlockStats:
    bars = matrix.shape[0]
    starts = (np.arange(splits) * bars) // splits  # sizes differ by at most one row
    centre = matrix.mean(axis=0)
    centred = matrix - centre
    return _BlockStats(
        count=np.diff(np.append(starts, bars)).astype(float),
        total=np.add.reduceat(centred, starts, axis=0),
        square=np.add.reduceat(centred**2, starts, axis=0),
        centre=centre,
    )


def _half_combinations(splits: int) -> np.ndarray:
    """(C(S, S/2), S) 0/1 matrix: row c marks the blocks of the c-th in-sample set."""
    chosen = np.array(list(itertools.combinations(range(splits), splits // 2)))
    membership = np.zeros((chosen.shape[0], splits))
    np.put_along_axis(membership, chosen, 1.0, axis=1)
    return membership


def _subset_metric(
    count: np.ndarray, total: np.ndarray, square: np.ndarray, centre: np.ndarray, metric: str
) -> np.ndarray:
    """(k, M) metric of each column over k row subsets given their summed block stats."""
    n = count[:, None]
    mean = total / n + centre  # undo the centring for the mean, not for the variance
    if metric == "mean":
        return mean
    variance = np.maximum(square - total**2 / n, 0.0) / (n - 1)
    std = np.sqrt(variance)
    return np.where(std >= FLAT, mean / np.where(std >= FLAT, std, 1.0), 0.0)


def _split_logits(membership: np.ndarray, stats: _BlockStats, metric: str) -> np.ndarray:
    """λ of each in-sample set in ``membership`` (k, S): one matmul per statistic."""
    count_in = membership @ stats.count
    total_in = membership @ stats.total
    square_in = membership @ stats.square
    in_sample = _subset_metric(count_in, total_in, square_in, stats.centre, metric)
    out_sample = _subset_metric(
        stats.count.sum() - count_in,
        stats.total.sum(axis=0) - total_in,
        stats.square.sum(axis=0) - square_in,
        stats.centre,
        metric,
    )
    best = np.argmax(in_sample, axis=1)
    chosen = np.take_along_axis(out_sample, best[:, None], axis=1)
    # Average rank (1 = worst) of the in-sample winner among the M out-of-sample results.
    rank = (out_sample < chosen).sum(axis=1) + ((out_sample == chosen).sum(axis=1) + 1) / 2
    omega = rank / (out_sample.shape[1] + 1)
    return np.log(omega / (1.0 - omega))
