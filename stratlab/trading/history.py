"""What a paper strategy's history records hold: one typed payload per record kind.

A decision cycle writes ``features`` (observe), ``compose`` (the composer), ``instructions``
(the guardrails) and, on the next bar, ``execution`` (the fills), each keyed by the cycle's
compose_id. The payloads are jsonb rows read back by the steps (a retried step returns what
it recorded) and by ``stratlab paper status``; their JSON keeps the shape the records have
always had, and fields added later get defaults, so stored rows keep reading.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from stratlab.models.paper import ComposeStep, DecisionStep
from stratlab.models.trading import (
    Candle,
    FeatureVector,
    Fill,
    GuardrailReport,
    HistoryKind,
    HistoryRecord,
    InstrumentRef,
    LlmPlanProposal,
    TradeDigest,
    TradeInstruction,
    UtcDatetime,
)

SUMMARY_LINES = 5
"""How many lines a ``DecisionStep`` summary carries into the workflow's history."""


class BarPayload(BaseModel):
    """A symbol's decision bar (a ``Candle`` without the instrument and interval)."""

    ts: UtcDatetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0

    @classmethod
    def of(cls, candle: Candle) -> BarPayload:
        return cls.model_validate(candle.model_dump(include=set(cls.model_fields)))

    def candle(self, symbol: str) -> Candle:
        return Candle(instrument=InstrumentRef(symbol=symbol), **self.model_dump())


class FeaturesPayload(BaseModel):
    """``features``: the decision bar of every symbol and the composer's feature vectors."""

    bar: dict[str, BarPayload] = Field(default_factory=dict)
    features: list[FeatureVector] = Field(default_factory=list)

    def closes(self) -> dict[str, float]:
        return {symbol: bar.close for symbol, bar in self.bar.items()}

    def candles(self) -> dict[str, Candle]:
        return {symbol: bar.candle(symbol) for symbol, bar in self.bar.items()}


class PortfolioTotals(BaseModel):
    total_value: float | None = None
    cash: float | None = None


class ComposePayload(BaseModel):
    """``compose``: the composer's plan, or why there is none, and what the call cost."""

    prompt_id: str | None = None
    plan: LlmPlanProposal | None = None
    error: str = Field("", description="why the guardrails' fallback decides this cycle")
    tokens: int = 0
    cost_usd: float = 0.0
    provider: str | None = None
    model: str | None = None
    portfolio: PortfolioTotals | None = None
    digest: TradeDigest | None = None

    def step(self) -> ComposeStep:
        return ComposeStep(
            items=len(self.plan.items) if self.plan else 0,
            fallback=self.error,
            tokens=self.tokens,
            cost_usd=self.cost_usd,
        )


class DecisionPayload(BaseModel):
    """``instructions``: the guardrails' orders and what each rule changed."""

    instructions: list[TradeInstruction] = Field(default_factory=list)
    guardrails: list[GuardrailReport] = Field(default_factory=list)
    fallback: bool = False

    def step(self) -> DecisionStep:
        """The few lines the workflow shows: the first orders, then what was changed."""
        lines = [
            f"{i.side} {i.quantity:g} {i.instrument.symbol}"
            for i in self.instructions[: SUMMARY_LINES - 1]
        ]
        changed = [r for r in self.guardrails if r.outcome in ("dropped", "clipped")]
        for report in changed[: max(0, SUMMARY_LINES - len(lines))]:
            line = f"{report.outcome} {report.symbol or ''} ({report.rule})"
            lines.append(line.replace("  ", " "))
        return DecisionStep(
            instructions=len(self.instructions), changes=len(changed), summary=lines
        )


class ExecutionPayload(BaseModel):
    """``execution``: the fills of a cycle's instructions at the next bar's open."""

    fills: list[Fill] = Field(default_factory=list)


def history_record(
    kind: HistoryKind, compose_id: str, ts: datetime, payload: BaseModel
) -> HistoryRecord:
    """The record of one step of the cycle ``compose_id``, its payload in JSON form."""
    return HistoryRecord(
        ts=ts, kind=kind, reference_id=compose_id, payload=payload.model_dump(mode="json")
    )
