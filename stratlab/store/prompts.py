"""The prompt registry: immutable prompt rows and their append-only lifecycle tags.

Postgres enforces both halves (triggers reject UPDATE, DELETE and TRUNCATE), so this
repository only ever inserts. A prompt's current tag is its latest ``prompt_tags`` event;
tagging a prompt ``prod`` archives the role's previous prod prompt in the same
transaction, so each role has one prod prompt.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from stratlab.models.prompts import PromptRecord, PromptTag
from stratlab.models.records import PromptTagEvent
from stratlab.store._util import fetch_all, fetch_one, jsonb
from stratlab.store.db import Conn, ConnectionSource, prompt_content_hash

__all__ = ["PromptRepo", "prompt_content_hash"]

# PromptRecord calls the id "id"; the current tag is the latest event, found by index.
_SELECT_PROMPTS = """
SELECT p.prompt_id AS id, p.role, p.version, p.system, p.content, p.content_hash,
       p.parent_ids, p.generation, p.metadata, p.created_at, t.tag
  FROM prompts p
  LEFT JOIN LATERAL (
       SELECT tag FROM prompt_tags WHERE prompt_id = p.prompt_id
        ORDER BY event_id DESC LIMIT 1) t ON true
"""
_GET = _SELECT_PROMPTS + " WHERE p.prompt_id = %(prompt_id)s"
_GET_BY_HASH = _SELECT_PROMPTS + " WHERE p.role = %(role)s AND p.content_hash = %(content_hash)s"
_LIST = (
    _SELECT_PROMPTS
    + """
 WHERE (%(role)s::text IS NULL OR p.role = %(role)s)
   AND (%(tag)s::text IS NULL OR t.tag = %(tag)s)
 ORDER BY p.created_at DESC, p.prompt_id
 LIMIT %(limit)s
"""
)
# "Current prod" is defined once, by the prompt_current_prod view in schema.sql.
_CURRENT_PROD = """
SELECT p.prompt_id AS id, p.role, p.version, p.system, p.content, p.content_hash,
       p.parent_ids, p.generation, p.metadata, p.created_at, 'prod' AS tag
  FROM prompt_current_prod c
  JOIN prompts p ON p.prompt_id = c.prompt_id
 WHERE c.role = %(role)s
"""

# Never DO UPDATE: that would fire the immutability trigger. The same text for the same
# role is the same prompt, so a retry (or a rediscovered mutation) finds the first row.
_INSERT = """
INSERT INTO prompts (prompt_id, role, version, system, content, content_hash, parent_ids,
                     generation, metadata)
VALUES (%(prompt_id)s, %(role)s, %(version)s, %(system)s, %(content)s, %(content_hash)s,
        %(parent_ids)s, %(generation)s, COALESCE(%(metadata)s, '{}'::jsonb))
ON CONFLICT (role, content_hash) DO NOTHING
RETURNING prompt_id
"""

_ROLE_OF = "SELECT role FROM prompts WHERE prompt_id = %(prompt_id)s"
# Tag changes of one role are serialised, so two concurrent promotions cannot both stay prod.
_LOCK_ROLE = "SELECT pg_advisory_xact_lock(hashtextextended(%(lock_name)s, 0))"
_LATEST_EVENT = """
SELECT * FROM prompt_tags WHERE prompt_id = %(prompt_id)s ORDER BY event_id DESC LIMIT 1
"""
_ARCHIVE_OTHER_PRODS = """
INSERT INTO prompt_tags (prompt_id, tag, actor, reason)
SELECT t.prompt_id, 'archived', %(actor)s, 'replaced as prod by ' || %(prompt_id)s
  FROM prompt_current_tags t
  JOIN prompts p ON p.prompt_id = t.prompt_id
 WHERE p.role = %(role)s AND t.tag = 'prod' AND t.prompt_id <> %(prompt_id)s
 ORDER BY t.event_id
