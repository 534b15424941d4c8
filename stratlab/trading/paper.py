"""The paper gateway as pure accounting: instructions in, fills and a marked portfolio out.

Execution model (the backtest engine's, per instruction): an instruction decided on the
signal bar fills at the OPEN of the next bar the caller passes, worsened by slippage
(buys higher, sells lower), and pays a fee on the filled value. Fees and slippage are
basis points of traded value, like ``stratlab.backtest.engine.Costs`` (which is accepted
too). Positions carry an average entry price; reducing, closing or flipping realises
``(fill - avg) * closed`` (a flip is a close then an open at the same price).

``realized_pnl`` is net of every fee paid, so at any time
``total_value == initial_cash + realized_pnl + unrealised P&L`` exactly. Cash may go
negative (margin without interest): the guardrails' exposure caps keep it sensible.

Idempotency: the book keeps every fill by ``instruction_id``; applying an instruction
again returns its original fill and changes nothing, so a retried activity never fills
twice. The whole book is one pydantic model: its data is ``PaperBookState``
(``stratlab.models.paper_book``), which the store saves as a jsonb row and loads back;
``PaperBook.from_state`` builds the book from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from stratlab.models.paper_book import BookPosition, PaperBookState
from stratlab.models.trading import (
    Candle,
    Fill,
    InstrumentRef,
    PortfolioView,
    PositionSnapshot,
    TradeInstruction,
    to_utc,
)

_DUST = 1e-9  # relative: a position this close to zero after a trade is closed


class CostModel(Protocol):
    """Fractions of traded value per side, as ``stratlab.backtest.engine.Costs``."""

    @property
    def fees(self) -> float: ...

    @property
    def slippage(self) -> float: ...


class PaperCosts(BaseModel):
    """Costs in basis points, as they cross Temporal; ``PaperCosts(fees_bps=5)``."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    fees_bps: float = Field(5.0, ge=0, lt=10_000)
    slippage_bps: float = Field(5.0, ge=0, lt=10_000)

    @property
    def fees(self) -> float:
        return self.fees_bps / 10_000.0

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 10_000.0


