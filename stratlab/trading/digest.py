"""Round trips from fills, and the per-instrument trade digest the composer reads.

A round trip runs from flat to flat; a fill that flips the position closes the trade
and opens the next one at the same price, its fee shared between them by quantity.
Trade P&L uses the average-cost method of ``PaperBook``, so the realised P&L of all
closed trades equals the book's ``realized_pnl`` once the book is flat.

The digest only counts trades that exited at or before ``now``, so a replayed clock never
sees its own future. Its ``max_drawdown`` means what it means everywhere in the lab
(``stratlab.backtest.drawdown``): a positive fraction, here of the instrument's trades
compounded one after the other (0.25: a quarter below the best it had reached).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stratlab.backtest.drawdown import max_drawdown
from stratlab.models.trading import (
    Fill,
    HistoryRecord,
    InstrumentRef,
    TradeDigest,
    TradeDigestEntry,
    TradeHistoryEntry,
    to_utc,
)
from stratlab.trading.history import ExecutionPayload, history_record

RECENT_TRADES = 5
"""How many of an instrument's last trades the recent performance score averages."""


def execution_record(compose_id: str, ts: datetime, fills: Sequence[Fill]) -> HistoryRecord:
    """The ``execution`` history record of a cycle: the shape ``build_digest`` reads."""
    return history_record("execution", compose_id, ts, ExecutionPayload(fills=list(fills)))


def fills_from_records(records: Sequence[HistoryRecord]) -> list[Fill]:
    """Fills of the ``execution`` records, once per instruction_id (a retried activity
    may have recorded a cycle twice), in record order."""
    fills: dict[str, Fill] = {}
    for record in records:
        if record.kind != "execution":
            continue
        for fill in ExecutionPayload.model_validate(record.payload).fills:
            fills.setdefault(fill.instruction_id, fill)
    return list(fills.values())


@dataclass
class _Open:
    """A trade being built: entries raise the position, exits lower it."""

    first: Fill
    sign: float
    position: float = 0.0
    avg: float = 0.0
    entered: float = 0.0
    entry_value: float = 0.0
    exited: float = 0.0
    exit_value: float = 0.0
    price_pnl: float = 0.0
    fees: float = 0.0

    def enter(self, qty: float, price: float, fee: float) -> None:
        self.avg = (self.position * self.avg + qty * price) / (self.position + qty)
        self.position += qty
        self.entered += qty
        self.entry_value += qty * price
        self.fees += fee

    def exit(self, qty: float, price: float, fee: float) -> None:
        self.price_pnl += qty * (price - self.avg) * self.sign
        self.position -= qty
        self.exited += qty
        self.exit_value += qty * price
        self.fees += fee

    def entry(self, last: Fill | None) -> TradeHistoryEntry:
        pnl = self.price_pnl - self.fees
        exit_ts, entry_ts = (last.ts if last else None), self.first.ts
        return TradeHistoryEntry(
            trade_id=f"trade:{self.first.instruction_id}",
            compose_id=self.first.compose_id or None,
            instruction_id=self.first.instruction_id,
            trade_ts=exit_ts,
            entry_ts=entry_ts,
            exit_ts=exit_ts,
            instrument=InstrumentRef(symbol=self.first.symbol),
            side="buy" if self.sign > 0 else "sell",
            type="long" if self.sign > 0 else "short",
            quantity=self.entered,
            entry_price=self.entry_value / self.entered,
            exit_price=self.exit_value / self.exited if self.exited else None,
            realized_pnl=pnl if last else None,
            realized_pnl_pct=pnl / self.entry_value if last and self.entry_value else None,
            holding_ms=(exit_ts - entry_ts).total_seconds() * 1000 if exit_ts else None,
            fees=self.fees,
            exit_bar=last.bar_index if last else None,
        )


