"""Rows of the store as models: what ``stratlab.store`` repositories return.

Each model matches the columns its repository selects, so ``Model.model_validate(row)``
turns a dict row into it. jsonb columns reuse the research DTOs (``StrategySpec``,
``TrainingReport``, ``BacktestMetrics``, ``GateResult``, ``Assessment``); money comes out
of numeric columns as float, which is exact enough to display while every sum that
matters (the budget) is done by Postgres in numeric.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

from stratlab.models.llm import LlmCallRecord
from stratlab.models.prompts import PromptTag
from stratlab.models.research import (
    Assessment,
    BacktestMetrics,
    GateResult,
    Outcome,
    Phase,
    ResearchCycleResult,
    StrategyKind,
    StrategySpec,
    TrainingReport,
)

SessionStatus = Literal["running", "finished"]
PhaseStatus = Literal["running", "ok", "failed", "skipped"]
TriggerDecision = Literal["started", "skipped_budget"]
TrainingStatus = Literal["running", "completed", "failed"]
ReservationStatus = Literal["reserved", "settled", "denied"]


# --- sessions ---------------------------------------------------------------------------


class SessionRecord(BaseModel):
    """One research cycle. ``llm_calls``, ``tokens`` and ``cost_usd`` are summed from
    ``agent_actions`` when read, so they are current while the session is running."""

    session_id: str
    workflow_id: str
    run_id: str = ""
    trigger: str = "manual"
    symbol: str
    kind: StrategyKind | None = None
    status: SessionStatus
    outcome: Outcome | None = None
    best_strategy_id: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    result: ResearchCycleResult | None = None
    started_at: datetime
    finished_at: datetime | None = None
    designer_prompt_id: str | None = None
    assessor_prompt_id: str | None = None
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class SessionMetrics(BaseModel):
    """One row of ``agent_metrics``: aggregates written when a session finishes."""

    session_id: str
    symbol: str
    outcome: Outcome
    iterations: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    best_strategy_id: str | None = None
    best_sharpe: float | None = None
    computed_at: datetime | None = None


class PhaseRecord(BaseModel):
    """Progress of one phase of one iteration of a session."""

    session_id: str
    iteration: int
    phase: Phase
    started_at: datetime
    finished_at: datetime | None = None
    status: PhaseStatus
    detail: dict[str, Any] = Field(default_factory=dict)


class TriggerRecord(BaseModel):
    """One trigger check: what fired and whether a cycle started."""

    trigger_id: str
    kind: str
    workflow_id: str | None = None
    session_id: str | None = None
    decision: TriggerDecision
    reason: str = ""
    created_at: datetime


class PastStrategy(BaseModel):
    """A past strategy as the designer sees it: what was tried and how it went.
    ``outcome`` is its iteration's outcome (null while unknown), ``sharpe`` the
    out-of-sample Sharpe of its latest backtest (null if it never got that far)."""

    strategy_id: str
    session_id: str | None = None
    iteration: int
    name: str
    kind: StrategyKind
    symbol: str
    outcome: Outcome | None = None
    sharpe: float | None = None
    created_at: datetime


# --- research artifacts -----------------------------------------------------------------


class StrategyRecord(BaseModel):
    strategy_id: str
    session_id: str | None = None
    iteration: int = 0
    name: str
    kind: StrategyKind
    symbol: str
    spec: StrategySpec
    created_at: datetime


class TrainingRunRecord(BaseModel):
    """A training run without its model bytes (``ResearchRepo.load_model`` reads them)."""

    training_run_id: str
    strategy_id: str
    session_id: str | None = None
    status: TrainingStatus
    report: TrainingReport | None = None
    gate: GateResult | None = None
    best_params: dict[str, Any] | None = None
    has_model: bool = False
    created_at: datetime
    finished_at: datetime | None = None


class Checkpoint(NamedTuple):
    """The latest saved epoch of a training run; unpacks as ``epoch, state, metrics``."""

    epoch: int
    state: bytes
    metrics: dict[str, Any]


class EquityCurve(BaseModel):
    """A backtest's equity curve and its buy-and-hold benchmark, aligned on ``ts``."""

    ts: list[datetime] = Field(default_factory=list)
    equity: list[float] = Field(default_factory=list)
    benchmark: list[float] = Field(default_factory=list)


class BacktestRecord(BaseModel):
    """A backtest without its equity curve (``ResearchRepo.load_equity`` reads it)."""

    backtest_id: str
    strategy_id: str
    training_run_id: str | None = None
    session_id: str | None = None
    metrics: BacktestMetrics
    gate: GateResult | None = None
    statistical_gate: GateResult | None = None
    trials: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class AssessmentRecord(BaseModel):
    assessment_id: str
    session_id: str | None = None
    iteration: int = 0
    strategy_id: str
    backtest_id: str | None = None
    assessment: Assessment
    created_at: datetime


# --- LLM calls and budget ---------------------------------------------------------------


class ActionRecord(LlmCallRecord):
    """A stored LLM call: the call record plus when it was written."""

    created_at: datetime


class UsageTotals(NamedTuple):
    """Tokens and cost summed over LLM calls; unpacks as ``tokens, cost_usd``."""

    tokens: int
    cost_usd: float


class BudgetDay(BaseModel):
    """One scope's budget for one UTC day. ``remaining_usd`` is what a new reservation
    may still take: cap minus spent minus reserved."""

    scope: str
    day: date
    cap_usd: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    overrun_usd: float = Field(0.0, description="spend reported beyond the cap by settlements")
    remaining_usd: float
    updated_at: datetime | None = None


class BudgetReservation(BaseModel):
    reservation_id: str
    scope: str
    day: date
    amount_usd: float
    actual_usd: float | None = None
    status: ReservationStatus
    created_at: datetime
    settled_at: datetime | None = None


# --- prompt registry --------------------------------------------------------------------


class PromptTagEvent(BaseModel):
    """One append-only lifecycle event of a prompt."""

    event_id: int
    prompt_id: str
    tag: PromptTag
    actor: str
    reason: str = ""
    created_at: datetime


# --- market data ------------------------------------------------------------------------


class DatasetRecord(BaseModel):
    """An imported OHLCV data set; its bars are loaded with ``MarketRepo.load_bars``."""

    symbol: str
    source: str
    rows: int
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    content_hash: str
    imported_at: datetime


# --- skill library ----------------------------------------------------------------------


class SkillRecord(BaseModel):
    """A strategy that passed every gate, kept for later designs (table ``skills``).

    ``metrics`` are the out-of-sample ones, ``score`` their Sharpe; ``params`` the values
    training chose; ``tags`` hold the symbol, the kind and a regime (trend,
    mean_reversion, breakout, ml). ``created_at`` is None until the row is stored.
    """

    skill_id: str
    strategy_id: str
    session_id: str | None = None
    symbol: str
    kind: StrategyKind
    name: str
    spec: StrategySpec
    code: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: BacktestMetrics
    score: float = 0.0
    tags: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
