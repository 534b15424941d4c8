"""A user's own strategy through the lab's pipeline: registering it, and evaluating it
(fit, walk-forward, look-ahead probe, gates, holdout) like a designed one."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from stratlab.models.research.cycle import Outcome, refuse_optimizer_data
from stratlab.models.research.gates import (
    BacktestGateThresholds,
    GateCheck,
    GateResult,
    StatisticalGateThresholds,
    TrainingGateThresholds,
)
from stratlab.models.research.reports import BacktestMetrics, HoldoutResult
from stratlab.models.research.specs import StrategySpec
from stratlab.models.research.windows import DataWindow


class RegisterStrategyInput(BaseModel):
    """A strategy the user wrote, to be validated and stored like a designed one."""

    session_id: str = ""
    strategy_id: str = Field("", description="made by the workflow so a retry reuses it")
    iteration: int = 1
    spec: StrategySpec | None = None


class RegisterStrategyResult(BaseModel):
    strategy_id: str = ""
    spec: StrategySpec | None = Field(None, description="the spec as stored")


class EvaluateStrategyInput(BaseModel):
    """Input of ``EvaluateStrategyWorkflow``: a user's rules, ml or code spec (the JSON the
    designer produces) through fit, walk-forward, look-ahead probe, the seed gates, the
    statistical gate and the holdout. ``spec`` is required; the workflow fails at once
    without one."""

    spec: StrategySpec | None = Field(None, description="the strategy to evaluate (required)")
    symbol: str = Field("", description="empty: the spec's own symbol; else overrides it")
    session_id: str = Field("", description="empty: made by the workflow")
    period: DataWindow | None = Field(None, description="only the bars in this window")
    training_gate: TrainingGateThresholds | None = None
    backtest_gate: BacktestGateThresholds | None = None
    statistical_gate: StatisticalGateThresholds | None = None

    @model_validator(mode="after")
    def _not_on_the_optimizers_data(self) -> EvaluateStrategyInput:
        refuse_optimizer_data(self.symbol or (self.spec.symbol if self.spec else ""), "user")
        return self


class EvaluateStrategyResult(BaseModel):
    """What the evaluation found. ``checks`` are the training gate's, then the backtest
    gate's, then the statistical gate's, in order (``gates`` holds them by gate, with each
    gate's verdict); ``trials`` is the ledger's N the statistical gate judged against;
    ``metrics`` are the walk-forward out-of-sample metrics; ``holdout`` is evaluated only
    for a strategy that passed every gate."""

    session_id: str = ""
    outcome: Outcome = "failed_design"
    strategy_id: str | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    trials: int = 0
    holdout: HoldoutResult | None = None
    metrics: BacktestMetrics | None = None
    error: str | None = None
