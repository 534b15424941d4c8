"""``stratlab setup``: what a deployment does once before its workers start.

It runs as the database's admin user (the owner of the lab's tables), and again after
every upgrade: each step is idempotent. Steps: wait for Postgres, apply ``schema.sql``,
create or update the application role and its grants, wait for Temporal, register the
search attributes, create the schedules. It prints what it did.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from stratlab.cli._common import CliError, console, database_url, print_json
from stratlab.cli.control import ensure_research_schedule
from stratlab.cli.evolution import ensure_nightly_schedule
from stratlab.config import Settings
from stratlab.llm.seeding import prepare_database
from stratlab.runtime import ensure_search_attributes, wait_for_temporal
from stratlab.store.db import Conn, SchemaOutOfDateError, schema_digest
from stratlab.store.roles import ensure_app_role
from stratlab.temporal_names import NIGHTLY_SCHEDULE_ID, RESEARCH_SCHEDULE_ID


async def setup(
    cfg: Settings,
    *,
    app_role: str | None,
    research_schedule: bool,
    nightly_roles: list[str],
    nightly_hour: int,
    population: int,
    wait_seconds: float,
    as_json: bool,
) -> None:
    report: dict[str, Any] = {}
    url, _embedded = database_url(cfg)
    async with await _connect_postgres(url, wait_seconds) as conn:
        if app_role and conn.info.user == app_role:
            raise CliError(
                f"setup connects as {app_role!r}, the application role it would grant: "
                "give it the admin user's DATABASE_URL"
            )
        try:
            await prepare_database(conn)
        except SchemaOutOfDateError as err:
            raise CliError(
                f"setup must connect as the owner of the lab's tables; DATABASE_URL "
                f"connects as {conn.info.user!r}, which may not apply schema.sql"
            ) from err
        report["schema"] = {"digest": schema_digest(), "owner": await _tables_owner(conn)}
        if app_role:
            grants = await ensure_app_role(conn, app_role, cfg.app_db_password)
            report["app_role"] = {
                "role": grants.role,
                "created": grants.created,
                "read_write": list(grants.read_write),
                "append_only": list(grants.append_only),
                "read_only": list(grants.read_only),
            }
    client = await wait_for_temporal(cfg, timeout=wait_seconds)
    await ensure_search_attributes(client)
    schedules: dict[str, str] = {}
    if research_schedule:
        created = await ensure_research_schedule(client, cfg)
        schedules[RESEARCH_SCHEDULE_ID] = "created" if created else "exists"
    for role in nightly_roles:
        created = await ensure_nightly_schedule(
            client, cfg, role=role, hour=nightly_hour, population=population
        )
        schedules[f"{NIGHTLY_SCHEDULE_ID}-{role}"] = "created" if created else "exists"
    report["temporal"] = {"namespace": cfg.temporal_namespace, "schedules": schedules}
    if as_json:
        print_json(report)
    else:
        _print_report(report, nightly_hour)


async def _connect_postgres(url: str, wait_seconds: float) -> Conn:
    """Connect, retrying while the server is still starting (a fresh container)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await psycopg.AsyncConnection.connect(
                url, autocommit=True, row_factory=dict_row, connect_timeout=5
            )
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                where = url.rsplit("@", 1)[-1]
                raise CliError(
                    f"Postgres at {where} did not answer within {wait_seconds:g} s: "
                    f"{str(err).strip().splitlines()[0]}"
                ) from err
            await asyncio.sleep(1.0)


async def _tables_owner(conn: Conn) -> str:
    cur = await conn.execute(
        "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class "
        "WHERE oid = 'schema_version'::regclass"
    )
    row = await cur.fetchone()
    return str(row["owner"]) if row else conn.info.user


def _print_report(report: dict[str, Any], nightly_hour: int) -> None:
    schema = report["schema"]
    console.print(f"schema.sql applied (sha256 {schema['digest'][:12]}, owner {schema['owner']})")
    role = report.get("app_role")
    if role:
        state = "created" if role["created"] else "updated"
        console.print(
            f"application role {role['role']} {state}: read/write on "
            f"{len(role['read_write'])} tables, insert-only on {', '.join(role['append_only'])}, "
            f"read-only on {', '.join(role['read_only'])}; not superuser, owns nothing"
        )
    temporal = report["temporal"]
    console.print(f"search attributes registered in namespace {temporal['namespace']}")
    for schedule_id, state in temporal["schedules"].items():
        when = (
            f"daily {nightly_hour:02d}:00 UTC"
            if schedule_id.startswith(NIGHTLY_SCHEDULE_ID)
            else "every 5 min"
        )
        console.print(f"schedule {schedule_id} {state} ({when})")
