"""Research sessions: their lifecycle, progress phases, triggers and metrics.

``agent_sessions`` holds one row per research cycle; ``session_phases`` shows a cycle's
progress while it runs; ``agent_triggers`` logs every trigger decision and
``agent_metrics`` the aggregates of a finished session. Every write is idempotent, so a
retried activity leaves the same rows behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from stratlab.models.records import (
    PastStrategy,
    PhaseRecord,
    PhaseStatus,
    SessionMetrics,
    SessionRecord,
    TriggerDecision,
    TriggerRecord,
)
from stratlab.models.research import Outcome, Phase, ResearchCycleResult
from stratlab.store._util import jsonb
from stratlab.store.db import ConnectionSource

# A retried create keeps the first row: the workflow made the id, so it is the same session.
_CREATE = """
INSERT INTO agent_sessions (session_id, workflow_id, run_id, trigger, symbol, kind, input,
                            started_at, designer_prompt_id, assessor_prompt_id)
VALUES (%(session_id)s, %(workflow_id)s, %(run_id)s, %(trigger)s, %(symbol)s, %(kind)s,
        %(input)s, %(started_at)s, %(designer_prompt_id)s, %(assessor_prompt_id)s)
ON CONFLICT (session_id) DO NOTHING
"""

# Token and cost columns are summed live so they are right for running sessions too.
_SELECT_SESSIONS = """
SELECT s.session_id, s.workflow_id, s.run_id, s.trigger, s.symbol, s.kind, s.status,
       s.outcome, s.best_strategy_id, s.input, s.result, s.started_at, s.finished_at,
       s.designer_prompt_id, s.assessor_prompt_id,
       u.llm_calls, u.tokens, u.cost_usd
  FROM agent_sessions s
  CROSS JOIN LATERAL (
        SELECT count(*) AS llm_calls,
               COALESCE(sum(a.input_tokens + a.output_tokens), 0) AS tokens,
               COALESCE(sum(a.cost_usd), 0) AS cost_usd
          FROM agent_actions a
         WHERE a.session_id = s.session_id) u
"""
_GET = _SELECT_SESSIONS + " WHERE s.session_id = %(session_id)s"
_RECENT = _SELECT_SESSIONS + " ORDER BY s.started_at DESC, s.session_id LIMIT %(limit)s"
_RECENT_FOR_SYMBOL = (
    _SELECT_SESSIONS
    + " WHERE s.symbol = %(symbol)s ORDER BY s.started_at DESC, s.session_id LIMIT %(limit)s"
)
_RUNNING = _SELECT_SESSIONS + " WHERE s.status = 'running' ORDER BY s.started_at DESC"
# `history`'s filters; a NULL filter matches every row. ``hidden`` triggers (the
# optimizer's evaluations) are left out unless ``trigger`` asks for one of them.
_FILTERS = """
 WHERE (%(trigger)s::text IS NULL OR s.trigger = %(trigger)s)
   AND (%(trigger)s::text IS NOT NULL OR NOT (s.trigger = ANY (%(hidden)s::text[])))
   AND (%(symbol)s::text IS NULL OR s.symbol = %(symbol)s)
   AND (%(outcome)s::text IS NULL OR COALESCE(s.outcome, 'running') = %(outcome)s)
   AND (%(since)s::timestamptz IS NULL OR s.started_at >= %(since)s)
"""
_SEARCH = _SELECT_SESSIONS + _FILTERS + " ORDER BY s.started_at DESC, s.session_id LIMIT %(limit)s"
# The rows the filters match, per trigger (before the limit).
_COUNT_BY_TRIGGER = """
SELECT s.trigger, count(*) AS sessions FROM agent_sessions s
 WHERE (%(symbol)s::text IS NULL OR s.symbol = %(symbol)s)
   AND (%(outcome)s::text IS NULL OR COALESCE(s.outcome, 'running') = %(outcome)s)
   AND (%(since)s::timestamptz IS NULL OR s.started_at >= %(since)s)
 GROUP BY s.trigger
"""

# Finishing again overwrites: the last call records the final state.
_FINISH = """
UPDATE agent_sessions
   SET status = 'finished', outcome = %(outcome)s, best_strategy_id = %(best_strategy_id)s,
       result = %(result)s, finished_at = %(finished_at)s
 WHERE session_id = %(session_id)s
RETURNING session_id
"""

# Metrics come from the ledgers (agent_actions, backtests), not from what the workflow
# believed, so retried or failed calls are counted too.
_UPSERT_METRICS = """
INSERT INTO agent_metrics AS m (session_id, symbol, outcome, iterations, llm_calls,
       input_tokens, output_tokens, tokens, cost_usd, duration_ms, best_strategy_id,
       best_sharpe, computed_at)
