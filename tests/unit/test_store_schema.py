"""schema.sql: idempotent to apply, and the prompt registry really is immutable."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from stratlab.llm.seeding import prepare_database
from stratlab.store.db import (
    Pool,
    apply_schema,
    prompt_content_hash,
    schema_digest,
    seed_default_prompts,
)
from stratlab.store.prompts import PromptRepo

# Everything schema.sql creates, in a comparable form.
CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
          FROM information_schema.columns WHERE table_schema = 'public'
         ORDER BY table_name, column_name""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
         ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1""",
    "functions": """
        SELECT proname, md5(prosrc) FROM pg_proc
         WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "comments": """
        SELECT c.relname, d.description FROM pg_description d
          JOIN pg_class c ON c.oid = d.objoid AND d.objsubid = 0
         WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1""",
    "rows": """
        SELECT (SELECT count(*) FROM prompts) AS prompts,
               (SELECT count(*) FROM prompt_tags) AS prompt_tags""",
}

EXPECTED_TABLES = {
    "agent_sessions", "agent_actions", "agent_triggers", "agent_metrics", "agent_budget",
    "budget_reservations", "session_phases", "strategies", "training_runs",
    "training_checkpoints", "backtests", "assessments", "prompts", "prompt_tags",
    "datasets", "market_bars", "skills", "benchmarks", "experiments", "experiment_results",
    "generations", "paper_strategies", "paper_books", "paper_history", "paper_equity",
    "llm_cache", "schema_version", "trials", "walk_forward_series", "holdout_evaluations",
}  # fmt: skip


async def catalog(pool: Pool) -> dict[str, list[Any]]:
    async with pool.connection() as conn:
        return {
            name: [tuple(r.values()) for r in await (await conn.execute(q)).fetchall()]
            for name, q in CATALOG_QUERIES.items()
        }


async def test_schema_applied_twice_yields_the_same_catalog(db_pool: Pool) -> None:
    before = await catalog(db_pool)  # the template already applied it once
    await prepare_database(db_pool)
    await prepare_database(db_pool)
    after = await catalog(db_pool)

    assert after == before
    tables = {row[0] for row in before["comments"]}
    assert tables >= EXPECTED_TABLES, "every table carries a comment"


async def test_concurrent_apply_schema_does_not_fail(db_pool: Pool) -> None:
    # Workers starting together each apply the schema: the advisory lock serialises them.
    before = await catalog(db_pool)
    await asyncio.gather(*(prepare_database(db_pool) for _ in range(5)))
    assert await catalog(db_pool) == before


async def test_an_applied_schema_is_recorded_and_not_run_again_until_it_changes(
    db_pool: Pool,
) -> None:
    async with db_pool.connection() as conn:
        row = await (await conn.execute("SELECT digest FROM schema_version")).fetchone()
        assert row is not None and row["digest"] == schema_digest()
        # A change the DDL would undo: with the same digest recorded, it is left alone.
        await conn.execute("COMMENT ON TABLE skills IS 'edited by hand'")
    await prepare_database(db_pool)
    assert await table_comment(db_pool, "skills") == "edited by hand"
    async with db_pool.connection() as conn:
        await conn.execute("UPDATE schema_version SET digest = 'an older schema.sql'")
    await prepare_database(db_pool)
    assert await table_comment(db_pool, "skills") != "edited by hand"
    async with db_pool.connection() as conn:
        row = await (await conn.execute("SELECT digest FROM schema_version")).fetchone()
        assert row is not None and row["digest"] == schema_digest()


async def table_comment(pool: Pool, table: str) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT obj_description(%s::regclass, 'pg_class') AS c", [table])
        row = await cur.fetchone()
    return None if row is None else row["c"]


async def test_workers_applying_to_an_empty_database_together(db_pool: Pool) -> None:
    async with db_pool.connection() as conn:
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
    # Five pool connections race on a bare catalog, as workers starting together would.
    await asyncio.gather(*(apply_schema(db_pool) for _ in range(5)))
    async with db_pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).fetchall()
    assert {r["tablename"] for r in rows} == EXPECTED_TABLES


# --- immutability of the prompt registry --------------------------------------------------

MUTATIONS = {
    "update prompts": "UPDATE prompts SET content = 'changed'",
    "delete prompts": "DELETE FROM prompts",
    "truncate prompts": "TRUNCATE prompts CASCADE",
    "update prompt_tags": "UPDATE prompt_tags SET tag = 'archived'",
    "delete prompt_tags": "DELETE FROM prompt_tags",
    "truncate prompt_tags": "TRUNCATE prompt_tags",
}


@pytest.mark.parametrize("statement", MUTATIONS.values(), ids=MUTATIONS.keys())
async def test_prompt_registry_rejects_mutation(db_pool: Pool, statement: str) -> None:
    repo = PromptRepo(db_pool)
    await repo.insert(prompt_id="p1", role="designer", content="Design {{ symbol }}", tag="draft")

    async with db_pool.connection() as conn:
        with pytest.raises(psycopg.errors.RestrictViolation, match="immutable") as err:
            await conn.execute(statement)
    assert err.value.diag.message_hint and "insert a new prompt" in err.value.diag.message_hint

    prompt = await repo.get("p1")
    assert prompt is not None and prompt.content == "Design {{ symbol }}"
    assert [e.tag for e in await repo.tags("p1")] == ["draft"]


# --- default prompts ------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeDefault:
    role: str
    system: str
    content: str
    version: str = "1.0.0"


async def test_seeding_defaults_is_idempotent_and_keeps_a_promoted_prod(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    defaults = [FakeDefault("coder", "You trade.", "Decide for {{ symbol }}.")]
    async with db_pool.connection() as conn:
        first = await seed_default_prompts(conn, defaults)
        again = await seed_default_prompts(conn, defaults)
    assert first == again

    seeded = await repo.current_prod("coder")
    assert seeded.id == first[0]
    assert seeded.content_hash == prompt_content_hash("You trade.", "Decide for {{ symbol }}.")
    assert [e.tag for e in await repo.tags(seeded.id)] == ["prod"]

    # A prompt promoted since then stays prod when a new default version is seeded.
    better = await repo.insert(prompt_id="better", role="coder", content="Be bold.")
    await repo.tag(better.id, "prod", actor="alice", reason="approved")
    async with db_pool.connection() as conn:
        await seed_default_prompts(conn, [FakeDefault("coder", "You trade.", "v2 text")])
    assert (await repo.current_prod("coder")).id == "better"
    assert len(await repo.list(role="coder")) == 3


async def test_real_default_prompts_are_seeded_as_prod(db_pool: Pool) -> None:
    prompts = pytest.importorskip("stratlab.llm.prompts")
    repo = PromptRepo(db_pool)
    for role, default in prompts.DEFAULT_PROMPTS.items():
        prod = await repo.current_prod(role)
        assert prod.content == default.content
        assert prod.system == default.system
        assert prod.tag == "prod"
