"""Paper trading's repository: strategies created once, books guarded by cycle, history
records and equity points that a retry never duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from stratlab.models.paper_book import PaperBookState
from stratlab.models.trading import (
    Candle,
    GuardrailConfig,
    HistoryRecord,
    InstrumentRef,
    TradeInstruction,
)
from stratlab.store.db import Pool
from stratlab.store.prompts import PromptRepo
from stratlab.store.trading import EquityPoint, PaperRepo
from stratlab.trading.paper import PaperBook, PaperCosts

T0 = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SP500 = InstrumentRef(symbol="sp500")


async def count(pool: Pool, table: str) -> int:
    query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row["n"])


async def create(repo: PaperRepo, strategy_id: str = "s1", **kw: object) -> None:
    fields: dict[str, object] = {
        "name": "momentum", "symbols": ["sp500"], "initial_capital": 100_000.0, **kw,
    }  # fmt: skip
    await repo.create_strategy(strategy_id=strategy_id, **fields)  # type: ignore[arg-type]


def record(kind: str, compose_id: str, ts: datetime, **payload: object) -> HistoryRecord:
    return HistoryRecord(ts=ts, kind=kind, reference_id=compose_id, payload=payload)  # type: ignore[arg-type]


def traded_book() -> PaperBook:
    """A book with one filled buy, so positions, fills and datetimes round-trip."""
    book = PaperBook.open(100_000.0, strategy_id="s1")
    buy = TradeInstruction(
        instruction_id="c1:sp500", compose_id="c1", instrument=SP500, side="buy",
        quantity=10, signal_ts=T0,
    )  # fmt: skip
    bar = Candle(instrument=SP500, ts=T0 + DAY, open=500, high=505, low=495, close=502)
    book.apply([buy], {"sp500": bar}, PaperCosts())
    return book


# --- strategies ------------------------------------------------------------------------------


async def test_create_strategy_stores_the_row_and_a_retry_keeps_the_first(db_pool: Pool) -> None:
    await PromptRepo(db_pool).insert(prompt_id="p1", role="composer", content="Decide.")
    repo = PaperRepo(db_pool)
    config = GuardrailConfig(min_notional=50.0, allow_short=True)
    created = await repo.create_strategy(
        strategy_id="s1", name="momentum", symbols=["sp500", "nasdaq"], prompt_id="p1",
        initial_capital=100_000.5, config=config, workflow_id="paper-s1",
    )  # fmt: skip
    assert created.symbols == ["sp500", "nasdaq"]
    assert created.status == "running" and created.initial_capital == 100_000.5
    assert GuardrailConfig.model_validate(created.config) == config
    assert created.created_at.tzinfo is not None

    again = await repo.create_strategy(
        strategy_id="s1", name="other", symbols=["dax"], initial_capital=1.0
    )
    assert again == created
    assert await count(db_pool, "paper_strategies") == 1
    assert await repo.get_strategy("s1") == created


async def test_unknown_strategy_is_none_or_lookup_error(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    assert await repo.get_strategy("nope") is None
    assert await repo.load_book("nope") is None
    assert await repo.history("nope") == []
    assert await repo.equity("nope") == []
    with pytest.raises(LookupError, match="nope"):
        await repo.set_status("nope", "paused")
    with pytest.raises(LookupError, match="nope"):
        await repo.save_book("nope", 1, PaperBook.open(1_000.0))
    with pytest.raises(LookupError, match="nope"):
        await repo.record_history("nope", record("compose", "c1", T0))
    with pytest.raises(LookupError, match="nope"):
        await repo.record_equity("nope", T0, 1_000.0, 1_000.0)


async def test_list_and_status(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo, "s1")
    await create(repo, "s2", skill_id="skill-1")
    paused = await repo.set_status("s2", "paused")
    assert paused.status == "paused" and paused.updated_at >= paused.created_at
    assert (await repo.set_status("s2", "paused")).updated_at == paused.updated_at  # a retry

    assert [s.strategy_id for s in await repo.list_strategies()] == ["s1", "s2"]
    assert [s.strategy_id for s in await repo.list_strategies(status="paused")] == ["s2"]
    stored = await repo.get_strategy("s2")
    assert stored is not None and stored.status == "paused" and stored.skill_id == "skill-1"


async def test_invalid_status_is_rejected(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo)
    with pytest.raises(ValueError, match="halted"):
        await repo.set_status("s1", "halted")  # type: ignore[arg-type]
    async with db_pool.connection() as conn:  # and the table refuses it too
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("UPDATE paper_strategies SET status = 'halted'")


# --- books -----------------------------------------------------------------------------------


def state_of(book: PaperBook) -> PaperBookState:
    """What the store returns for ``book``: its state, which ``PaperBook.from_state`` reads."""
    return PaperBookState.model_validate(book.model_dump())


async def test_book_round_trips_and_an_older_cycle_never_overwrites(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo)
    fresh = PaperBook.open(100_000.0, strategy_id="s1")
    assert await repo.save_book("s1", 0, fresh) is True

    book = traded_book()
    assert await repo.save_book("s1", 3, book) is True
    assert await repo.load_book("s1") == (3, state_of(book))

    # A retried activity of cycle 3, or a stale one of cycle 2, changes nothing.
    assert await repo.save_book("s1", 3, fresh) is False
    assert await repo.save_book("s1", 2, fresh) is False
    loaded = await repo.load_book("s1")
    assert loaded is not None
    cycle, stored = loaded
    assert cycle == 3 and stored == state_of(book)
    assert stored.fills["c1:sp500"].price > 500  # slippage on a buy
    assert await count(db_pool, "paper_books") == 1

    assert await repo.save_book("s1", 4, fresh) is True
    assert await repo.load_book("s1") == (4, state_of(fresh))


# --- history ---------------------------------------------------------------------------------


async def test_history_is_idempotent_and_in_cycle_order(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo)
    cycles = [("c1", T0), ("c2", T0 + DAY)]
    # Written out of order: the read orders by time, then by the cycle's steps.
    for compose_id, ts in reversed(cycles):
        for kind in ("execution", "instructions", "compose", "features"):
            assert await repo.record_history("s1", record(kind, compose_id, ts, write="first"))

    retry = record("compose", "c1", T0, write="retry")
    assert await repo.record_history("s1", retry) is False
    assert await count(db_pool, "paper_history") == 8

    got = await repo.history("s1")
    assert [(r.reference_id, r.kind) for r in got] == [
        (c, k) for c, _ in cycles for k in ("features", "compose", "instructions", "execution")
    ]
    first_compose = got[1]
    assert first_compose.payload == {"write": "first"}
    assert first_compose.ts == T0

    executions = await repo.history("s1", kinds=["execution"])
    assert [r.reference_id for r in executions] == ["c1", "c2"]
    latest = await repo.history("s1", limit=2)
    assert [(r.reference_id, r.kind) for r in latest] == [
        ("c2", "instructions"),
        ("c2", "execution"),
    ]


async def test_history_is_per_strategy(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo, "s1")
    await create(repo, "s2")
    # The same compose id in two strategies is two records.
    assert await repo.record_history("s1", record("compose", "c1", T0))
    assert await repo.record_history("s2", record("compose", "c1", T0))
    assert [r.reference_id for r in await repo.history("s2")] == ["c1"]
    assert await count(db_pool, "paper_history") == 2


# --- equity ----------------------------------------------------------------------------------


async def test_equity_series_is_idempotent_and_ordered(db_pool: Pool) -> None:
    repo = PaperRepo(db_pool)
    await create(repo)
    assert await repo.record_equity("s1", T0 + DAY, 101_000.0, 95_000.0, benchmark=100_500.0)
    assert await repo.record_equity("s1", T0, 100_000.0, 100_000.0)
    assert await repo.record_equity("s1", T0, 1.0, 1.0, benchmark=1.0) is False  # a retry

    assert await repo.equity("s1") == [
        EquityPoint(ts=T0, total_value=100_000.0, cash=100_000.0),
        EquityPoint(ts=T0 + DAY, total_value=101_000.0, cash=95_000.0, benchmark=100_500.0),
    ]
    assert await count(db_pool, "paper_equity") == 2
