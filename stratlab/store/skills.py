"""The skill library: strategies that passed every gate, kept so later designs can reuse them.

One row per strategy (``strategy_id`` is unique), so recording a success twice, from a
retried activity or a replayed workflow, keeps the first row. Retrieval for a new task
ranks by similarity of task first (same symbol, then same kind, then same regime tag)
and by out-of-sample Sharpe (``score``) within equal similarity.
"""

from __future__ import annotations

import builtins

from stratlab.models.records import SkillRecord
from stratlab.store._util import fetch_all, fetch_one, jsonb
from stratlab.store.db import ConnectionSource

_INSERT = """
INSERT INTO skills (skill_id, strategy_id, session_id, symbol, kind, name, spec, code, params,
                    metrics, score, tags, created_at)
VALUES (%(skill_id)s, %(strategy_id)s, %(session_id)s, %(symbol)s, %(kind)s, %(name)s,
        %(spec)s, %(code)s, %(params)s, %(metrics)s, %(score)s, %(tags)s,
        COALESCE(%(created_at)s, now()))
ON CONFLICT DO NOTHING
"""
_GET = "SELECT * FROM skills WHERE skill_id = %(skill_id)s"
_GET_BY_STRATEGY = "SELECT * FROM skills WHERE strategy_id = %(strategy_id)s"
_LIST = """
SELECT * FROM skills
 WHERE (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
   AND (%(kind)s::text IS NULL OR kind = %(kind)s)
 ORDER BY score DESC, created_at DESC, skill_id
 LIMIT %(limit)s
"""
# Booleans sort false < true, so DESC puts matches first; the lexicographic order makes
# one same-symbol match outrank any number of kind or regime matches.
_RELEVANT = """
SELECT * FROM skills
 ORDER BY (symbol = %(symbol)s) DESC,
          (%(kind)s::text IS NOT NULL AND kind = %(kind)s) DESC,
          (%(regime)s::text IS NOT NULL AND %(regime)s = ANY (tags)) DESC,
          score DESC, created_at DESC, skill_id
 LIMIT %(limit)s
"""


class SkillRepo:
    """Rows of ``skills`` as ``SkillRecord``."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def add(self, skill: SkillRecord) -> SkillRecord:
        """Store ``skill`` unless its strategy already is a skill; returns the stored row
        (the first one recorded for that strategy)."""
        params = {
            "skill_id": skill.skill_id,
            "strategy_id": skill.strategy_id,
            "session_id": skill.session_id,
            "symbol": skill.symbol,
            "kind": skill.kind,
            "name": skill.name,
            "spec": jsonb(skill.spec),
            "code": skill.code,
            "params": jsonb(skill.params),
            "metrics": jsonb(skill.metrics),
            "score": skill.score,
            "tags": list(skill.tags),
            "created_at": skill.created_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT, params)
            row = await (await conn.execute(_GET_BY_STRATEGY, params)).fetchone()
            if row is None:  # the skill_id was taken by another strategy's skill
                raise ValueError(f"skill id {skill.skill_id!r} belongs to another strategy")
        return SkillRecord.model_validate(row)

    async def get(self, skill_id: str) -> SkillRecord | None:
        return await fetch_one(self._pool, _GET, {"skill_id": skill_id}, SkillRecord)

    async def get_by_strategy(self, strategy_id: str) -> SkillRecord | None:
        return await fetch_one(
            self._pool, _GET_BY_STRATEGY, {"strategy_id": strategy_id}, SkillRecord
        )

    async def list(
        self, *, symbol: str | None = None, kind: str | None = None, limit: int = 50
    ) -> builtins.list[SkillRecord]:
        """Skills, best out-of-sample Sharpe first, optionally of one symbol and kind."""
        params = {"symbol": symbol, "kind": kind, "limit": limit}
        return await fetch_all(self._pool, _LIST, params, SkillRecord)

    async def relevant(
        self, symbol: str, kind: str | None, *, regime: str | None = None, limit: int = 3
    ) -> builtins.list[SkillRecord]:
        """The skills most useful for a task on ``symbol`` of ``kind`` (None: any kind):
        same symbol > same kind > same ``regime`` tag, then out-of-sample Sharpe."""
        params = {"symbol": symbol, "kind": kind, "regime": regime, "limit": limit}
        return await fetch_all(self._pool, _RELEVANT, params, SkillRecord)
