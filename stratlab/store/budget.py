"""The daily LLM budget: atomic reservations before a call, settlement after it.

One ``agent_budget`` row per (scope, UTC day). ``reserve`` takes money from what is left
with a single conditional UPDATE, so concurrent callers on any number of connections can
never take more than the cap together: each UPDATE waits for the row lock and re-checks
the condition against the committed totals. The arithmetic is numeric in Postgres: float
sums would let 33 reservations of 0.03 under a cap of 1.00 turn into 0.9900000000000007.

Money enters as ``Decimal`` rounded to the nano-dollar (``money``), so a float that a
caller computed (``0.30 - 0.10 == 0.19999999999999998``) means the amount it was meant
to: the number of reservations granted is exactly floor((cap - buffer) / cost).

Every reservation has a caller-made id. Reserving again with the same id returns the
first answer; settling twice moves the money once.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from stratlab.models.records import BudgetDay, BudgetReservation
from stratlab.store._util import fetch_all, fetch_one, to_decimal
from stratlab.store.db import Conn, ConnectionSource

_ENSURE_DAY = """
INSERT INTO agent_budget (scope, day, cap_usd) VALUES (%(scope)s, %(day)s, %(cap)s::numeric)
ON CONFLICT (scope, day) DO NOTHING
"""

# Inserted first, before any money moves: a concurrent reserve with the same id waits on
# this row and then sees the committed answer instead of reserving a second time.
_CLAIM_RESERVATION = """
INSERT INTO budget_reservations (reservation_id, scope, day, amount_usd, status)
VALUES (%(reservation_id)s, %(scope)s, %(day)s, %(amount)s::numeric, 'reserved')
ON CONFLICT (reservation_id) DO NOTHING
RETURNING reservation_id
"""
_RESERVATION_STATUS = """
SELECT status FROM budget_reservations WHERE reservation_id = %(reservation_id)s
"""

# The ::numeric casts keep the comparison exact even if a caller passes a float.
_TAKE = """
UPDATE agent_budget
   SET reserved_usd = reserved_usd + %(amount)s::numeric, updated_at = now()
 WHERE scope = %(scope)s AND day = %(day)s
   AND spent_usd + reserved_usd + %(amount)s::numeric <= cap_usd
RETURNING reserved_usd
"""
_DENY = """
UPDATE budget_reservations SET status = 'denied' WHERE reservation_id = %(reservation_id)s
"""

# One statement: the reservation flips to settled only if it was still reserved, and the
# budget row moves only for a reservation that flipped, so a second settle does nothing.
# Spend beyond the room left under the cap (a call dearer than its reservation) goes to
# overrun_usd, so the cap constraint holds and no cent goes unrecorded.
_SETTLE = """
WITH r AS (
    UPDATE budget_reservations
       SET status = 'settled', actual_usd = %(actual)s::numeric, settled_at = now()
     WHERE reservation_id = %(reservation_id)s AND status = 'reserved'
 RETURNING scope, day, amount_usd, actual_usd
)
UPDATE agent_budget b
   SET reserved_usd = b.reserved_usd - r.amount_usd,
       spent_usd = b.spent_usd
           + LEAST(r.actual_usd, b.cap_usd - b.spent_usd - (b.reserved_usd - r.amount_usd)),
       overrun_usd = b.overrun_usd
           + GREATEST(r.actual_usd - (b.cap_usd - b.spent_usd - (b.reserved_usd - r.amount_usd)),
                      0),
       updated_at = now()
  FROM r
 WHERE b.scope = r.scope AND b.day = r.day
RETURNING b.scope
"""

_SELECT_DAYS = """
SELECT scope, day, cap_usd, spent_usd, reserved_usd, overrun_usd,
       GREATEST(cap_usd - spent_usd - reserved_usd, 0) AS remaining_usd, updated_at
  FROM agent_budget
"""
_DAY = _SELECT_DAYS + " WHERE scope = %(scope)s AND day = %(day)s"
_HISTORY = _SELECT_DAYS + " WHERE scope = %(scope)s ORDER BY day DESC LIMIT %(days)s"

# Raising is always allowed; lowering below what is committed fails the cap constraint.
_SET_CAP = """
INSERT INTO agent_budget (scope, day, cap_usd) VALUES (%(scope)s, %(day)s, %(cap)s::numeric)
ON CONFLICT (scope, day) DO UPDATE SET cap_usd = EXCLUDED.cap_usd, updated_at = now()
"""
_GET_RESERVATION = "SELECT * FROM budget_reservations WHERE reservation_id = %(reservation_id)s"


NANO_USD = Decimal("0.000000001")
"""The unit money is kept in: finer than any LLM price (a few tokens of a cheap model
cost 1e-7 dollars), far coarser than a float's binary error at these magnitudes."""


