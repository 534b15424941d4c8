"""Ids typed by people: which stored ids start with what they typed.

Every lookup takes a prefix and returns at most ``limit`` matching ids, sorted, so the CLI
can resolve an unambiguous prefix and name the candidates of an ambiguous one. ``LIKE``
patterns escape the prefix's own wildcards: ``ab_`` matches only ``ab_...``.
"""

from __future__ import annotations

from typing import Literal

from stratlab.store.db import ConnectionSource

IdKind = Literal["session", "skill", "paper"]

# A research session by its session id or by the workflow id its row recorded (a cycle
# started from the Temporal CLI with an id of its own, or an ``evaluate-<id>`` run).
_SESSIONS = """
SELECT session_id, workflow_id FROM agent_sessions
 WHERE session_id LIKE %(pattern)s OR workflow_id LIKE %(pattern)s
 ORDER BY session_id LIMIT %(limit)s
"""
_SKILLS = """
SELECT skill_id AS id FROM skills WHERE skill_id LIKE %(pattern)s
UNION
SELECT skill_id AS id FROM skills WHERE strategy_id LIKE %(pattern)s
 ORDER BY id LIMIT %(limit)s
"""
_PAPER = """
SELECT strategy_id AS id FROM paper_strategies WHERE strategy_id LIKE %(pattern)s
 ORDER BY id LIMIT %(limit)s
"""


def like_prefix(prefix: str) -> str:
    """A ``LIKE`` pattern matching exactly the strings that start with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def session_matches(
    pool: ConnectionSource, prefix: str, *, limit: int = 5
) -> list[tuple[str, str]]:
    """``(session_id, workflow_id)`` of the sessions whose session or workflow id starts
    with ``prefix``."""
    params = {"pattern": like_prefix(prefix), "limit": limit}
    async with pool.connection() as conn:
        rows = await (await conn.execute(_SESSIONS, params)).fetchall()
    return [(r["session_id"], r["workflow_id"]) for r in rows]


async def id_matches(
    pool: ConnectionSource, kind: Literal["skill", "paper"], prefix: str, *, limit: int = 5
) -> list[str]:
    """Skill ids (also by the strategy id a skill came from) or paper strategy ids that
    start with ``prefix``."""
    sql = _SKILLS if kind == "skill" else _PAPER
    params = {"pattern": like_prefix(prefix), "limit": limit}
    async with pool.connection() as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    return [r["id"] for r in rows]
