"""What fitting and testing a strategy found: metrics, walk-forward, look-ahead probe,
the training report, the holdout and the assessor's verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.research.specs import StrategyKind
from stratlab.models.research.trials import TrialStats
from stratlab.models.research.windows import DataSplit

AssessorVerdict = Literal["accept", "refine", "reject"]
"""The assessor's verdict on an out-of-sample result (refine: design again)."""


class BacktestMetrics(BaseModel):
    """Stable, documented metric names (fractions, not percent)."""

    total_return: float = 0.0
    cagr: float = 0.0
    sharpe: float = 0.0
    sortino: float = 0.0
    max_drawdown: float = Field(0.0, description="positive fraction, 0.25 = -25% peak to trough")
    win_rate: float = 0.0
    trades: int = 0
    profit_factor: float = 0.0
    exposure: float = Field(0.0, description="fraction of bars in the market")
    benchmark_return: float = Field(0.0, description="buy-and-hold total return, same period")
    start: datetime | None = None
    end: datetime | None = None
    bars: int = 0


class EpochStats(BaseModel):
    epoch: int
    loss: float
    validation_accuracy: float


class LookaheadProbe(BaseModel):
    """Signals computed on prefixes ``data[: t + 1]`` compared with the full run at bars
    ``<= t``, for ``cuts`` cut points. ``first_bar`` is the first bar (position in the
    frame the probe ran on) whose signal changed when later bars were added."""

    cuts: int = 0
    passed: bool = True
    first_bar: int | None = None
    first_ts: datetime | None = None
    series: str = Field("", description="entries or exits: the series that changed")
    cut: int | None = Field(None, description="the prefix end at which it changed")
    detail: str = ""


class WalkForwardFold(BaseModel):
    """One fold: parameters chosen on ``[0, fit_end)`` (less the purge), judged on
    ``[test_start, test_end)`` (positions in the development period)."""

    fit_end: int
    test_start: int
    test_end: int
    params: dict[str, float] = Field(default_factory=dict)
    sharpe: float = 0.0


class WalkForwardReport(BaseModel):
    """Walk-forward out-of-sample evaluation on the development period."""

    scheme: Literal["anchored", "rolling"] = "anchored"
    folds: list[WalkForwardFold] = Field(default_factory=list)
    purge_bars: int = 0
    embargo_bars: int = 0
    oos_bars: int = 0
    sharpe: float = Field(0.0, description="annualised, of the stitched OOS returns")
    sharpe_per_bar: float = 0.0
    excess_sharpe_per_bar: float = Field(
        0.0, description="per bar, against the exposure-matched buy-and-hold benchmark"
    )
    skew: float = 0.0
    kurtosis: float = Field(3.0, description="non-excess kurtosis of the OOS returns")
    exposure: float = 0.0
    trades: int = 0
    periods_per_year: float = 252.0


class TrainingReport(BaseModel):
    kind: StrategyKind
    splits: list[DataSplit] = Field(default_factory=list)
    # rules
    grid_size: int = 0
    best_params: dict[str, float] = Field(default_factory=dict)
    train_metrics: BacktestMetrics | None = None
    validation_metrics: BacktestMetrics | None = None
    # ml
    epochs: list[EpochStats] = Field(default_factory=list)
    accuracy: float | None = None
    final_loss: float | None = None
    loss_decrease: float | None = None
    resumed_from_epoch: int = 0
    validation_log_loss: float | None = None
    base_rate_log_loss: float | None = None
    validation_auc: float | None = None
    auc_p_value: float | None = None
    # research integrity (validation_metrics are the walk-forward OOS metrics when
    # walk_forward is set)
    walk_forward: WalkForwardReport | None = None
    trials: TrialStats | None = None
    pbo: float | None = Field(None, description="probability of backtest overfitting (CSCV)")
    pbo_splits: int = 0
    lookahead: LookaheadProbe | None = None
    notes: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0


class HoldoutResult(BaseModel):
    """The final holdout, evaluated once per cycle for the strategy the cycle chose:
    reported, never fed back to an LLM, never used to choose or rank."""

    holdout_id: str
    strategy_id: str
    metrics: BacktestMetrics
    sharpe_per_bar: float = 0.0
    psr: float | None = Field(None, description="probabilistic Sharpe ratio against 0")
    lookahead: LookaheadProbe | None = None
    notes: list[str] = Field(default_factory=list)


class Assessment(BaseModel):
    """The assessor's verdict on an out-of-sample result."""

    verdict: AssessorVerdict
    summary: str
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)
