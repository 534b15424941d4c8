"""DTOs of the paper-trading strategy agent (seed 001) plus the guardrail and fill models.

Units: quantities are instrument units (signed on positions: negative is short), prices
and money are in the instrument's quote currency, costs are basis points (1 bps =
0.0001) of traded value, exposures in ``GuardrailConfig`` are fractions of equity and
every timestamp is timezone-aware UTC (naive ones are read as UTC). Ids: ``compose_id``
per decision cycle, ``instruction_id = f"{compose_id}:{symbol}"`` with ``:1`` for a
second instruction on the same symbol (see ``instruction_id``).

These cross Temporal histories and jsonb columns, so every field added later gets a
default: old histories must still decode.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def to_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; naive values are taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]
Action = Literal["buy", "sell", "flat", "noop"]
Side = Literal["buy", "sell"]
HistoryKind = Literal["features", "compose", "instructions", "execution"]
TradingMode = Literal["live", "virtual"]
StrategyStatus = Literal["running", "paused", "stopped", "error"]


def instruction_id(compose_id: str, symbol: str, ordinal: int = 0) -> str:
    """Seed 001's idempotency key: ``compose_id:symbol``, then ``:1``, ``:2``..."""
    base = f"{compose_id}:{symbol}"
    return base if ordinal == 0 else f"{base}:{ordinal}"


# --- market data and features ---------------------------------------------------------


class InstrumentRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    exchange_id: str | None = None
    quote_ccy: str | None = None


class Candle(BaseModel):
    """One OHLCV bar; ``ts`` is the bar's open time, as in the lab's data sets."""

    ts: UtcDatetime
    instrument: InstrumentRef
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    interval: str = "1d"


class FeatureVector(BaseModel):
    ts: UtcDatetime
    instrument: InstrumentRef
    values: dict[str, float] = Field(default_factory=dict)
    meta: dict[str, Any] | None = None


# --- portfolio --------------------------------------------------------------------------


class PositionSnapshot(BaseModel):
    instrument: InstrumentRef
    quantity: float = Field(description="signed units; negative is short")
    avg_price: float | None = None
    mark_price: float | None = None
    unrealized_pnl: float | None = None
    notional: float | None = Field(None, description="signed quantity * mark_price")
    leverage: float | None = None
    entry_ts: UtcDatetime | None = None
    pnl_pct: float | None = Field(None, description="fraction, 0.05 = +5% on the position")
    trade_type: Literal["long", "short"] | None = None


class PortfolioView(BaseModel):
    """A marked portfolio. Exposures are money (quote currency), not fractions."""

    strategy_id: str | None = None
    ts: UtcDatetime
    cash: float
    positions: dict[str, PositionSnapshot] = Field(default_factory=dict)
    gross_exposure: float | None = Field(None, description="sum of |notional|")
    net_exposure: float | None = Field(None, description="sum of signed notional")
    constraints: dict[str, Any] | None = None
    total_value: float | None = Field(None, description="cash + net notional (equity)")
    total_unrealized_pnl: float | None = None
    available_cash: float | None = None
    # Beyond seed 001: what the drawdown halt needs, and the book's running totals.
    peak_total_value: float | None = Field(None, description="high-water mark of total_value")
    halted: bool = Field(False, description="max-drawdown halt: only reducing orders pass")
    realized_pnl: float | None = Field(None, description="net of all fees paid")
    fees_paid: float | None = None


# --- LLM decision and normalisation ---------------------------------------------------


class LlmDecisionItem(BaseModel):
    """One instrument's decision. ``target_qty`` is the signed position wanted after the
    order (not the order size); NaN/inf parse here and are rejected by the guardrails."""

    instrument: InstrumentRef
    action: Action
    target_qty: float | None = None
    confidence: float | None = Field(None, description="0..1; missing counts as 0")
    rationale: str | None = None