"""
_APPEND_EVENT = """
INSERT INTO prompt_tags (prompt_id, tag, actor, reason)
VALUES (%(prompt_id)s, %(tag)s, %(actor)s, %(reason)s)
RETURNING *
"""
_EVENTS = "SELECT * FROM prompt_tags WHERE prompt_id = %(prompt_id)s ORDER BY event_id"

# Ancestors breadth-first: depth 1 are the parents in parent_ids order (sort_key is the
# path of parent positions). parent_ids has no foreign key, so ``seen`` stops a cycle a
# hand-written row could make; a prompt reached along several paths is kept once, at its
# shallowest depth, and parent ids without a prompt row are dropped by the join.
_LINEAGE = (
    """
WITH RECURSIVE ancestry (prompt_id, depth, sort_key, seen) AS (
    SELECT u.parent_id, 1, ARRAY[u.ord], ARRAY[p.prompt_id, u.parent_id]
      FROM prompts p
     CROSS JOIN LATERAL unnest(p.parent_ids) WITH ORDINALITY AS u (parent_id, ord)
     WHERE p.prompt_id = %(prompt_id)s
    UNION ALL
    SELECT u.parent_id, a.depth + 1, a.sort_key || u.ord, a.seen || u.parent_id
      FROM ancestry a
      JOIN prompts p ON p.prompt_id = a.prompt_id
     CROSS JOIN LATERAL unnest(p.parent_ids) WITH ORDINALITY AS u (parent_id, ord)
     WHERE u.parent_id <> ALL (a.seen)
),
first_seen AS (
    SELECT DISTINCT ON (prompt_id) prompt_id, depth, sort_key
      FROM ancestry ORDER BY prompt_id, depth, sort_key
)"""
    + _SELECT_PROMPTS
    + " JOIN first_seen f ON f.prompt_id = p.prompt_id ORDER BY f.depth, f.sort_key"
)
# LIKE, with the prefix's own wildcards escaped by by_prefix: "ab_" matches only "ab_".
_BY_PREFIX = (
    _SELECT_PROMPTS + " WHERE p.prompt_id LIKE %(pattern)s ORDER BY p.prompt_id LIMIT %(limit)s"
)
_METADATA = "SELECT metadata FROM prompts WHERE prompt_id = %(prompt_id)s"
_PARENTS_BY_OPERATOR = """
SELECT DISTINCT parent.id
  FROM prompts p CROSS JOIN LATERAL unnest(p.parent_ids) AS parent (id)
 WHERE p.role = %(role)s AND p.metadata->>'operator' = %(operator)s