class PaperBook(PaperBookState):
    """Cash, positions and fills of one paper strategy, and the accounting that changes
    them. Mutable; not thread-safe."""

    @classmethod
    def open(cls, initial_cash: float, *, strategy_id: str | None = None) -> PaperBook:
        if not (math.isfinite(initial_cash) and initial_cash > 0):
            raise ValueError(f"initial_cash must be positive and finite, got {initial_cash!r}")
        return cls(strategy_id=strategy_id, initial_cash=initial_cash, cash=initial_cash)

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | PaperBookState) -> PaperBook:
        """A book from stored state: a ``PaperBookState`` (what ``PaperRepo.load_book``
        returns), ``model_dump()`` output, or a copy of another book."""
        if isinstance(state, PaperBook):
            return state.model_copy(deep=True)
        if isinstance(state, PaperBookState):
            return cls.model_validate(state.model_dump())
        return cls.model_validate(state)

    @property
    def applied_ids(self) -> set[str]:
        return set(self.fills)

    def apply(
        self,
        instructions: Sequence[TradeInstruction],
        next_bar: Mapping[str, Candle],
        costs: CostModel,
        *,
        bar_index: int | None = None,
    ) -> list[Fill]:
        """Fill ``instructions`` at ``next_bar[symbol].open`` and return the fills, one per
        distinct instruction_id, in order. Already applied ids return their original fill;
        an instruction whose symbol has no bar is left unfilled. Raises ValueError, before
        changing anything, when a fill bar is not after the instruction's ``signal_ts``,
        an open is not a positive number or a quantity is not positive."""
        for instruction in instructions:
            if instruction.instruction_id not in self.fills:
                _check(instruction, next_bar.get(instruction.instrument.symbol))
        _check_costs(costs)
        out: dict[str, Fill] = {}
        for instruction in instructions:
            iid = instruction.instruction_id
            if iid in out:
                continue
            if iid in self.fills:
                out[iid] = self.fills[iid]
                continue
            bar = next_bar.get(instruction.instrument.symbol)
            if bar is not None:
                out[iid] = self._fill(instruction, bar, costs, bar_index)
        return list(out.values())

    def _fill(
        self, instruction: TradeInstruction, bar: Candle, costs: CostModel, bar_index: int | None
    ) -> Fill:
        symbol, qty = instruction.instrument.symbol, instruction.quantity
        sign = 1.0 if instruction.side == "buy" else -1.0
        price = bar.open * (1.0 + sign * costs.slippage)
        fee = price * qty * costs.fees
        realized = self._trade(symbol, sign * qty, price, bar.ts)
        self.cash -= sign * price * qty + fee
        self.realized_pnl += realized - fee
        self.fees_paid += fee
        slippage_cost = abs(price - bar.open) * qty
        self.slippage_paid += slippage_cost
        self.last_prices[symbol] = bar.open
        fill = Fill(
            instruction_id=instruction.instruction_id,
            compose_id=instruction.compose_id,
            symbol=symbol,
            ts=bar.ts,
            signal_ts=instruction.signal_ts,
            side=instruction.side,
            quantity=qty,
            price=price,
            fee=fee,
            slippage_cost=slippage_cost,
            realized_pnl=realized,
            position_after=self.position(symbol),
            bar_index=bar_index,
        )
        self.fills[instruction.instruction_id] = fill
        return fill

    def _trade(self, symbol: str, delta: float, price: float, ts: datetime) -> float:
        """Move the position by ``delta`` units at ``price``; the price P&L realised."""
        pos = self.positions.get(symbol, BookPosition())
        before, after = pos.quantity, pos.quantity + delta
        realized = 0.0
        if before == 0.0 or before * delta > 0:  # open or add: new weighted average
            avg = (abs(before) * pos.avg_price + abs(delta) * price) / abs(after)
            entry_ts = pos.entry_ts if before != 0.0 else ts
        else:  # reduce, close or flip
            closed = min(abs(delta), abs(before))
            realized = closed * (price - pos.avg_price) * math.copysign(1.0, before)
            flipped = abs(delta) > abs(before) * (1 + _DUST)
            avg, entry_ts = (price, ts) if flipped else (pos.avg_price, pos.entry_ts)
        if abs(after) <= _DUST * max(abs(before), abs(delta)):
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = BookPosition(quantity=after, avg_price=avg, entry_ts=entry_ts)
        return realized

    def mark(
        self,
        prices: Mapping[str, float],
        *,
        ts: datetime,
        max_drawdown_halt: float | None = None,
    ) -> PortfolioView:
        """The portfolio valued at ``prices`` (a missing or bad price falls back to the
        last known one, then the average entry). Updates the high-water mark and, when
        ``max_drawdown_halt`` is given, latches ``halted`` once the drawdown reaches it."""
        snapshots: dict[str, PositionSnapshot] = {}
        for symbol, pos in sorted(self.positions.items()):
            price = prices.get(symbol)
            if price is not None and math.isfinite(price) and price > 0:
                self.last_prices[symbol] = float(price)
            mark = self.last_prices.get(symbol, pos.avg_price)
            sign = math.copysign(1.0, pos.quantity)
            snapshots[symbol] = PositionSnapshot(
                instrument=InstrumentRef(symbol=symbol),
                quantity=pos.quantity,
                avg_price=pos.avg_price,
                mark_price=mark,
                unrealized_pnl=pos.quantity * (mark - pos.avg_price),
                notional=pos.quantity * mark,
                entry_ts=pos.entry_ts,
                pnl_pct=sign * (mark / pos.avg_price - 1.0) if pos.avg_price > 0 else None,
                trade_type="long" if pos.quantity > 0 else "short",
            )
        notionals = [s.notional or 0.0 for s in snapshots.values()]
        total = self.cash + sum(notionals)
        # The high-water mark starts at the initial capital, not at the first mark.
        self.peak_value = max(self.peak_value or self.initial_cash, total)
        if max_drawdown_halt is not None and (
            total <= 0 or 1.0 - total / self.peak_value >= max_drawdown_halt
        ):
            self.halted = True
        return PortfolioView(
            strategy_id=self.strategy_id,
            ts=to_utc(ts),
            cash=self.cash,
            positions=snapshots,
            gross_exposure=sum(abs(n) for n in notionals),
            net_exposure=sum(notionals),
            total_value=total,
            total_unrealized_pnl=sum(s.unrealized_pnl or 0.0 for s in snapshots.values()),
            available_cash=self.cash,
            peak_total_value=self.peak_value,
            halted=self.halted,
            realized_pnl=self.realized_pnl,
            fees_paid=self.fees_paid,
        )


def _check(instruction: TradeInstruction, bar: Candle | None) -> None:
    iid = instruction.instruction_id
    if not (math.isfinite(instruction.quantity) and instruction.quantity > 0):
        raise ValueError(f"{iid}: quantity must be positive, got {instruction.quantity!r}")
    if bar is None:
        return
    if instruction.signal_ts is None:
        raise ValueError(f"{iid}: no signal_ts, so a fill cannot be proven after its signal")
    if bar.ts <= instruction.signal_ts:
        raise ValueError(
            f"{iid}: fill bar {bar.ts.isoformat()} is not after the signal bar "
            f"{instruction.signal_ts.isoformat()}; fills happen at the next bar's open"
        )
    if not (math.isfinite(bar.open) and bar.open > 0):
        raise ValueError(f"{iid}: the fill bar's open must be positive, got {bar.open!r}")


def _check_costs(costs: CostModel) -> None:
    for name in ("fees", "slippage"):
        value = getattr(costs, name)
        if not (math.isfinite(value) and 0.0 <= value < 1.0):
            raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