class LlmPlanProposal(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    ts: UtcDatetime
    items: list[LlmDecisionItem] = Field(default_factory=list)
    notes: str | None = None
    model_meta: dict[str, Any] | None = None


class TradeInstruction(BaseModel):
    instruction_id: str
    compose_id: str
    instrument: InstrumentRef
    side: Side
    quantity: float = Field(description="units, > 0, a multiple of the step size")
    price_mode: Literal["market"] = "market"
    limit_price: float | None = None
    max_slippage_bps: float | None = None
    meta: dict[str, Any] | None = None
    signal_ts: UtcDatetime | None = Field(
        None, description="ts of the bar the decision saw; the fill bar must be later"
    )


# --- history and digest -----------------------------------------------------------------


class HistoryRecord(BaseModel):
    ts: UtcDatetime
    kind: HistoryKind
    reference_id: str = Field(description="the compose_id of the cycle")
    payload: dict[str, Any] = Field(default_factory=dict)


class TradeDigestEntry(BaseModel):
    instrument: InstrumentRef
    trade_count: int = 0
    realized_pnl: float = Field(0.0, description="closed round trips, net of fees")
    win_rate: float | None = None
    avg_holding_ms: float | None = None
    last_trade_ts: UtcDatetime | None = None
    avg_entry_price: float | None = None
    max_drawdown: float | None = Field(
        None,
        description="positive fraction, 0.25 = 25% below the peak of the trades' returns "
        "compounded in order",
    )
    recent_performance_score: float | None = Field(
        None, description="mean return of the last trades, clipped to [-1, 1]"
    )
    # Beyond seed 001: what the cool-down reads.
    last_exit_ts: UtcDatetime | None = None
    last_exit_bar: int | None = Field(None, description="bar index of the last exit fill")


class TradeDigest(BaseModel):
    ts: UtcDatetime
    by_instrument: dict[str, TradeDigestEntry] = Field(default_factory=dict)


class Fill(BaseModel):
    """One paper fill at the open of the bar after the signal, costs included."""

    instruction_id: str
    compose_id: str = ""
    symbol: str
    ts: UtcDatetime = Field(description="ts of the fill bar")
    signal_ts: UtcDatetime | None = None
    side: Side
    quantity: float = Field(description="units, > 0")
    price: float = Field(description="fill price: the open worsened by slippage")
    fee: float = Field(0.0, description="money, fees_bps of price * quantity")
    slippage_cost: float = Field(0.0, description="money, |price - open| * quantity")
    realized_pnl: float = Field(0.0, description="price P&L of the closed part, before fees")
    position_after: float = 0.0
    bar_index: int | None = None


class TradeHistoryEntry(BaseModel):
    """One round trip (flat to flat, or to a flip) built from fills."""

    trade_id: str | None = None
    compose_id: str | None = None
    instruction_id: str | None = None
    strategy_id: str | None = None
    trade_ts: UtcDatetime | None = None
    entry_ts: UtcDatetime | None = None
    exit_ts: UtcDatetime | None = None
    instrument: InstrumentRef
    side: Side = Field(description="side of the entry: buy opens a long")
    type: Literal["long", "short"]
    quantity: float = Field(description="units entered over the whole trade")
    entry_price: float | None = None
    exit_price: float | None = None
    realized_pnl: float | None = Field(None, description="net of the trade's fees")
    realized_pnl_pct: float | None = Field(None, description="realized_pnl / entry value")
    holding_ms: float | None = None
    leverage: float | None = None
    note: str | None = None
    fees: float = 0.0
    exit_bar: int | None = None


# --- UI summaries -----------------------------------------------------------------------


class StrategySummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    strategy_id: str | None = None
    name: str | None = None
    model_provider: str | None = None
    model_id: str | None = None
    exchange_id: str | None = None
    mode: TradingMode | None = None
    status: StrategyStatus | None = None
    pnl_abs: float | None = None
    pnl_pct: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    last_updated_ts: UtcDatetime | None = None


class MetricPoint(BaseModel):
    ts: UtcDatetime
    value: float


class PortfolioValueSeries(BaseModel):
    strategy_id: str | None = None
    points: list[MetricPoint] = Field(default_factory=list)


# --- guardrails -------------------------------------------------------------------------


class InstrumentLimits(BaseModel):
    """Per-symbol overrides of ``GuardrailConfig``'s order limits; None inherits."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    step_size: float | None = Field(None, gt=0)
    min_qty: float | None = Field(None, ge=0)
    min_notional: float | None = Field(None, ge=0)
    max_position_notional: float | None = Field(None, ge=0)


class GuardrailConfig(BaseModel):
    """Risk limits of the composer. They come from the user, never from LLM text."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    step_size: float = Field(1.0, gt=0, description="units; orders round down to multiples")
    min_qty: float = Field(0.0, ge=0, description="units; smaller orders are dropped")
    min_notional: float = Field(10.0, ge=0, description="money; smaller orders are dropped")
    max_position_notional: float = Field(
        50_000.0, ge=0, description="money; cap on |position| * price per instrument"
    )
    instruments: dict[str, InstrumentLimits] = Field(default_factory=dict)
    max_net_exposure: float = Field(
        1.0, ge=0, description="fraction of equity; cap on |sum of signed notionals|"
    )
    allow_short: bool = False
    cooldown_bars: int = Field(2, ge=0, description="bars after an exit with no new entry")
    min_confidence: float = Field(0.3, ge=0, le=1)
    max_drawdown_halt: float = Field(
        0.25, gt=0, le=1, description="fraction below the high-water mark that halts"
    )
    downweight_below: float = Field(
        0.0, ge=-1, le=1, description="recent_performance_score under this scales additions"
    )
    downweight_factor: float = Field(0.5, ge=0, le=1)
    fallback: Literal["noop", "flat"] = "noop"
    max_abs_target_qty: float = Field(1e12, gt=0, description="larger targets are invalid")
    max_items: int = Field(200, ge=1, description="plan items beyond this are ignored")
    max_slippage_bps: float | None = Field(None, ge=0)
    max_text_chars: int = Field(500, ge=0, description="rationale kept in instruction meta")

    def limits_for(self, symbol: str) -> InstrumentLimits:
        """The effective limits of ``symbol``: its overrides over the defaults."""
        own = self.instruments.get(symbol, InstrumentLimits())
        return InstrumentLimits(
            step_size=own.step_size if own.step_size is not None else self.step_size,
            min_qty=own.min_qty if own.min_qty is not None else self.min_qty,
            min_notional=own.min_notional if own.min_notional is not None else self.min_notional,
            max_position_notional=own.max_position_notional
            if own.max_position_notional is not None
            else self.max_position_notional,
        )


GuardrailRule = Literal[
    "unknown_symbol",
    "invalid_field",
    "absurd_quantity",
    "duplicate_symbol",
    "action_mismatch",
    "too_many_items",
    "low_confidence",
    "short_not_allowed",
    "max_drawdown_halt",
    "cooldown",
    "downweight",
    "position_cap",
    "net_exposure_cap",
    "step_size",
    "min_qty",
    "min_notional",
    "fallback",
    "internal_error",
]


GuardrailOutcome = Literal["dropped", "clipped", "applied"]


class GuardrailReport(BaseModel):
    """What one rule changed or dropped, for the compose history record and
    ``paper status``. ``requested``/``result`` are target positions (units), or order
    quantities for the rounding rules; None when the value was not finite."""

    rule: GuardrailRule
    outcome: GuardrailOutcome
    symbol: str | None = Field(None, description="as given, truncated to 64 characters")
    item_index: int | None = None
    requested: float | None = None
    result: float | None = None
    detail: str = ""

    @staticmethod
    def number(value: float | None) -> float | None:
        """JSON cannot carry NaN or inf through Temporal: such values become None."""
        return value if value is not None and math.isfinite(value) else None