"""


class PromptRepo:
    """Insert and read prompts; append lifecycle tag events."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def insert(
        self,
        *,
        prompt_id: str,
        role: str,
        content: str,
        system: str = "",
        version: str = "1.0.0",
        parent_ids: Sequence[str] = (),
        generation: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        tag: PromptTag | None = None,
        actor: str = "system",
        reason: str = "",
    ) -> PromptRecord:
        """Register a prompt, or return the registered one with the same role and text
        (whose id may differ from ``prompt_id``). ``tag`` is applied only to a prompt
        this call created."""
        params = {
            "prompt_id": prompt_id,
            "role": role,
            "version": version,
            "system": system,
            "content": content,
            "content_hash": prompt_content_hash(system, content),
            "parent_ids": list(parent_ids),
            "generation": generation,
            "metadata": jsonb(metadata),
        }
        async with self._pool.connection() as conn, conn.transaction():
            created = await (await conn.execute(_INSERT, params)).fetchone()
            if created is not None and tag is not None:
                await _append_tag(conn, prompt_id, role, tag, actor, reason)
            row = await (await conn.execute(_GET_BY_HASH, params)).fetchone()
        return PromptRecord.model_validate(row)

    async def get(self, prompt_id: str) -> PromptRecord | None:
        return await fetch_one(self._pool, _GET, {"prompt_id": prompt_id}, PromptRecord)

    async def current_prod(self, role: str) -> PromptRecord:
        """The role's prod prompt. Raises ``LookupError`` when the role has none (the
        defaults are seeded with the schema: ``stratlab.llm.seeding.prepare_database``)."""
        found = await fetch_one(self._pool, _CURRENT_PROD, {"role": role}, PromptRecord)
        if found is None:
            raise LookupError(
                f"no prod prompt for role {role!r}: apply the schema to seed the defaults, "
                "or tag a prompt of this role prod"
            )
        return found

    async def list(
        self, *, role: str | None = None, tag: PromptTag | None = None, limit: int = 1000
    ) -> builtins.list[PromptRecord]:
        """Prompts, newest first, optionally of one role and/or one current tag."""
        params = {"role": role, "tag": tag, "limit": limit}
        return await fetch_all(self._pool, _LIST, params, PromptRecord)

    async def tag(
        self, prompt_id: str, tag: PromptTag, *, actor: str, reason: str = ""
    ) -> PromptTagEvent:
        """Append a lifecycle event. Tagging a prompt with the tag it already has is a
        no-op that returns its current event, so a retry adds nothing; tagging ``prod``
        archives the role's other prod prompts. Raises ``LookupError`` for an unknown
        prompt."""
        async with self._pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(_ROLE_OF, {"prompt_id": prompt_id})).fetchone()
            if row is None:
                raise LookupError(f"no prompt {prompt_id!r} to tag {tag!r}")
            return await _append_tag(conn, prompt_id, row["role"], tag, actor, reason)

    # builtins.list: inside this class, a bare ``list`` would name the method above.
    async def tags(self, prompt_id: str) -> builtins.list[PromptTagEvent]:
        """The prompt's lifecycle, oldest event first."""
        return await fetch_all(self._pool, _EVENTS, {"prompt_id": prompt_id}, PromptTagEvent)

    async def lineage(self, prompt_id: str) -> builtins.list[PromptRecord]:
        """The prompt's ancestors, each once: parents first (in ``parent_ids`` order),
        then grandparents, and so on. Empty for a seed prompt or an unknown id."""
        return await fetch_all(self._pool, _LINEAGE, {"prompt_id": prompt_id}, PromptRecord)

    async def by_prefix(self, prefix: str, *, limit: int = 10) -> builtins.list[PromptRecord]:
        """Prompts whose id starts with ``prefix``, by id (for short ids typed by people)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {"pattern": escaped + "%", "limit": limit}
        return await fetch_all(self._pool, _BY_PREFIX, params, PromptRecord)

    async def metadata(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's free-form metadata (e.g. the operator that made it), or ``None``
        for an unknown id (``PromptRecord`` does not carry it)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_METADATA, {"prompt_id": prompt_id})
            row = await cur.fetchone()
        return None if row is None else dict(row["metadata"])

    async def parents_by_operator(self, role: str, operator: str) -> set[str]:
        """Ids of the ``role`` prompts that have a registered child made by ``operator``
        (the ``operator`` of the child's metadata, e.g. ``"llm_mutation"``)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PARENTS_BY_OPERATOR, {"role": role, "operator": operator})
            return {row["id"] for row in await cur.fetchall()}


async def _append_tag(
    conn: Conn, prompt_id: str, role: str, tag: PromptTag, actor: str, reason: str
) -> PromptTagEvent:
    """Inside the caller's transaction: lock the role, skip a repeated tag, keep one prod."""
    params = {"prompt_id": prompt_id, "role": role, "tag": tag, "actor": actor, "reason": reason}
    await conn.execute(_LOCK_ROLE, {"lock_name": f"stratlab:prompt-tags:{role}"})
    latest = await (await conn.execute(_LATEST_EVENT, params)).fetchone()
    if latest is not None and latest["tag"] == tag:
        return PromptTagEvent.model_validate(latest)
    if tag == "prod":
        await conn.execute(_ARCHIVE_OTHER_PRODS, params)
    row = await (await conn.execute(_APPEND_EVENT, params)).fetchone()
    return PromptTagEvent.model_validate(row)
