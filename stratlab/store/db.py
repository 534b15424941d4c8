"""The connection pool, the schema and the seeding of default prompts.

One ``AsyncConnectionPool`` per process, made here with ``open=False`` and opened by the
entry point. Connections are in autocommit mode and hand out dict rows: a single
statement commits on its own, and repositories wrap multi-statement work in
``conn.transaction()`` explicitly, so no connection is ever left idle in a transaction.

The store does not know which prompts are the defaults: the caller hands them to
``apply_schema`` (``stratlab.llm.seeding.prepare_database`` hands in the LLM layer's).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeAlias

from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Pool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn: TypeAlias = AsyncConnection[DictRow]

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
"""Inside the package (package data), so a wheel install applies the same schema."""

# Any fixed bigint works: it only has to be the same in every process applying the schema.
SCHEMA_LOCK_KEY = 0x5354_524C_4142  # b"STRLAB"

_LOCK_SCHEMA = "SELECT pg_advisory_xact_lock(%(key)s)"
# Re-applying the schema raises one "already exists, skipping" notice per object.
_QUIET_NOTICES = "SET LOCAL client_min_messages = warning"

_SELECT_SCHEMA_DIGEST = "SELECT digest FROM schema_version"
_RECORD_SCHEMA_DIGEST = """
INSERT INTO schema_version (digest) VALUES (%(digest)s)
ON CONFLICT (singleton) DO UPDATE SET digest = EXCLUDED.digest, applied_at = now()
"""

_INSERT_DEFAULT_PROMPT = """
INSERT INTO prompts (prompt_id, role, version, system, content, content_hash, metadata)
VALUES (%(prompt_id)s, %(role)s, %(version)s, %(system)s, %(content)s, %(content_hash)s,
        '{"source": "default"}'::jsonb)
ON CONFLICT (role, content_hash) DO NOTHING
"""

_SELECT_PROMPT_ID = """
SELECT prompt_id FROM prompts WHERE role = %(role)s AND content_hash = %(content_hash)s
"""

# Only the first default of a role becomes prod: a later default must not silently
# replace a prompt that a human or the optimizer promoted.
_TAG_PROD_IF_NONE = """
INSERT INTO prompt_tags (prompt_id, tag, actor, reason)
SELECT %(prompt_id)s, 'prod', 'system', 'default prompt seeded by apply_schema'
 WHERE NOT EXISTS (SELECT 1 FROM prompt_current_prod WHERE role = %(role)s)
"""


class SchemaOutOfDateError(RuntimeError):
    """The database holds another schema.sql and this role may not apply it."""


class DefaultPromptLike(Protocol):
    """A role's default prompt as the caller of ``apply_schema`` hands it in."""

    @property
    def role(self) -> str: ...
    @property
    def system(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def version(self) -> str: ...


class ConnectionSource(Protocol):
    """What repositories take: a pool, or anything else that lends a connection the same
    way (``SingleConnection``)."""

    def connection(self) -> AbstractAsyncContextManager[Conn]: ...


class SingleConnection:
    """One connection lent out as if it were a pool, so repositories can share it: inside
    ``async with conn.transaction()`` several repositories' writes commit together."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        yield self._conn


def make_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool of autocommit, dict-row connections; the caller opens it (``await
    pool.open()`` or ``async with pool``)."""
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        connection_class=AsyncConnection[DictRow],
        kwargs={"row_factory": dict_row, "autocommit": True},
        # A connection is checked before it is lent out: after a database restart the
        # next activity gets a fresh connection instead of a dead one.
        check=AsyncConnectionPool.check_connection,
        name="stratlab",
    )


def prompt_content_hash(system: str, content: str) -> str:
    """The registry's identity of a prompt text: sha256 hex of system, a separator and
    the content (the separator keeps ``("ab", "c")`` and ``("a", "bc")`` apart)."""
    return hashlib.sha256(f"{system}\n---\n{content}".encode()).hexdigest()


