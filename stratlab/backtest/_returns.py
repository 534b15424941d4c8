"""Return arrays as the statistics read them, and what counts as a flat series."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FLAT = 1e-12
"""A return spread below this is a flat series, not a huge Sharpe ratio."""


def finite(returns: npt.ArrayLike) -> np.ndarray:
    """The finite values of ``returns``, flattened."""
    values = np.asarray(returns, dtype=float).ravel()
    return values[np.isfinite(values)]


def as_matrix(returns_matrix: npt.ArrayLike) -> np.ndarray:
    """A (bars, M) float matrix with non-finite entries read as 0 (no recorded return)."""
    matrix = np.asarray(returns_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"expected a (bars, M) matrix, got shape {matrix.shape}")
    return np.where(np.isfinite(matrix), matrix, 0.0)