SELECT s.session_id, s.symbol, s.outcome,
       CASE WHEN jsonb_typeof(s.result -> 'iterations') = 'array'
            THEN jsonb_array_length(s.result -> 'iterations')
            ELSE (SELECT count(DISTINCT st.iteration) FROM strategies st
                   WHERE st.session_id = s.session_id) END,
       a.llm_calls, a.input_tokens, a.output_tokens, a.input_tokens + a.output_tokens,
       a.cost_usd,
       GREATEST(EXTRACT(EPOCH FROM (s.finished_at - s.started_at)) * 1000, 0),
       s.best_strategy_id,
       COALESCE(
           (SELECT max((b.metrics ->> 'sharpe')::float8) FROM backtests b
             WHERE b.strategy_id = s.best_strategy_id),
           (SELECT max((b.metrics ->> 'sharpe')::float8) FROM backtests b
             WHERE b.session_id = s.session_id)),
       now()
  FROM agent_sessions s
 CROSS JOIN LATERAL (
       SELECT count(*) AS llm_calls,
              COALESCE(sum(input_tokens), 0) AS input_tokens,
              COALESCE(sum(output_tokens), 0) AS output_tokens,
              COALESCE(sum(cost_usd), 0) AS cost_usd
         FROM agent_actions WHERE session_id = s.session_id) a
 WHERE s.session_id = %(session_id)s
ON CONFLICT (session_id) DO UPDATE
   SET symbol = EXCLUDED.symbol, outcome = EXCLUDED.outcome,
       iterations = EXCLUDED.iterations, llm_calls = EXCLUDED.llm_calls,
       input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
       tokens = EXCLUDED.tokens, cost_usd = EXCLUDED.cost_usd,
       duration_ms = EXCLUDED.duration_ms, best_strategy_id = EXCLUDED.best_strategy_id,
       best_sharpe = EXCLUDED.best_sharpe, computed_at = EXCLUDED.computed_at
"""

_METRICS = "SELECT * FROM agent_metrics WHERE session_id = %(session_id)s"

_RECORD_TRIGGER = """
INSERT INTO agent_triggers (trigger_id, kind, workflow_id, session_id, decision, reason,
                            created_at)
VALUES (%(trigger_id)s, %(kind)s, %(workflow_id)s, %(session_id)s, %(decision)s, %(reason)s,
        COALESCE(%(created_at)s, now()))
ON CONFLICT (trigger_id) DO NOTHING
"""
_GET_TRIGGER = "SELECT * FROM agent_triggers WHERE trigger_id = %(trigger_id)s"
_RECENT_TRIGGERS = "SELECT * FROM agent_triggers ORDER BY created_at DESC LIMIT %(limit)s"

# A phase is written at its start and again at its end: keep the first start time, take
# the latest status, and merge detail so the end does not erase what the start wrote.
_RECORD_PHASE = """
INSERT INTO session_phases AS p (session_id, iteration, phase, started_at, finished_at,
                                 status, detail)
VALUES (%(session_id)s, %(iteration)s, %(phase)s, %(started_at)s, %(finished_at)s,
        %(status)s, COALESCE(%(detail)s, '{}'::jsonb))
ON CONFLICT (session_id, iteration, phase) DO UPDATE
   SET started_at = LEAST(p.started_at, EXCLUDED.started_at),
       finished_at = COALESCE(EXCLUDED.finished_at, p.finished_at),
       status = EXCLUDED.status,
       detail = p.detail || EXCLUDED.detail
RETURNING *
"""
_PHASES = """
SELECT * FROM session_phases WHERE session_id = %(session_id)s
 ORDER BY iteration, started_at, phase
"""

# The outcome of a strategy's iteration is in its session's result (IterationSummary);
# the Sharpe is that of its latest out-of-sample backtest.
_RECENT_STRATEGIES = """
SELECT st.strategy_id, st.session_id, st.iteration, st.name, st.kind, st.symbol,
       st.created_at, it.outcome, bt.sharpe
  FROM strategies st
  LEFT JOIN agent_sessions s ON s.session_id = st.session_id
  LEFT JOIN LATERAL (
       SELECT e ->> 'outcome' AS outcome
         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(s.result -> 'iterations') = 'array'
                                        THEN s.result -> 'iterations'
                                        ELSE '[]'::jsonb END) e
        WHERE (e ->> 'iteration')::int = st.iteration
        LIMIT 1) it ON true
  LEFT JOIN LATERAL (
       SELECT (b.metrics ->> 'sharpe')::float8 AS sharpe
         FROM backtests b WHERE b.strategy_id = st.strategy_id
        ORDER BY b.created_at DESC LIMIT 1) bt ON true
 WHERE st.symbol = %(symbol)s
 ORDER BY st.created_at DESC, st.strategy_id
 LIMIT %(limit)s
