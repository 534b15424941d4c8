"""The trial ledger: how many strategies were tried on a research universe, and how alike.

A verdict is judged against every trial made on the same data, so the deflated Sharpe
of a winner accounts for the losers tried before it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TrialStats(BaseModel):
    """The trials one fit adds to the ledger: its grid combinations, their Sharpe ratios
    (per bar, over the development period) and how correlated they are."""

    n_trials: int = 0
    n_effective: float = 0.0
    sharpe_mean: float = 0.0
    sharpe_var: float = 0.0
    sharpe_sum: float = 0.0
    sharpe_sq_sum: float = 0.0
    avg_correlation: float = 0.0
    bars: int = 0


class TrialLedger(BaseModel):
    """A research universe's trials so far: what a verdict on it is judged against.

    ``universe`` is the symbol and the development period's first and last bar; ``fits``
    counts the walk-forward records made on it; ``n`` counts every trial (grid
    combinations of every fit), ``n_effective`` discounts the correlated ones per fit;
    ``sharpe_var`` is the variance of the trials' per-bar Sharpe ratios and
    ``oos_sharpe_var`` that of the fits' walk-forward Sharpe ratios.
    """

    universe: str
    symbol: str
    fits: int = 0
    n: int = 0
    n_effective: float = 0.0
    sharpe_mean: float = 0.0
    sharpe_var: float = 0.0
    oos_sharpe_var: float = Field(
        0.0, description="variance of the fits' walk-forward out-of-sample per-bar Sharpe"
    )
    by_source: dict[str, int] = Field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
