"""Paper trading's tables: strategies, their books, history records and equity series.

Every write is idempotent, because each is made by a Temporal activity that may be
retried: a strategy is created once, a history record or equity point keeps its first
row, and a book is only replaced by a newer cycle, so a retried activity of a past cycle
never rolls it back.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from stratlab.models.paper_book import PaperBookState
from stratlab.models.trading import HistoryKind, HistoryRecord, StrategyStatus, UtcDatetime
from stratlab.store._util import fetch_all, fetch_one, jsonb, to_decimal
from stratlab.store.db import ConnectionSource

__all__ = ["EquityPoint", "PaperRepo", "PaperStrategyRecord", "history_record_id"]

STATUSES: tuple[StrategyStatus, ...] = ("running", "paused", "stopped", "error")

_CREATE_STRATEGY = """
INSERT INTO paper_strategies (strategy_id, name, symbols, prompt_id, skill_id, config,
                              status, initial_capital, workflow_id)
VALUES (%(strategy_id)s, %(name)s, %(symbols)s, %(prompt_id)s, %(skill_id)s, %(config)s,
        %(status)s, %(initial_capital)s, %(workflow_id)s)
ON CONFLICT (strategy_id) DO NOTHING
"""
_GET_STRATEGY = "SELECT * FROM paper_strategies WHERE strategy_id = %(strategy_id)s"
_LIST_STRATEGIES = """
SELECT * FROM paper_strategies
 WHERE (%(status)s::text IS NULL OR status = %(status)s)
 ORDER BY created_at, strategy_id
"""
# A repeated status keeps its updated_at, so a retried signal changes nothing.
_SET_STATUS = """
UPDATE paper_strategies
   SET status = %(status)s,
       updated_at = CASE WHEN status = %(status)s THEN updated_at ELSE now() END
 WHERE strategy_id = %(strategy_id)s
RETURNING *
"""

# The guard: the row is replaced only by a newer cycle, so RETURNING is empty for a retry
# of the stored cycle or a stale write of an older one.
_SAVE_BOOK = """
INSERT INTO paper_books (strategy_id, cycle, state)
VALUES (%(strategy_id)s, %(cycle)s, %(state)s)
ON CONFLICT (strategy_id) DO UPDATE
   SET cycle = EXCLUDED.cycle, state = EXCLUDED.state, updated_at = now()
 WHERE paper_books.cycle < EXCLUDED.cycle
RETURNING cycle
"""
_LOAD_BOOK = "SELECT cycle, state FROM paper_books WHERE strategy_id = %(strategy_id)s"

_RECORD_HISTORY = """
INSERT INTO paper_history (strategy_id, record_id, ts, kind, reference_id, payload)
VALUES (%(strategy_id)s, %(record_id)s, %(ts)s, %(kind)s, %(reference_id)s, %(payload)s)
ON CONFLICT (strategy_id, record_id) DO NOTHING
RETURNING record_id
"""
# The latest ``limit`` records, returned oldest first; within a cycle (one ts) in the
# order the cycle writes them.
_HISTORY = """
SELECT ts, kind, reference_id, payload FROM (
    SELECT *, array_position(ARRAY['features', 'compose', 'instructions', 'execution'],
                             kind) AS step
      FROM paper_history
     WHERE strategy_id = %(strategy_id)s
       AND (%(kinds)s::text[] IS NULL OR kind = ANY (%(kinds)s))
     ORDER BY ts DESC, step DESC, record_id DESC
     LIMIT %(limit)s
) latest
ORDER BY ts, step, record_id
"""

_RECORD = """
SELECT ts, kind, reference_id, payload FROM paper_history
 WHERE strategy_id = %(strategy_id)s AND record_id = %(record_id)s
"""

_RECORD_EQUITY = """
INSERT INTO paper_equity (strategy_id, ts, total_value, cash, benchmark)
VALUES (%(strategy_id)s, %(ts)s, %(total_value)s, %(cash)s, %(benchmark)s)
ON CONFLICT (strategy_id, ts) DO NOTHING
RETURNING ts
"""
_EQUITY = """
SELECT ts, total_value, cash, benchmark FROM paper_equity
 WHERE strategy_id = %(strategy_id)s
 ORDER BY ts
"""
_LATEST_EQUITY = """
SELECT DISTINCT ON (strategy_id) strategy_id, ts, total_value, cash, benchmark
  FROM paper_equity
 ORDER BY strategy_id, ts DESC
"""


class PaperStrategyRecord(BaseModel):
    """One row of ``paper_strategies``."""

    strategy_id: str
    name: str
    symbols: list[str] = Field(default_factory=list)
    prompt_id: str | None = None
    skill_id: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="GuardrailConfig and the run options"
    )
    status: StrategyStatus = "running"
    initial_capital: float
    workflow_id: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class EquityPoint(BaseModel):
    """One point of a strategy's portfolio value series."""

    ts: UtcDatetime
    total_value: float
    cash: float
    benchmark: float | None = Field(None, description="buy-and-hold value at ts")


def history_record_id(record: HistoryRecord) -> str:
    """The retry key of a history record: ``kind:reference_id``."""
    return f"{record.kind}:{record.reference_id}"