"""


class SessionRepo:
    """Research sessions, their phases, triggers and metrics."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        session_id: str,
        workflow_id: str,
        symbol: str,
        started_at: datetime,
        run_id: str = "",
        trigger: str = "manual",
        kind: str | None = None,
        input: BaseModel | Mapping[str, Any] | None = None,
        designer_prompt_id: str | None = None,
        assessor_prompt_id: str | None = None,
    ) -> SessionRecord:
        """Create a running session, or return the one already created with this id."""
        params = {
            "session_id": session_id,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "trigger": trigger,
            "symbol": symbol,
            "kind": kind,
            "input": jsonb(input if input is not None else {}),
            "started_at": started_at,
            "designer_prompt_id": designer_prompt_id,
            "assessor_prompt_id": assessor_prompt_id,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_CREATE, params)
            row = await (await conn.execute(_GET, params)).fetchone()
        assert row is not None  # inserted above or already there
        return SessionRecord.model_validate(row)

    async def finish(
        self,
        session_id: str,
        *,
        outcome: Outcome,
        finished_at: datetime,
        best_strategy_id: str | None = None,
        result: ResearchCycleResult | None = None,
    ) -> SessionMetrics:
        """Mark the session finished and (re)compute its ``agent_metrics`` row, in one
        transaction. Raises ``LookupError`` for an unknown session."""
        params = {
            "session_id": session_id,
            "outcome": outcome,
            "best_strategy_id": best_strategy_id,
            "result": jsonb(result),
            "finished_at": finished_at,
        }
        async with self._pool.connection() as conn, conn.transaction():
            if await (await conn.execute(_FINISH, params)).fetchone() is None:
                raise LookupError(f"no research session {session_id!r} to finish")
            await conn.execute(_UPSERT_METRICS, params)
            row = await (await conn.execute(_METRICS, params)).fetchone()
        return SessionMetrics.model_validate(row)

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_GET, {"session_id": session_id})).fetchone()
        return None if row is None else SessionRecord.model_validate(row)

    async def recent(self, limit: int = 20, *, symbol: str | None = None) -> list[SessionRecord]:
        """The latest sessions first, optionally of one symbol."""
        sql = _RECENT if symbol is None else _RECENT_FOR_SYMBOL
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(sql, {"limit": limit, "symbol": symbol})).fetchall()
        return [SessionRecord.model_validate(r) for r in rows]

    async def search(
        self,
        limit: int = 20,
        *,
        trigger: str | None = None,
        symbol: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        hidden: Sequence[str] = (),
    ) -> list[SessionRecord]:
        """The latest sessions first that match every filter given; ``outcome``
        ``"running"`` matches the unfinished ones. Sessions of a ``hidden`` trigger are
        left out unless ``trigger`` names one."""
        params = {
            "limit": limit,
            "trigger": trigger,
            "symbol": symbol,
            "outcome": outcome,
            "since": since,
            "hidden": list(hidden),
        }
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_SEARCH, params)).fetchall()
        return [SessionRecord.model_validate(r) for r in rows]

    async def count_by_trigger(
        self,
        *,
        symbol: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        """How many sessions of each trigger match the filters (no limit)."""
        params = {"symbol": symbol, "outcome": outcome, "since": since}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_COUNT_BY_TRIGGER, params)).fetchall()
        return {r["trigger"]: r["sessions"] for r in rows}

    async def running(self) -> list[SessionRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_RUNNING)).fetchall()
        return [SessionRecord.model_validate(r) for r in rows]

    async def metrics(self, session_id: str) -> SessionMetrics | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_METRICS, {"session_id": session_id})).fetchone()
        return None if row is None else SessionMetrics.model_validate(row)

    async def record_trigger(
        self,
        *,
        trigger_id: str,
        kind: str,
        decision: TriggerDecision,
        reason: str = "",
        workflow_id: str | None = None,
        session_id: str | None = None,
        created_at: datetime | None = None,
    ) -> TriggerRecord:
        """Log a trigger decision once per ``trigger_id``; returns the stored row."""
        params = {
            "trigger_id": trigger_id,
            "kind": kind,
            "workflow_id": workflow_id,
            "session_id": session_id,
            "decision": decision,
            "reason": reason,
            "created_at": created_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD_TRIGGER, params)
            row = await (await conn.execute(_GET_TRIGGER, params)).fetchone()
        return TriggerRecord.model_validate(row)

    async def recent_triggers(self, limit: int = 20) -> list[TriggerRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_RECENT_TRIGGERS, {"limit": limit})).fetchall()
        return [TriggerRecord.model_validate(r) for r in rows]

    async def record_phase(
        self,
        session_id: str,
        iteration: int,
        phase: Phase,
        *,
        started_at: datetime,
        status: PhaseStatus = "running",
        finished_at: datetime | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> PhaseRecord:
        """Upsert one phase's progress: call it when the phase starts and when it ends."""
        params = {
            "session_id": session_id,
            "iteration": iteration,
            "phase": phase,
            "started_at": started_at,
            "finished_at": finished_at,
            "status": status,
            "detail": jsonb(detail),
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_RECORD_PHASE, params)).fetchone()
        return PhaseRecord.model_validate(row)

    async def phases(self, session_id: str) -> list[PhaseRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_PHASES, {"session_id": session_id})).fetchall()
        return [PhaseRecord.model_validate(r) for r in rows]

    async def recent_strategies(self, symbol: str, limit: int = 10) -> list[PastStrategy]:
        """The latest strategies designed for ``symbol`` with how each went: the
        designer's memory of what was already tried."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RECENT_STRATEGIES, {"symbol": symbol, "limit": limit})
            rows = await cur.fetchall()
        return [PastStrategy.model_validate(r) for r in rows]
