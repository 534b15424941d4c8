"""The daily budget: atomic reservations under contention, idempotent reserve and settle."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from stratlab.store.budget import BudgetRepo, money
from stratlab.store.db import Pool, SingleConnection

DAY = date(2025, 1, 15)
RESERVATIONS = 200


async def free_connection_slots(pool: Pool) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                """SELECT current_setting('max_connections')::int
                          - current_setting('superuser_reserved_connections')::int
                          - (SELECT count(*) FROM pg_stat_activity
                              WHERE backend_type = 'client backend') AS free"""
            )
        ).fetchone()
    assert row is not None
    return int(row["free"])


@pytest.mark.parametrize(
    ("cap", "buffer", "cost", "granted"),
    [
        # Float sums would grant only 99 here: 100 x 0.01 adds up to 1.0000000000000007.
        (1.00, 0.0, 0.01, 100),
        (1.00, 0.0, 0.03, 33),
        # 0.30 - 0.10 is 0.19999999999999998 in floats, which granted only 3 of 0.05.
        (0.30, 0.10, 0.05, 4),
        (0.30, 0.10, 0.05000000000000001, 4),
        (Decimal("0.30"), Decimal("0.10"), Decimal("0.05"), 4),
    ],
)
@pytest.mark.parametrize("passing", ["difference", "buffer"])
async def test_concurrent_reservations_never_exceed_the_cap(
    db_pool: Pool,
    database_url: str,
    cap: float,
    buffer: float,
    cost: float,
    granted: int,
    passing: str,
) -> None:
    # Every reservation runs on its own connection, as separate workers would. The server
    # may allow fewer than 200 clients at once, so connections are opened as slots free up
    # (leaving room for other clients); the first wave is released together.
    in_flight = max(min(RESERVATIONS, await free_connection_slots(db_pool) - 25), 10)
    slots = asyncio.Semaphore(in_flight)
    connected = 0
    start = asyncio.Event()

    async def reserve(i: int) -> bool:
        nonlocal connected
        async with (
            slots,
            await AsyncConnection.connect(
                database_url, autocommit=True, row_factory=dict_row
            ) as conn,
        ):
            connected += 1
            if connected >= in_flight:
                start.set()
            await start.wait()
            repo = BudgetRepo(SingleConnection(conn))
            if passing == "buffer":
                return await repo.reserve(f"call-{i}", "research", DAY, cost, cap, buffer=buffer)
            # what callers do today: the difference computed in floats
            return await repo.reserve(f"call-{i}", "research", DAY, cost, cap - buffer)

    answers = await asyncio.gather(*(reserve(i) for i in range(RESERVATIONS)))

    assert sum(answers) == granted
    day = await BudgetRepo(db_pool).day_status("research", DAY)
    assert day.reserved_usd == pytest.approx(granted * float(cost))
    assert day.spent_usd == 0
    assert day.remaining_usd == pytest.approx(float(cap) - float(buffer) - granted * float(cost))
    async with db_pool.connection() as conn:
        rows = await (
            await conn.execute(
                """SELECT status, count(*) AS n, sum(amount_usd) AS total
                     FROM budget_reservations GROUP BY status ORDER BY status"""
            )
        ).fetchall()
        budget = await (await conn.execute("SELECT * FROM agent_budget")).fetchone()
    assert {r["status"]: r["n"] for r in rows} == {
        "denied": RESERVATIONS - granted,
        "reserved": granted,
    }
    # Exact in numeric: no rounding anywhere between the reservations and the day's total.
    assert budget is not None
    assert budget["reserved_usd"] == Decimal(str(cost)).quantize(Decimal("1e-6")) * granted
    assert budget["reserved_usd"] <= budget["cap_usd"] == Decimal(str(cap)) - Decimal(str(buffer))
    # exactly floor((cap - buffer) / cost), computed in decimals
    exact = (Decimal(str(cap)) - Decimal(str(buffer))) // Decimal(str(cost)).quantize(
        Decimal("1e-6")
    )
    assert granted == exact


async def test_reserve_again_returns_the_first_answer(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    assert await repo.reserve("a", "research", DAY, 0.60, 1.00) is True
    assert await repo.reserve("a", "research", DAY, 0.60, 1.00) is True  # retried activity
    assert await repo.reserve("b", "research", DAY, 0.60, 1.00) is False
    assert await repo.reserve("b", "research", DAY, 0.01, 1.00) is False  # still denied
    day = await repo.day_status("research", DAY)
    assert (day.reserved_usd, day.remaining_usd) == (pytest.approx(0.60), pytest.approx(0.40))


async def test_concurrent_retries_of_one_reservation_reserve_once(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    answers = await asyncio.gather(
        *(repo.reserve("same", "research", DAY, 0.2, 1.0) for _ in range(8))
    )
    assert answers == [True] * 8
    assert (await repo.day_status("research", DAY)).reserved_usd == pytest.approx(0.2)


async def test_settle_moves_money_from_reserved_to_spent_once(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    assert await repo.reserve("call-1", "research", DAY, 0.50, 4.90)
    assert await repo.reserve("call-2", "research", DAY, 0.50, 4.90)

    assert await repo.settle("call-1", 0.065) is True
    assert await repo.settle("call-1", 0.065) is False  # a retry moves nothing
    day = await repo.day_status("research", DAY)
    assert day.spent_usd == pytest.approx(0.065)
    assert day.reserved_usd == pytest.approx(0.50)
    assert day.remaining_usd == pytest.approx(4.90 - 0.565)

    reservation = await repo.get_reservation("call-1")
    assert reservation is not None
    assert (reservation.status, reservation.actual_usd) == ("settled", pytest.approx(0.065))
    assert reservation.settled_at is not None

    # A call that failed before spending releases its whole reservation.
    assert await repo.settle("call-2", 0) is True
    day = await repo.day_status("research", DAY)
    assert (day.spent_usd, day.reserved_usd) == (pytest.approx(0.065), 0)


async def test_settling_unknown_or_denied_reservations(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    with pytest.raises(LookupError, match="no budget reservation 'nope'"):
        await repo.settle("nope", 0.1)
    assert await repo.reserve("big", "research", DAY, 2.0, 1.0) is False
    assert await repo.settle("big", 0.0) is False
    assert (await repo.day_status("research", DAY)).spent_usd == 0


async def test_a_call_dearer_than_its_reservation_is_recorded_as_overrun(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    assert await repo.reserve("r1", "research", DAY, 0.40, 1.00)
    assert await repo.reserve("r2", "research", DAY, 0.50, 1.00)
    # r1 really cost 0.70: only 0.50 fits beside r2's hold, the rest is overrun.
    assert await repo.settle("r1", 0.70)
    day = await repo.day_status("research", DAY)
    assert day.spent_usd == pytest.approx(0.50)
    assert day.overrun_usd == pytest.approx(0.20)
    assert day.remaining_usd == 0
    assert await repo.reserve("r3", "research", DAY, 0.01, 1.00) is False


async def test_day_status_history_and_caps(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    empty = await repo.day_status("optimizer", DAY, default_cap=4.9)
    assert (empty.cap_usd, empty.spent_usd, empty.remaining_usd) == (4.9, 0, 4.9)

    for offset in range(3):
        day = date(2025, 1, 10 + offset)
        assert await repo.reserve(f"h{offset}", "optimizer", day, 0.1, 4.9)
    # Another scope's days are not part of this history.
    assert await repo.reserve("other", "research", DAY, 0.1, 4.9)
    history = await repo.history("optimizer", days=2)
    assert [d.day for d in history] == [date(2025, 1, 12), date(2025, 1, 11)]

    # The cap of an existing day does not change on reserve; set_cap changes it.
    assert await repo.reserve("h9", "optimizer", date(2025, 1, 12), 0.1, 100.0)
    assert (await repo.day_status("optimizer", date(2025, 1, 12))).cap_usd == 4.9
    raised = await repo.set_cap("optimizer", date(2025, 1, 12), 10)
    assert (raised.cap_usd, raised.remaining_usd) == (10, pytest.approx(9.8))
    with pytest.raises(psycopg.errors.CheckViolation):
        await repo.set_cap("optimizer", date(2025, 1, 12), 0.1)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (0.30 - 0.10, "0.2"),
        (0.1 + 0.2, "0.3"),
        (0.05000000000000001, "0.05"),
        (0.0005013, "0.0005013"),  # an LLM call's price keeps its digits
        (Decimal("0.0000000005"), "0.0"),  # half to even
        (Decimal("0.0000000015"), "0.000000002"),
        (3, "3"),
    ],
)
def test_money_is_exact_to_the_nano_dollar(amount: float | Decimal, expected: str) -> None:
    assert money(amount) == Decimal(expected)


def test_money_refuses_what_is_not_an_amount() -> None:
    for amount in (float("nan"), float("inf"), Decimal("NaN")):
        with pytest.raises(ValueError, match="finite"):
            money(amount)


async def test_a_buffer_larger_than_the_cap_grants_nothing(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    assert await repo.reserve("tiny", "research", DAY, 0.01, 0.05, buffer=0.10) is False
    assert (await repo.day_status("research", DAY)).cap_usd == 0


async def test_negative_amounts_are_refused(db_pool: Pool) -> None:
    repo = BudgetRepo(db_pool)
    with pytest.raises(ValueError, match="negative"):
        await repo.reserve("neg", "research", DAY, -1, 1.0)
