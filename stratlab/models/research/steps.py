"""Payloads of the research cycle's activities, in the order the cycle calls them:
start the session, design, train, backtest, evaluate the holdout, assess, finish."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from stratlab.models.research.cycle import (
    BudgetScope,
    Outcome,
    ResearchCycleInput,
    ResearchCycleResult,
    TrialSource,
)
from stratlab.models.research.gates import (
    BacktestGateThresholds,
    GateResult,
    StatisticalGateThresholds,
    TrainingGateThresholds,
)
from stratlab.models.research.reports import Assessment, BacktestMetrics, TrainingReport
from stratlab.models.research.specs import StrategyKind, StrategySpec
from stratlab.models.research.windows import DataWindow


class StartSessionInput(BaseModel):
    session_id: str
    workflow_id: str
    run_id: str
    symbol: str
    kind: StrategyKind | None = None
    trigger: str = "manual"
    started_at: datetime
    cycle_input: ResearchCycleInput = ResearchCycleInput()


class SessionStarted(BaseModel):
    session_id: str
    designer_prompt_id: str
    assessor_prompt_id: str
    budget_remaining_usd: float
    budget_ok: bool


class DesignInput(BaseModel):
    session_id: str
    iteration: int
    symbol: str
    kind: StrategyKind | None = None
    prompt_id: str
    strategy_id: str = Field(description="made by the workflow so a retry reuses it")
    feedback: str = ""
    previous_strategy_id: str | None = None
    max_iterations: int = 3
    period: DataWindow | None = None
    isolated: bool = False
    budget_scope: BudgetScope = "research"
    blind: bool = False
    objective: str = ""


class DesignResult(BaseModel):
    strategy_id: str
    spec: StrategySpec
    tokens: int = 0
    cost_usd: float = 0.0


class TrainInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    training_run_id: str
    gate: TrainingGateThresholds | None = None
    period: DataWindow | None = None
    trial_source: TrialSource = Field("cycle", description="what the ledger counts it as")


class TrainResult(BaseModel):
    training_run_id: str
    report: TrainingReport
    gate: GateResult


class BacktestInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    training_run_id: str
    backtest_id: str
    gate: BacktestGateThresholds | None = None
    period: DataWindow | None = None
    statistical_gate: StatisticalGateThresholds | None = None
    trial_source: TrialSource = "cycle"


class BacktestResult(BaseModel):
    backtest_id: str
    metrics: BacktestMetrics
    gate: GateResult
    statistical_gate: GateResult | None = None
    trials: int = 0


class HoldoutInput(BaseModel):
    session_id: str
    strategy_id: str
    training_run_id: str
    holdout_id: str
    period: DataWindow | None = None


class AssessInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    backtest_id: str
    prompt_id: str
    assessment_id: str
    max_iterations: int = 3
    budget_scope: BudgetScope = "research"


class AssessResult(BaseModel):
    assessment: Assessment
    tokens: int = 0
    cost_usd: float = 0.0


class FinishSessionInput(BaseModel):
    session_id: str
    outcome: Outcome
    best_strategy_id: str | None = None
    finished_at: datetime
    result: ResearchCycleResult
    keep_skill: bool = True
