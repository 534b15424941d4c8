"""Prompt evolution's generations table: one ``GenerationRecord`` per role and number.

A generation is written once, when it ends; a retried write gets the first row back.
"""

from __future__ import annotations

import builtins
from typing import Any

from stratlab.models.optimization import GenerationRecord
from stratlab.store._util import jsonb, to_decimal
from stratlab.store.db import ConnectionSource

__all__ = ["GenerationRepo"]

_NEXT_GENERATION = """
SELECT COALESCE(max(generation) + 1, 0) AS next FROM generations WHERE role = %(role)s
"""
_RECORD_GENERATION = """
INSERT INTO generations (role, generation, campaign_id, seed, task_ids, hypervolume,
                         archive_hypervolume, best_success_rate, evaluations, cost_usd,
                         candidates, stopped_reason, prod_prompt_id, record, started_at,
                         finished_at)
VALUES (%(role)s, %(generation)s, %(campaign_id)s, %(seed)s, %(task_ids)s, %(hypervolume)s,
        %(archive_hypervolume)s, %(best_success_rate)s, %(evaluations)s, %(cost_usd)s,
        %(candidates)s, %(stopped_reason)s, %(prod_prompt_id)s, %(record)s, %(started_at)s,
        COALESCE(%(finished_at)s, now()))
ON CONFLICT (role, generation) DO NOTHING
"""
# The times come from the columns: finished_at may have been filled in by the database.
_SELECT_GENERATIONS = """
SELECT record || jsonb_build_object('started_at', started_at, 'finished_at', finished_at)
       AS record
  FROM generations
"""
_GET_GENERATION = _SELECT_GENERATIONS + " WHERE role = %(role)s AND generation = %(generation)s"
_LATEST_GENERATION = _SELECT_GENERATIONS + " WHERE role = %(role)s ORDER BY generation DESC LIMIT 1"
_LIST_GENERATIONS = (
    _SELECT_GENERATIONS
    + """
 WHERE (%(role)s::text IS NULL OR role = %(role)s)
 ORDER BY finished_at DESC, generation DESC, role
 LIMIT %(limit)s
"""
)


class GenerationRepo:
    """One ``GenerationRecord`` per role and generation number."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def next_generation(self, role: str) -> int:
        """The number the role's next generation gets: 0 when none is recorded."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_NEXT_GENERATION, {"role": role})).fetchone()
        assert row is not None  # an aggregate always returns a row
        return int(row["next"])

    async def record(self, gen: GenerationRecord) -> GenerationRecord:
        """Store the generation unless (role, generation) exists; returns the stored
        record (a retry gets the first one back)."""
        params = {
            "role": gen.role,
            "generation": gen.generation,
            "campaign_id": gen.campaign_id,
            "seed": gen.seed,
            "task_ids": gen.task_ids,
            "hypervolume": gen.hypervolume,
            "archive_hypervolume": gen.archive_hypervolume,
            "best_success_rate": gen.best_success_rate,
            "evaluations": gen.evaluations,
            "cost_usd": to_decimal(gen.cost_usd),
            "candidates": gen.candidates,
            "stopped_reason": gen.stopped_reason,
            "prod_prompt_id": gen.prod_prompt_id,
            "record": jsonb(gen),
            "started_at": gen.started_at,
            "finished_at": gen.finished_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD_GENERATION, params)
            row = await (await conn.execute(_GET_GENERATION, params)).fetchone()
        assert row is not None  # inserted above or already there
        return GenerationRecord.model_validate(row["record"])

    async def get(self, role: str, generation: int) -> GenerationRecord | None:
        rows = await self._records(_GET_GENERATION, {"role": role, "generation": generation})
        return rows[0] if rows else None

    async def latest(self, role: str) -> GenerationRecord | None:
        """The role's highest-numbered generation."""
        rows = await self._records(_LATEST_GENERATION, {"role": role})
        return rows[0] if rows else None

    async def list(
        self, *, role: str | None = None, limit: int = 100
    ) -> builtins.list[GenerationRecord]:
        """Generations, newest first, optionally of one role."""
        return await self._records(_LIST_GENERATIONS, {"role": role, "limit": limit})

    async def _records(self, sql: str, params: dict[str, Any]) -> builtins.list[GenerationRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(sql, params)).fetchall()
        return [GenerationRecord.model_validate(r["record"]) for r in rows]
