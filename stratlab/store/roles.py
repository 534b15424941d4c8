"""The application role of a deployment: what the workers and the CLI connect as.

The tables belong to whoever applied ``schema.sql`` (the set-up one-shot's admin user).
The application role is granted what the lab does and no more: it is not a superuser,
owns no object, may never TRUNCATE, and on the immutable tables may only read and
append. A role that owned ``prompts`` could drop its triggers; this one cannot, so the
registry stays immutable even if the application is compromised.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import errors, sql

from stratlab.store.db import Conn

# Tables whose rows are never changed once written (schema.sql guards them with triggers
# too): the app may SELECT and INSERT only.
IMMUTABLE_TABLES = ("prompts", "prompt_tags", "benchmarks")
# Only the set-up (the owner) writes it; the app reads it to skip an up-to-date schema.
OWNER_ONLY_TABLES = ("schema_version",)
APPEND_ONLY = ("SELECT", "INSERT")
READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")

_ROLE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

_RELATIONS = """
SELECT c.relname AS name, c.relkind AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
 ORDER BY c.relname
"""


class RoleSetupError(RuntimeError):
    """The application role cannot be created or granted as asked."""


@dataclass(frozen=True)
class AppRoleGrants:
    role: str
    created: bool
    read_write: tuple[str, ...]
    append_only: tuple[str, ...]
    read_only: tuple[str, ...]


def table_privileges(table: str) -> tuple[str, ...]:
    """What the application role may do on one table of schema.sql."""
    if table in OWNER_ONLY_TABLES:
        return ("SELECT",)
    if table in IMMUTABLE_TABLES:
        return APPEND_ONLY
    return READ_WRITE


async def ensure_app_role(conn: Conn, role: str, password: str | None) -> AppRoleGrants:
    """Create ``role`` (LOGIN, no special attributes) if missing, set its password when
    given, and grant it exactly ``table_privileges`` on every relation of the schema.
    Idempotent: privileges are revoked and granted afresh, so a table that became
    immutable loses UPDATE on the next run."""
    ident = sql.Identifier(role)
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = %(role)s", {"role": role}
            )
            existing = await cur.fetchone()
            if existing is None and not password:
                raise RoleSetupError(
                    f"role {role!r} does not exist; set STRATLAB_APP_DB_PASSWORD so setup can "
                    "create it, or create it yourself (LOGIN, not superuser) and run setup again"
                )
            if existing is not None and existing["rolsuper"]:
                raise RoleSetupError(
                    f"role {role!r} is a superuser, which could switch immutability off; "
                    "the application needs a role of its own"
                )
            verb = "CREATE" if existing is None else "ALTER"
            await conn.execute(
                sql.SQL("{} ROLE {} WITH LOGIN " + _ROLE_ATTRIBUTES).format(sql.SQL(verb), ident)
            )
            if password:
                await conn.execute(
                    sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(ident, sql.Literal(password))
                )
            grants = await _grant_privileges(conn, ident)
    except errors.InsufficientPrivilege as err:
        raise RoleSetupError(
            f"role {conn.info.user!r} may not create or grant role {role!r} "
            f"({err.diag.message_primary}); run setup with the admin user's DATABASE_URL"
        ) from err
    return AppRoleGrants(role=role, created=existing is None, **grants)


async def _grant_privileges(conn: Conn, ident: sql.Identifier) -> dict[str, tuple[str, ...]]:
    database = sql.Identifier(conn.info.dbname)
    await conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, ident))
    # Nobody but the owner creates objects in the lab's schema (PostgreSQL < 15 lets
    # every role do so by default), so the app can never own a table.
    await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    await conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(ident))
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
    await conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident))
    await conn.execute(
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident)
    )
    cur = await conn.execute(_RELATIONS)
    by_kind: dict[str, list[str]] = {"rw": [], "append": [], "read": []}
    for row in await cur.fetchall():
        name, kind = row["name"], row["kind"]
        table = sql.Identifier(name)
        if kind == "S":  # identity/serial columns draw from sequences
            await conn.execute(
                sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(table, ident)
            )
            continue
        privileges = ("SELECT",) if kind == "v" else table_privileges(name)
        await conn.execute(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in privileges), table, ident
            )
        )
        bucket = {READ_WRITE: "rw", APPEND_ONLY: "append"}.get(privileges, "read")
        by_kind[bucket].append(name)
    return {
        "read_write": tuple(by_kind["rw"]),
        "append_only": tuple(by_kind["append"]),
        "read_only": tuple(by_kind["read"]),
    }