class PaperRepo:
    """Persistence of the paper-trading strategies and what they did."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    # --- strategies ------------------------------------------------------------------------

    async def create_strategy(
        self,
        *,
        strategy_id: str,
        name: str,
        symbols: Sequence[str],
        initial_capital: float,
        config: BaseModel | Mapping[str, Any] | None = None,
        prompt_id: str | None = None,
        skill_id: str | None = None,
        workflow_id: str | None = None,
        status: StrategyStatus = "running",
    ) -> PaperStrategyRecord:
        """Create the strategy unless its id exists; returns the stored row (a retry gets
        the first one back unchanged)."""
        _check_status(status)
        params = {
            "strategy_id": strategy_id,
            "name": name,
            "symbols": list(symbols),
            "prompt_id": prompt_id,
            "skill_id": skill_id,
            "config": jsonb(config) or Jsonb({}),
            "status": status,
            "initial_capital": to_decimal(initial_capital),
            "workflow_id": workflow_id,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_CREATE_STRATEGY, params)
            row = await (await conn.execute(_GET_STRATEGY, params)).fetchone()
        return PaperStrategyRecord.model_validate(row)

    async def get_strategy(self, strategy_id: str) -> PaperStrategyRecord | None:
        params = {"strategy_id": strategy_id}
        return await fetch_one(self._pool, _GET_STRATEGY, params, PaperStrategyRecord)

    async def list_strategies(
        self, *, status: StrategyStatus | None = None
    ) -> builtins.list[PaperStrategyRecord]:
        """Strategies oldest first, optionally only those with ``status``."""
        params = {"status": status}
        return await fetch_all(self._pool, _LIST_STRATEGIES, params, PaperStrategyRecord)

    async def set_status(self, strategy_id: str, status: StrategyStatus) -> PaperStrategyRecord:
        """Set the status and return the row. Raises ``ValueError`` for an unknown status
        and ``LookupError`` for an unknown strategy."""
        _check_status(status)
        params = {"strategy_id": strategy_id, "status": status}
        found = await fetch_one(self._pool, _SET_STATUS, params, PaperStrategyRecord)
        if found is None:
            raise LookupError(f"no paper strategy {strategy_id!r}")
        return found

    # --- books ---------------------------------------------------------------------------

    async def save_book(self, strategy_id: str, cycle: int, book: PaperBookState) -> bool:
        """Store the book's state as of ``cycle`` (a ``PaperBook`` is one). True when
        written; False, changing nothing, when this cycle or a newer one is already stored
        (a retry or a stale activity). Raises ``LookupError`` for an unknown strategy."""
        params = {"strategy_id": strategy_id, "cycle": cycle, "state": jsonb(book)}
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(_SAVE_BOOK, params)).fetchone()
            except psycopg.errors.ForeignKeyViolation as err:
                raise LookupError(f"no paper strategy {strategy_id!r}") from err
        return row is not None

    async def load_book(self, strategy_id: str) -> tuple[int, PaperBookState] | None:
        """The last stored cycle and its book's state, or None when none is stored
        (``stratlab.trading.paper.PaperBook.from_state`` makes a book of it)."""
        async with self._pool.connection() as conn:
            params = {"strategy_id": strategy_id}
            row = await (await conn.execute(_LOAD_BOOK, params)).fetchone()
        if row is None:
            return None
        return int(row["cycle"]), PaperBookState.model_validate(row["state"])

    # --- history -------------------------------------------------------------------------

    async def record_history(self, strategy_id: str, record: HistoryRecord) -> bool:
        """Store the record; False, changing nothing, when its ``kind:reference_id`` is
        already stored for the strategy. Raises ``LookupError`` for an unknown strategy."""
        params = {
            "strategy_id": strategy_id,
            "record_id": history_record_id(record),
            "ts": record.ts,
            "kind": record.kind,
            "reference_id": record.reference_id,
            "payload": Jsonb(record.model_dump(mode="json")["payload"]),
        }
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(_RECORD_HISTORY, params)).fetchone()
            except psycopg.errors.ForeignKeyViolation as err:
                raise LookupError(f"no paper strategy {strategy_id!r}") from err
        return row is not None

    async def history(
        self,
        strategy_id: str,
        *,
        kinds: Sequence[HistoryKind] | None = None,
        limit: int | None = None,
    ) -> builtins.list[HistoryRecord]:
        """The strategy's records in time order (within a cycle: features, compose,
        instructions, execution), optionally of some kinds only; with ``limit``, the
        latest ``limit`` of them. Empty for an unknown strategy."""
        params = {
            "strategy_id": strategy_id,
            "kinds": None if kinds is None else list(kinds),
            "limit": limit,
        }
        return await fetch_all(self._pool, _HISTORY, params, HistoryRecord)

    async def record(
        self, strategy_id: str, kind: HistoryKind, reference_id: str
    ) -> HistoryRecord | None:
        """One record by its retry key (``kind:reference_id``), or None."""
        params = {"strategy_id": strategy_id, "record_id": f"{kind}:{reference_id}"}
        return await fetch_one(self._pool, _RECORD, params, HistoryRecord)

    # --- equity --------------------------------------------------------------------------

    async def record_equity(
        self,
        strategy_id: str,
        ts: datetime,
        total_value: float,
        cash: float,
        benchmark: float | None = None,
    ) -> bool:
        """Store one point; False, changing nothing, when the strategy already has a point
        at ``ts``. Raises ``LookupError`` for an unknown strategy."""
        params = {
            "strategy_id": strategy_id,
            "ts": ts,
            "total_value": total_value,
            "cash": cash,
            "benchmark": benchmark,
        }
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(_RECORD_EQUITY, params)).fetchone()
            except psycopg.errors.ForeignKeyViolation as err:
                raise LookupError(f"no paper strategy {strategy_id!r}") from err
        return row is not None

    async def equity(self, strategy_id: str) -> builtins.list[EquityPoint]:
        """The strategy's value series in time order; empty for an unknown strategy."""
        params = {"strategy_id": strategy_id}
        return await fetch_all(self._pool, _EQUITY, params, EquityPoint)

    async def latest_equity(self) -> dict[str, EquityPoint]:
        """Each strategy's newest equity point, by strategy id."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_LATEST_EQUITY)).fetchall()
        return {row["strategy_id"]: EquityPoint.model_validate(row) for row in rows}


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
