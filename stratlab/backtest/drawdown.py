"""Drawdown, one meaning everywhere: the fall from the running peak as a positive fraction.

``drawdown(v, v_init)[t] = 1 - v[t] / max(v_init, v[0..t])``: 0 at a new high, 0.25 a
quarter below the best value so far. Backtest metrics, walk-forward records, paper
trading's equity and both equity charts read it from here (numpy only, so the CLI can
import it without the engine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def drawdown(values: Sequence[float] | np.ndarray, v_init: float) -> np.ndarray:
    """The drawdown at every point of ``values``, starting from a peak of ``v_init``."""
    values = np.asarray(values, dtype=np.float64)
    peaks = np.maximum.accumulate(np.concatenate(([v_init], values)))[1:]
    return np.divide(peaks - values, peaks, out=np.zeros_like(values), where=peaks > 0)


def max_drawdown(values: Sequence[float] | np.ndarray, v_init: float) -> float:
    """The deepest drawdown of ``values``, in [0, 1] (0 for no values)."""
    depths = drawdown(values, v_init)
    return float(np.clip(depths.max(), 0.0, 1.0)) if depths.size else 0.0