def default_prompt_id(role: str, content_hash: str) -> str:
    """A stable id from role and text: every database gives a seeded default, or a child
    the optimizer breeds, the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stratlab:prompt:{role}:{content_hash}"))


def schema_digest() -> str:
    """sha256 hex of this checkout's schema.sql: what ``schema_version`` records."""
    return hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()


async def apply_schema(
    target: ConnectionSource | Conn, *, prompts: Iterable[DefaultPromptLike] = ()
) -> None:
    """Apply ``schema.sql`` unless the database already records its digest, and seed
    ``prompts`` as the defaults (``seed_default_prompts``; none when empty), under an
    advisory lock so workers starting together take turns.

    The DDL needs the tables' owner. The application role of a deployment owns nothing,
    so for it an up-to-date database is a no-op and an out-of-date one is a
    ``SchemaOutOfDateError`` that says who must apply it.
    """
    defaults = list(prompts)
    if isinstance(target, AsyncConnection):
        await _apply(target, defaults)
    else:
        async with target.connection() as conn:
            await _apply(conn, defaults)


async def _apply(conn: Conn, prompts: list[DefaultPromptLike]) -> None:
    digest = schema_digest()
    if await _recorded_digest(conn) != digest:
        await _apply_ddl(conn, digest)
    if prompts:
        await seed_default_prompts(conn, prompts)


async def _recorded_digest(conn: Conn) -> str | None:
    try:
        async with conn.transaction():  # a failed read must not poison the connection
            cur = await conn.execute(_SELECT_SCHEMA_DIGEST)
            row = await cur.fetchone()
    except errors.UndefinedTable:
        return None
    return None if row is None else str(row["digest"])


async def _apply_ddl(conn: Conn, digest: str) -> None:
    # bytes, not str: the file is a trusted multi-statement script run without parameters.
    script = SCHEMA_PATH.read_bytes()
    try:
        async with conn.transaction():
            await conn.execute(_LOCK_SCHEMA, {"key": SCHEMA_LOCK_KEY})
            await conn.execute(_QUIET_NOTICES)
            await conn.execute(script)
            await conn.execute(_RECORD_SCHEMA_DIGEST, {"digest": digest})
    except errors.InsufficientPrivilege as err:
        user = conn.info.user
        raise SchemaOutOfDateError(
            f"the database's schema is not this stratlab's schema.sql, and role {user!r} "
            "may not apply it; run `stratlab setup` (or `stratlab db init`) with a "
            f"DATABASE_URL of the tables' owner ({err.diag.message_primary})"
        ) from err


async def seed_default_prompts(conn: Conn, prompts: Iterable[DefaultPromptLike]) -> list[str]:
    """Insert each default prompt once (by role and content hash) and tag it ``prod``
    when its role has no prod prompt yet. Returns the prompt ids, in input order."""
    ids = []
    async with conn.transaction():
        await conn.execute(_LOCK_SCHEMA, {"key": SCHEMA_LOCK_KEY})
        for prompt in prompts:
            ids.append(await _seed_one(conn, prompt))
    return ids


async def _seed_one(conn: Conn, prompt: DefaultPromptLike) -> str:
    digest = prompt_content_hash(prompt.system, prompt.content)
    params = {
        "prompt_id": default_prompt_id(prompt.role, digest),
        "role": prompt.role,
        "version": prompt.version,
        "system": prompt.system,
        "content": prompt.content,
        "content_hash": digest,
    }
    await conn.execute(_INSERT_DEFAULT_PROMPT, params)
    # The text may already be registered under another id (inserted by the optimizer).
    cur = await conn.execute(_SELECT_PROMPT_ID, params)
    row = await cur.fetchone()
    assert row is not None  # inserted above or already there
    await conn.execute(_TAG_PROD_IF_NONE, {"prompt_id": row["prompt_id"], "role": prompt.role})
    return str(row["prompt_id"])
