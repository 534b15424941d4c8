"""Paper gateway: fill timing, hand-computed P&L, idempotency, and a replayed run."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from stratlab.models.trading import (
    Candle,
    GuardrailConfig,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
    TradeDigest,
    TradeInstruction,
)
from stratlab.trading.digest import build_digest, trades_from_fills
from stratlab.trading.guardrails import normalise_plan
from stratlab.trading.paper import PaperBook, PaperCosts

T0 = datetime(2020, 1, 6, tzinfo=UTC)
COSTS = PaperCosts(fees_bps=5, slippage_bps=5)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def bar(symbol: str, n: int, open_: float, close: float | None = None) -> Candle:
    close = open_ if close is None else close
    return Candle(
        ts=day(n),
        instrument=InstrumentRef(symbol=symbol),
        open=open_,
        high=max(open_, close),
        low=min(open_, close),
        close=close,
    )


def order(
    iid: str, side: str, qty: float, signal_day: int, symbol: str = "AAA"
) -> TradeInstruction:
    return TradeInstruction.model_validate(
        {
            "instruction_id": iid,
            "compose_id": iid.split(":")[0],
            "instrument": {"symbol": symbol},
            "side": side,
            "quantity": qty,
            "signal_ts": day(signal_day),
        }
    )


def test_hand_computed_sequence() -> None:
    book = PaperBook.open(100_000.0)
    # buy 10 at the next open 100: fill 100.05 (5 bps slippage), fee 1000.5 * 5 bps.
    [fill] = book.apply([order("c0:AAA", "buy", 10, 0)], {"AAA": bar("AAA", 1, 100.0)}, COSTS)
    assert (fill.ts, fill.price, fill.fee) == (
        day(1),
        pytest.approx(100.05),
        pytest.approx(0.50025),
    )
    assert fill.slippage_cost == pytest.approx(0.5)
    assert book.cash == pytest.approx(98_998.99975, abs=1e-9)
    view = book.mark({"AAA": 105.0}, ts=day(1))
    assert view.positions["AAA"].unrealized_pnl == pytest.approx(49.5, abs=1e-9)
    assert view.total_value == pytest.approx(100_048.99975, abs=1e-9)
    assert book.realized_pnl == pytest.approx(-0.50025, abs=1e-9)

    # sell 10 at 110: fill 109.945, fee 0.549725, price P&L 10 * 9.895.
    [fill] = book.apply([order("c1:AAA", "sell", 10, 1)], {"AAA": bar("AAA", 2, 110.0)}, COSTS)
    assert fill.realized_pnl == pytest.approx(98.95, abs=1e-9)
    assert book.cash == pytest.approx(100_097.900025, abs=1e-9)
    assert book.realized_pnl == pytest.approx(97.900025, abs=1e-9)
    assert book.positions == {}

    # open a short of 5 at 120 (fill 119.94), mark at 118.
    book.apply([order("c2:AAA", "sell", 5, 2)], {"AAA": bar("AAA", 3, 120.0)}, COSTS)
    view = book.mark({"AAA": 118.0}, ts=day(3))
    assert view.positions["AAA"].quantity == -5
    assert view.positions["AAA"].unrealized_pnl == pytest.approx(9.7, abs=1e-9)
    assert book.cash == pytest.approx(100_697.300175, abs=1e-9)

    # buy 8 at 100 flips to long 3: closes the short (+99.45) and opens at 100.05.
    [fill] = book.apply([order("c3:AAA", "buy", 8, 3)], {"AAA": bar("AAA", 4, 100.0)}, COSTS)
    assert fill.realized_pnl == pytest.approx(99.45, abs=1e-9)
    assert fill.position_after == 3
    view = book.mark({"AAA": 101.0}, ts=day(4))
    pos = view.positions["AAA"]
    assert (pos.quantity, pos.avg_price, pos.entry_ts) == (3, pytest.approx(100.05), day(4))
    assert book.realized_pnl == pytest.approx(196.649975, abs=1e-9)
    assert view.total_value == pytest.approx(100_199.499975, abs=1e-9)
    assert view.total_value == pytest.approx(
        book.initial_cash + book.realized_pnl + (view.total_unrealized_pnl or 0.0), abs=1e-9
    )
    assert book.fees_paid == pytest.approx(0.50025 + 0.549725 + 0.29985 + 0.4002, abs=1e-9)


@pytest.mark.parametrize("fill_day", [0, -1])
def test_a_fill_on_or_before_the_signal_bar_is_refused_and_changes_nothing(fill_day: int) -> None:
    book = PaperBook.open(10_000.0)
    state = book.model_dump()
    good = order("c0:BBB", "buy", 1, 0, symbol="BBB")
    with pytest.raises(ValueError, match="not after the signal bar"):
        book.apply(
            [good, order("c0:AAA", "buy", 1, 0)],
            {"AAA": bar("AAA", fill_day, 100.0), "BBB": bar("BBB", 1, 50.0)},
            COSTS,
        )
    assert book.model_dump() == state
    unsigned = order("c0:AAA", "buy", 1, 0).model_copy(update={"signal_ts": None})
    with pytest.raises(ValueError, match="signal_ts"):
        book.apply([unsigned], {"AAA": bar("AAA", 1, 100.0)}, COSTS)


def test_applying_the_same_instructions_twice_fills_once() -> None:
    book = PaperBook.open(10_000.0)
    batch = [order("c0:AAA", "buy", 3, 0), order("c0:BBB", "buy", 2, 0, symbol="BBB")]
    bars = {"AAA": bar("AAA", 1, 100.0), "BBB": bar("BBB", 1, 50.0)}
    first = book.apply(batch, bars, COSTS)
    state = book.model_dump(mode="json")
    # A retried activity: same ids, a later bar, even a rebuilt book from its jsonb row.
    again = PaperBook.from_state(state).apply(batch + batch, {"AAA": bar("AAA", 2, 999.0)}, COSTS)
    assert again == first
    assert book.apply(batch, bars, COSTS) == first
    assert book.model_dump(mode="json") == state
    assert book.applied_ids == {"c0:AAA", "c0:BBB"}


def test_an_instruction_without_a_bar_stays_unfilled_until_one_comes() -> None:
    book = PaperBook.open(10_000.0)
    pending = [order("c0:AAA", "buy", 1, 0)]
    assert book.apply(pending, {}, COSTS) == []
    assert book.applied_ids == set()
    [fill] = book.apply(pending, {"AAA": bar("AAA", 2, 10.0)}, COSTS)
    assert fill.ts == day(2)


def test_backtest_engine_costs_are_accepted() -> None:
    from stratlab.backtest.engine import Costs

    a, b = PaperBook.open(1_000.0), PaperBook.open(1_000.0)
    batch, bars = [order("c0:AAA", "buy", 2, 0)], {"AAA": bar("AAA", 1, 100.0)}
    assert a.apply(batch, bars, Costs.from_bps(5, 5)) == b.apply(batch, bars, COSTS)


def test_mark_latches_the_drawdown_halt() -> None:
    book = PaperBook.open(1_000.0)
    book.apply(
        [order("c0:AAA", "buy", 10, 0)],
        {"AAA": bar("AAA", 1, 100.0)},
        PaperCosts(fees_bps=0, slippage_bps=0),
    )
    assert not book.mark({"AAA": 80.0}, ts=day(1), max_drawdown_halt=0.25).halted
    view = book.mark({"AAA": 70.0}, ts=day(2), max_drawdown_halt=0.25)
    assert view.halted and view.peak_total_value == 1_000.0
    assert book.mark({"AAA": 100.0}, ts=day(3), max_drawdown_halt=0.25).halted
    assert book.mark({}, ts=day(4)).positions["AAA"].mark_price == 100.0  # last known price


def test_replayed_run_keeps_the_books_consistent() -> None:
    """Random plans through the guardrails and the book over 300 bars of two random walks:
    every fill is after its signal, positions are the sum of fills, value = initial +
    realised + unrealised, a retried bar fills nothing new, and the round trips add up."""
    rnd = random.Random(7)
    symbols = ("AAA", "BBB")
    closes = {s: [100.0] for s in symbols}
    for _ in range(300):
        for s in symbols:
            closes[s].append(closes[s][-1] * (1 + rnd.gauss(0, 0.02)))
    config = GuardrailConfig(
        allow_short=True, min_confidence=0.2, max_position_notional=30_000, cooldown_bars=1
    )
    book, fills, digest = PaperBook.open(100_000.0), [], TradeDigest(ts=day(0))
    for n in range(300):
        prices = {s: closes[s][n] for s in symbols}
        view = book.mark(prices, ts=day(n), max_drawdown_halt=config.max_drawdown_halt)
        items = [
            LlmDecisionItem.model_validate(
                {
                    "instrument": {"symbol": s},
                    "action": rnd.choice(["buy", "sell", "flat", "noop"]),
                    "target_qty": rnd.randint(-400, 400),
                    "confidence": rnd.random(),
                }
            )
            for s in symbols
        ]
        plan = LlmPlanProposal(ts=day(n), items=items)
        instructions, _ = normalise_plan(
            plan, view, prices, digest, config, compose_id=f"c{n}", now=day(n), bar_index=n
        )
        next_bar = {s: bar(s, n + 1, closes[s][n] * (1 + rnd.gauss(0, 0.003))) for s in symbols}
        new = book.apply(instructions, next_bar, COSTS, bar_index=n + 1)
        assert book.apply(instructions, next_bar, COSTS, bar_index=n + 1) == new
        fills += new
        book = PaperBook.from_state(book.model_dump(mode="json"))  # persisted every cycle
        digest = build_digest(trades_from_fills(fills), day(n + 1))
        assert all(f.ts > f.signal_ts for f in new if f.signal_ts)
        for s in symbols:
            filled = sum(
                f.quantity if f.side == "buy" else -f.quantity for f in fills if f.symbol == s
            )
            assert book.position(s) == pytest.approx(filled, abs=1e-6)
        view = book.mark({s: closes[s][n + 1] for s in symbols}, ts=day(n + 1))
        assert view.total_value == pytest.approx(
            book.initial_cash + book.realized_pnl + (view.total_unrealized_pnl or 0.0), rel=1e-12
        )
    assert len(fills) > 50
    closing = [
        order(f"end:{s}", "sell" if book.position(s) > 0 else "buy", abs(book.position(s)), 300, s)
        for s in symbols
        if book.position(s)
    ]
    fills += book.apply(closing, {s: bar(s, 301, closes[s][300]) for s in symbols}, COSTS)
    trades = trades_from_fills(fills)
    assert sum(t.realized_pnl or 0.0 for t in trades) == pytest.approx(book.realized_pnl, abs=1e-6)
    assert book.cash == pytest.approx(book.initial_cash + book.realized_pnl, abs=1e-6)
