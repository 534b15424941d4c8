"""The research cycle as a whole: its input, outcomes, phases, per-iteration summaries,
result and live status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from stratlab.models.optimizer_slice import research_refusal
from stratlab.models.research.gates import (
    BacktestGateThresholds,
    GateResult,
    StatisticalGateThresholds,
    TrainingGateThresholds,
)
from stratlab.models.research.reports import Assessment, BacktestMetrics, HoldoutResult
from stratlab.models.research.specs import StrategyKind
from stratlab.models.research.windows import DataWindow

Outcome = Literal[
    "success",
    "failed_design",
    "failed_training",
    "failed_training_gate",
    "failed_backtest",
    "failed_backtest_gate",
    "failed_assessment",
    "skipped_budget",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
Phase = Literal[
    "starting",
    "budget",
    "design",
    "train",
    "backtest",
    "assess",
    "analyse",
    "holdout",
    "recording",
    "done",
]
BudgetScope = Literal["research", "optimizer"]
TrialSource = Literal["cycle", "optimizer", "user"]


def refuse_optimizer_data(symbol: str, trigger: str) -> None:
    """Raise (as a validator does) when research started by ``trigger`` may not use ``symbol``."""
    refusal = research_refusal(symbol, trigger)
    if refusal:
        raise ValueError(refusal)


class ResearchCycleInput(BaseModel):
    """Input of ``ResearchCycleWorkflow``; ``{}`` is a valid input."""

    symbol: str = Field("sp500", description="data set: sp500, nasdaq or an imported symbol")
    kind: StrategyKind | None = Field(
        None, description="rules | ml | code; null lets the designer pick rules or ml"
    )
    max_iterations: int = Field(3, ge=1, le=10, description="design rounds incl. refinements")
    convergence_threshold: float = Field(
        0.05, description="stop refining when OOS Sharpe improves by less than this"
    )
    session_id: str = Field("", description="empty: made by the workflow")
    trigger: str = Field("manual", description="what started it: manual, schedule, cli, demo")
    training_gate: TrainingGateThresholds | None = None
    backtest_gate: BacktestGateThresholds | None = None
    # Set by regression runs (prompt evolution); a user may set them too.
    period: DataWindow | None = Field(None, description="only the bars in this window")
    designer_prompt_id: str = Field("", description="empty: the designer's prod prompt")
    assessor_prompt_id: str = Field("", description="empty: the assessor's prod prompt")
    assess: bool = Field(True, description="false: stop after the backtest gate")
    isolated: bool = Field(
        False,
        description="design from the prompt and data alone: no recent strategies or skills "
        "in the prompt, and a winner does not join the skill library",
    )
    budget_scope: BudgetScope = Field("research", description="research | optimizer")
    statistical_gate: StatisticalGateThresholds | None = None
    blind: bool = Field(
        False,
        description="the designer sees an anonymised symbol and relative dates, so a "
        "model that remembers the market cannot trade a known crash or rally by date",
    )
    objective: str = Field(
        "",
        max_length=1_000,
        description="what the strategy is asked to achieve, in words; the designer reads it "
        "(a regression run passes its task's objective)",
    )

    @model_validator(mode="after")
    def _not_on_the_optimizers_data(self) -> ResearchCycleInput:
        refuse_optimizer_data(self.symbol, self.trigger)
        return self


class IterationSummary(BaseModel):
    iteration: int
    strategy_id: str | None = None
    strategy_name: str | None = None
    kind: StrategyKind | None = None
    outcome: Outcome
    training_run_id: str | None = None
    training_gate: GateResult | None = None
    backtest_gate: GateResult | None = None
    metrics: BacktestMetrics | None = None
    statistical_gate: GateResult | None = None
    trials: int = Field(0, description="the ledger's N the statistical gate judged against")
    assessment: Assessment | None = None
    error: str | None = None


class ResearchCycleResult(BaseModel):
    session_id: str
    outcome: Outcome
    iterations: list[IterationSummary] = Field(default_factory=list)
    best_strategy_id: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    converged: bool = False
    holdout: HoldoutResult | None = None


class CycleStatus(BaseModel):
    """Answer of the workflow's ``status`` query: costs no tokens."""

    session_id: str
    phase: Phase
    iteration: int
    symbol: str
    started_at: datetime
    outcome: Outcome | None = None
    last_sharpe: float | None = None
    last_error: str | None = None
