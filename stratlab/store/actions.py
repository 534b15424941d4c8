"""The ledger of LLM calls (``agent_actions``): one row per call, keyed by its action id.

The action id is the call's idempotency key, made by the caller before the call, so a
retried activity that records the same call again leaves one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stratlab.models.llm import CallOutcome, LlmCallRecord
from stratlab.models.records import ActionRecord, UsageTotals
from stratlab.store._util import fetch_all, to_decimal
from stratlab.store.db import ConnectionSource

_RECORD = """
INSERT INTO agent_actions (action_id, session_id, experiment_id, iteration, role, prompt_id,
                           provider, model, input_tokens, output_tokens, cost_usd,
                           latency_ms, latency_simulated, outcome, error, cached,
                           created_at)
VALUES (%(action_id)s, %(session_id)s, %(experiment_id)s, %(iteration)s, %(role)s,
        %(prompt_id)s, %(provider)s, %(model)s, %(input_tokens)s, %(output_tokens)s,
        %(cost_usd)s, %(latency_ms)s, %(latency_simulated)s, %(outcome)s, %(error)s,
        %(cached)s, COALESCE(%(created_at)s, now()))
ON CONFLICT (action_id) DO NOTHING
RETURNING action_id
"""
# A call's row is written as soon as it is billed; the caller may then find the answer
# unusable (malformed, invalid) and says so here. Only the verdict changes, never the cost.
_SET_OUTCOME = """
UPDATE agent_actions SET outcome = %(outcome)s, error = %(error)s
 WHERE action_id = %(action_id)s
RETURNING action_id
"""
_BY_SESSION = """
SELECT * FROM agent_actions WHERE session_id = %(session_id)s ORDER BY created_at, action_id
"""
_BY_EXPERIMENT = """
SELECT * FROM agent_actions WHERE experiment_id = %(experiment_id)s
 ORDER BY created_at, action_id
"""
_TOTALS_BY_SESSION = """
SELECT COALESCE(sum(input_tokens + output_tokens), 0) AS tokens,
       COALESCE(sum(cost_usd), 0) AS cost_usd
  FROM agent_actions WHERE session_id = %(session_id)s
"""
_TOTALS_BY_EXPERIMENT = """
SELECT COALESCE(sum(input_tokens + output_tokens), 0) AS tokens,
       COALESCE(sum(cost_usd), 0) AS cost_usd
  FROM agent_actions WHERE experiment_id = %(experiment_id)s
"""

# The calls a step made: every action id that starts with one of the step's keys and a
# colon (``llm_calls.action_id`` builds them as "<key>:<what>:...:<answer>").
_TOTALS_BY_PREFIX = """
SELECT COALESCE(sum(input_tokens + output_tokens), 0) AS tokens,
       COALESCE(sum(cost_usd), 0) AS cost_usd
  FROM agent_actions a
 WHERE EXISTS (SELECT 1 FROM unnest(%(prefixes)s::text[]) AS p(key)
                WHERE starts_with(a.action_id, p.key || ':'))
"""


class ActionRepo:
    """Records LLM calls and sums them per session or experiment."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def record(self, call: LlmCallRecord, *, created_at: datetime | None = None) -> bool:
        """Record a call once; ``True`` if this call wrote the row, ``False`` if it was
        already there."""
        params = call.model_dump()
        params["cost_usd"] = to_decimal(call.cost_usd)
        params["created_at"] = created_at
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_RECORD, params)).fetchone()
        return row is not None

    async def set_outcome(self, action_id: str, outcome: CallOutcome, error: str | None) -> None:
        """Re-label a recorded call whose answer the caller rejected."""
        params = {"action_id": action_id, "outcome": outcome, "error": error}
        async with self._pool.connection() as conn:
            if await (await conn.execute(_SET_OUTCOME, params)).fetchone() is None:
                raise LookupError(f"no LLM call {action_id!r} to re-label")

    async def by_session(self, session_id: str) -> list[ActionRecord]:
        return await fetch_all(self._pool, _BY_SESSION, {"session_id": session_id}, ActionRecord)

    async def by_experiment(self, experiment_id: str) -> list[ActionRecord]:
        params = {"experiment_id": experiment_id}
        return await fetch_all(self._pool, _BY_EXPERIMENT, params, ActionRecord)

    async def totals_by_session(self, session_id: str) -> UsageTotals:
        """``(tokens, cost_usd)`` over every call of the session, failed ones included."""
        return await self._totals(_TOTALS_BY_SESSION, {"session_id": session_id})

    async def totals_by_experiment(self, experiment_id: str) -> UsageTotals:
        return await self._totals(_TOTALS_BY_EXPERIMENT, {"experiment_id": experiment_id})

    async def totals_by_prefix(self, prefixes: Sequence[str]) -> UsageTotals:
        """Every call whose action id starts with one of ``prefixes`` and a colon: the
        calls of the steps those keys name (a generation's mutator and sanity checks)."""
        if not prefixes:
            return UsageTotals(tokens=0, cost_usd=0.0)
        return await self._totals(_TOTALS_BY_PREFIX, {"prefixes": list(prefixes)})

    async def _totals(self, sql: str, params: dict[str, Any]) -> UsageTotals:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(sql, params)).fetchone()
        assert row is not None  # an aggregate without GROUP BY always returns a row
        return UsageTotals(tokens=int(row["tokens"]), cost_usd=float(row["cost_usd"]))