def trades_from_fills(
    fills: Sequence[Fill], *, include_open: bool = False
) -> list[TradeHistoryEntry]:
    """Round trips of ``fills`` (any order; sorted by fill ts, ties kept in order), by
    exit time. ``include_open`` adds the trades still open, with no exit."""
    trades: list[TradeHistoryEntry] = []
    open_trades: dict[str, _Open] = {}
    for fill in sorted(fills, key=lambda f: f.ts):
        remaining, fee_rate = fill.quantity, fill.fee / fill.quantity if fill.quantity else 0.0
        sign = 1.0 if fill.side == "buy" else -1.0
        trade = open_trades.get(fill.symbol)
        if trade is not None and trade.sign != sign:
            closed = min(remaining, trade.position)
            trade.exit(closed, fill.price, closed * fee_rate)
            remaining -= closed
            if trade.position <= 1e-9 * max(trade.entered, 1.0):
                trades.append(trade.entry(fill))
                del open_trades[fill.symbol]
                trade = None
        if remaining > 1e-12 * fill.quantity:
            if trade is None:
                trade = open_trades[fill.symbol] = _Open(fill, sign)
            trade.enter(remaining, fill.price, remaining * fee_rate)
    if include_open:
        trades += [t.entry(None) for t in open_trades.values()]
    return sorted(trades, key=lambda t: (t.exit_ts is None, t.exit_ts or t.entry_ts))


def build_digest(
    source: Sequence[HistoryRecord] | Sequence[TradeHistoryEntry],
    now: datetime,
    *,
    recent_trades: int = RECENT_TRADES,
) -> TradeDigest:
    """The digest at ``now`` from history records (their ``execution`` fills) or trades."""
    now = to_utc(now)
    if all(isinstance(item, HistoryRecord) for item in source):
        trades = trades_from_fills(fills_from_records(source))  # type: ignore[arg-type]
    else:
        trades = list(source)  # type: ignore[arg-type]
    by_symbol: dict[str, list[TradeHistoryEntry]] = {}
    for trade in trades:
        if trade.exit_ts is not None and trade.exit_ts <= now and trade.realized_pnl is not None:
            by_symbol.setdefault(trade.instrument.symbol, []).append(trade)
    return TradeDigest(
        ts=now,
        by_instrument={
            symbol: _entry(sorted(ts, key=lambda t: t.exit_ts or now), recent_trades)
            for symbol, ts in sorted(by_symbol.items())
        },
    )


def _growth(trades: list[TradeHistoryEntry]) -> list[float]:
    """A stake of 1 after each trade, every closed trade's return compounded: trades of one
    instrument run flat to flat, one after the other. A loss beyond the stake ends at 0."""
    value, values = 1.0, []
    for trade in trades:
        value = max(0.0, value * (1.0 + (trade.realized_pnl_pct or 0.0)))
        values.append(value)
    return values


def _entry(trades: list[TradeHistoryEntry], recent: int) -> TradeDigestEntry:
    pnls = [t.realized_pnl or 0.0 for t in trades]
    holdings = [t.holding_ms for t in trades if t.holding_ms is not None]
    entered = sum(t.quantity for t in trades)
    entry_value = sum(t.quantity * (t.entry_price or 0.0) for t in trades)
    returns = [t.realized_pnl_pct for t in trades[-recent:] if t.realized_pnl_pct is not None]
    score = sum(returns) / len(returns) if returns else None
    last = trades[-1]
    return TradeDigestEntry(
        instrument=last.instrument,
        trade_count=len(trades),
        realized_pnl=sum(pnls),
        win_rate=sum(p > 0 for p in pnls) / len(pnls),
        avg_holding_ms=sum(holdings) / len(holdings) if holdings else None,
        last_trade_ts=last.exit_ts,
        avg_entry_price=entry_value / entered if entered else None,
        max_drawdown=max_drawdown(_growth(trades), 1.0),
        recent_performance_score=None
        if score is None or not math.isfinite(score)
        else max(-1.0, min(1.0, score)),
        last_exit_ts=last.exit_ts,
        last_exit_bar=last.exit_bar,
    )
