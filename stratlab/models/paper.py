"""What crosses Temporal for paper trading: the workflow's input and state, and the
small results of its activities. Market data, books and plans stay in Postgres; these
carry ids, timestamps and a few numbers, so a long run's history stays small.

Every field has a default so ``{}``-style inputs work from ``temporal workflow start``
and old histories keep decoding when a field is added.
"""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, Field, field_validator

from stratlab.models.trading import GuardrailConfig, StrategyStatus, UtcDatetime

_STRATEGY_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_strategy_id(value: str) -> str:
    """Strategy ids become workflow ids and file names: lowercase, short, no spaces."""
    if not _STRATEGY_ID.match(value):
        raise ValueError(
            f"strategy id {value!r} must be 1-64 characters of a-z, 0-9, '_', '.', '-' "
            "starting with a letter or digit"
        )
    return value


class PaperCostsInput(BaseModel):
    fees_bps: float = Field(5.0, ge=0, lt=10_000)
    slippage_bps: float = Field(5.0, ge=0, lt=10_000)


class PaperTradingInput(BaseModel):
    """Input of ``PaperTradingWorkflow`` (id ``paper-<strategy_id>``).

    With ``replay_from`` the strategy trades a replayed historical clock: one decision
    per bar from that date, one bar per ``speed_seconds`` of wall time, until
    ``replay_to`` or the end of the data. Without it, it follows the live-style feed:
    each symbol's data set (or the file in ``feed``) is polled every ``poll_seconds``
    and every new bar is one decision."""

    strategy_id: str = Field("", description="empty: derived from the workflow id")
    name: str = ""
    symbols: list[str] = Field(default_factory=lambda: ["sp500"], min_length=1, max_length=20)
    prompt_id: str | None = Field(None, description="composer prompt; null = the prod one")
    skill_id: str | None = Field(None, description="a skill whose signal the composer sees")
    interval: str = Field("1d", description="bar interval of the data")
    replay_from: date | None = None
    replay_to: date | None = None
    speed_seconds: float = Field(0.0, ge=0, le=86_400, description="wall time per bar")
    poll_seconds: float = Field(60.0, gt=0, le=86_400, description="live feed poll interval")
    feed: dict[str, str] = Field(
        default_factory=dict, description="symbol -> CSV/Parquet file that grows (live mode)"
    )
    initial_capital: float = Field(100_000.0, gt=0, le=1e12)
    guardrails: GuardrailConfig = Field(default_factory=GuardrailConfig)
    costs: PaperCostsInput = Field(default_factory=PaperCostsInput)
    cycles_per_run: int = Field(100, ge=1, le=10_000, description="continue-as-new after")
    max_cycles: int | None = Field(None, ge=1, description="stop after this many decisions")
    state: PaperRunState | None = Field(None, description="carried over by continue-as-new")

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, symbols: list[str]) -> list[str]:
        cleaned = [s.strip() for s in symbols if s.strip()]
        if not cleaned:
            raise ValueError("at least one symbol")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"symbols repeat: {', '.join(cleaned)}")
        return cleaned

    @property
    def mode(self) -> str:
        return "replay" if self.replay_from is not None else "live"


class PaperRunState(BaseModel):
    """What one run hands the next through continue-as-new."""

    cycle: int = Field(0, description="decisions made so far")
    cursor: UtcDatetime | None = Field(None, description="ts of the last decision bar")
    pending_compose_id: str | None = Field(
        None, description="the cycle whose instructions fill at the next bar's open"
    )
    paused: bool = False
    runs: int = Field(1, description="this run's number in the chain")
    summary: PaperSummary | None = None


class PaperOpenInput(BaseModel):
    strategy_id: str
    workflow_id: str
    run_key: str = Field(description="the chain's first run id: a reused strategy id differs")
    settings: PaperTradingInput


class PaperOpened(BaseModel):
    strategy_id: str
    prompt_id: str
    initial_capital: float
    status: StrategyStatus = "running"


class MarketStepInput(BaseModel):
    strategy_id: str
    cycle: int
    compose_id: str
    cursor: UtcDatetime | None = None


class MarketStep(BaseModel):
    """The next decision bar (its features are recorded), or why there is none yet."""

    bar_ts: UtcDatetime | None = None
    finished: bool = Field(False, description="replay over: no bar will come")
    waiting: str = Field("", description="why no bar yet (live feed)")


class CycleStepInput(BaseModel):
    strategy_id: str
    cycle: int
    compose_id: str
    pending_compose_id: str | None = None
    compose_error: str = Field(
        "", description="the composer failed for good: record this and let the fallback decide"
    )


class ExecutionStep(BaseModel):
    fills: int = 0
    total_value: float
    cash: float
    halted: bool = False


class ComposeStep(BaseModel):
    items: int = 0
    fallback: str = Field("", description="why the guardrails' fallback will decide")
    tokens: int = 0
    cost_usd: float = 0.0


class DecisionStep(BaseModel):
    instructions: int = 0
    changes: int = Field(0, description="guardrail reports: what was dropped or clipped")
    summary: list[str] = Field(default_factory=list, description="a few short lines")


class StatusInput(BaseModel):
    strategy_id: str
    status: StrategyStatus


class PaperSignal(BaseModel):
    """Payload of the ``pause``, ``resume`` and ``stop`` signals (all optional)."""

    reason: str = Field("", description="why: a stop's reason becomes finished_reason")


class PaperSummary(BaseModel):
    """The ``summary`` query's answer and the workflow's result."""

    strategy_id: str = ""
    status: StrategyStatus = "running"
    mode: str = "replay"
    cycle: int = 0
    last_bar_ts: UtcDatetime | None = None
    total_value: float | None = None
    cash: float | None = None
    initial_capital: float | None = None
    pnl: float | None = None
    pnl_pct: float | None = None
    halted: bool = False
    last_decision: list[str] = Field(default_factory=list)
    waiting: str = ""
    finished_reason: str = ""
    runs: int = 1
    ignored_signals: list[str] = Field(
        default_factory=list, description="the last signals whose payload was unusable, and why"
    )


PaperRunState.model_rebuild()
PaperTradingInput.model_rebuild()