def money(amount: float | Decimal | int) -> Decimal:
    """``amount`` in exact decimal dollars, rounded to the nano-dollar (half to even).

    A float's binary error (1e-17 for these magnitudes) is far below a nano-dollar, so
    rounding restores the decimal amount meant (0.30 - 0.10 is 0.2, not 0.19999...).
    """
    value = to_decimal(amount)
    if not value.is_finite():
        raise ValueError(f"an amount of money must be finite, got {amount}")
    return value.quantize(NANO_USD, rounding=ROUND_HALF_EVEN)


class BudgetRepo:
    """Daily budgets per scope (research, optimizer), in USD."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def reserve(
        self,
        reservation_id: str,
        scope: str,
        day: date,
        amount: float | Decimal,
        cap: float | Decimal,
        *,
        buffer: float | Decimal = 0,
    ) -> bool:
        """Hold ``amount`` of the day's budget if it fits under ``cap - buffer`` (pass
        the configured budget and its safety buffer, or their difference as ``cap``;
        used only when the day's row is first made). ``True`` if granted. Repeating a
        reservation id returns its first answer."""
        held = money(amount)
        if held < 0:
            raise ValueError(f"a reservation cannot be negative: {amount}")
        params = {
            "reservation_id": reservation_id,
            "scope": scope,
            "day": day,
            "amount": held,
            "cap": max(money(cap) - money(buffer), Decimal(0)),
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_ENSURE_DAY, params)
            if await (await conn.execute(_CLAIM_RESERVATION, params)).fetchone() is None:
                return await _first_answer(conn, reservation_id)
            if await (await conn.execute(_TAKE, params)).fetchone() is not None:
                return True
            await conn.execute(_DENY, params)
            return False

    async def settle(self, reservation_id: str, actual: float | Decimal) -> bool:
        """Release the reservation and charge ``actual`` (the call's real cost; 0 for a
        call that failed before spending). ``True`` if this call moved the money,
        ``False`` if it was already settled or had been denied."""
        spent = money(actual)
        if spent < 0:
            raise ValueError(f"an actual cost cannot be negative: {actual}")
        params = {"reservation_id": reservation_id, "actual": spent}
        async with self._pool.connection() as conn, conn.transaction():
            if await (await conn.execute(_SETTLE, params)).fetchone() is not None:
                return True
            row = await (await conn.execute(_RESERVATION_STATUS, params)).fetchone()
        if row is None:
            raise LookupError(f"no budget reservation {reservation_id!r} to settle")
        return False

    async def day_status(
        self, scope: str, day: date, *, default_cap: float | Decimal = 0.0
    ) -> BudgetDay:
        """The day's totals; a day without reservations yet shows ``default_cap``."""
        found = await fetch_one(self._pool, _DAY, {"scope": scope, "day": day}, BudgetDay)
        if found is not None:
            return found
        cap = float(default_cap)
        return BudgetDay(scope=scope, day=day, cap_usd=cap, remaining_usd=cap)

    async def history(self, scope: str, days: int = 7) -> list[BudgetDay]:
        """The scope's latest ``days`` budget days, newest first."""
        return await fetch_all(self._pool, _HISTORY, {"scope": scope, "days": days}, BudgetDay)

    async def set_cap(self, scope: str, day: date, cap: float | Decimal) -> BudgetDay:
        """Change a day's cap (e.g. after raising the configured budget). Lowering it
        below what is already spent and reserved fails with ``psycopg.errors.CheckViolation``."""
        params = {"scope": scope, "day": day, "cap": money(cap)}
        async with self._pool.connection() as conn:
            await conn.execute(_SET_CAP, params)
        found = await fetch_one(self._pool, _DAY, params, BudgetDay)
        assert found is not None
        return found

    async def get_reservation(self, reservation_id: str) -> BudgetReservation | None:
        params = {"reservation_id": reservation_id}
        return await fetch_one(self._pool, _GET_RESERVATION, params, BudgetReservation)


async def _first_answer(conn: Conn, reservation_id: str) -> bool:
    cur = await conn.execute(_RESERVATION_STATUS, {"reservation_id": reservation_id})
    row = await cur.fetchone()
    assert row is not None  # the claim conflicted with exactly this row
    return bool(row["status"] != "denied")
