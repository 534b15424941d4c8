"""A deployment's database as ``stratlab setup`` leaves it: the application role runs the
whole lab, yet cannot change a prompt, a tag or a benchmark, switch the triggers off, own
an object or apply a schema.sql; a stale schema is one clear error that names the fix.

Roles are cluster-wide, so each test's role has a unique name and is dropped after the
test's own database (where all its grants live) is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import AsyncConnection, errors, sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError

from stratlab.config import Settings
from stratlab.evolution.suite import load_suite
from stratlab.llm.seeding import prepare_database
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.db import (
    Pool,
    SchemaOutOfDateError,
    SingleConnection,
    make_pool,
    schema_digest,
)
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.roles import RoleSetupError, ensure_app_role
from tests.fixtures.cli import assert_one_line_error, run_cli
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.optimization import REGRESSION_TASKS, run_regression
from tests.fixtures.postgres import create_database, database_url_for, drop_database
from tests.fixtures.temporal import Lab, lab_settings
from workers.pools import run_workers
from workflows.constants import (
    NIGHTLY_SCHEDULE_ID,
    POOLS,
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
)

# pgserver trusts local connections and ignores it; a DATABASE_URL server may check it.
APP_PASSWORD = "app-password-of-the-tests"
SETUP_ONLY_DATABASE = ("setup", "--no-research-schedule", "--no-nightly")

_COUNT_REGISTRY = """
SELECT (SELECT count(*) FROM prompts) AS prompts,
       (SELECT count(*) FROM prompt_tags) AS prompt_tags,
       (SELECT count(*) FROM benchmarks) AS benchmarks,
       (SELECT applied_at FROM schema_version) AS schema_applied_at
"""
_ROLE_ATTRIBUTES = """
SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin
  FROM pg_roles WHERE rolname = %(role)s
"""
# Everything the role owns in this database or cluster-wide; an owner could drop triggers.
_OWNED_BY_ROLE = """
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT 'relation ' || relname FROM pg_class, r WHERE relowner = r.oid
UNION ALL SELECT 'function ' || proname FROM pg_proc, r WHERE proowner = r.oid
UNION ALL SELECT 'schema ' || nspname FROM pg_namespace, r WHERE nspowner = r.oid
UNION ALL SELECT 'type ' || typname FROM pg_type, r WHERE typowner = r.oid
UNION ALL SELECT 'database ' || datname FROM pg_database, r WHERE datdba = r.oid
UNION ALL SELECT 'member of ' || roleid::regrole::text FROM pg_auth_members, r
 WHERE member = r.oid
"""
_SESSION_ROWS = """
SELECT outcome, (SELECT count(*) FROM backtests b WHERE b.session_id = s.session_id) AS backtests
  FROM agent_sessions s WHERE session_id = %(s)s
"""
_SCHEMA_DIGEST = "SELECT digest FROM schema_version"
_FORGE_OLD_DIGEST = "UPDATE schema_version SET digest = 'old'"

# What a compromised application could try against the registry. Each must be refused by
# the privilege layer (InsufficientPrivilege), not merely by a trigger (RestrictViolation)
# that an owner could switch off.
DENIED_TO_APP = (
    "UPDATE prompts SET content = content || ' (edited)'",
    "DELETE FROM prompts",
    "TRUNCATE prompts CASCADE",
    "UPDATE prompt_tags SET tag = 'prod'",
    "DELETE FROM prompt_tags",
    "TRUNCATE prompt_tags",
    "UPDATE benchmarks SET regime = 'easy'",
    "DELETE FROM benchmarks",
    "TRUNCATE benchmarks CASCADE",
    "TRUNCATE agent_sessions CASCADE",
    "ALTER TABLE prompts DISABLE TRIGGER ALL",
    "DROP TRIGGER prompts_immutable_rows ON prompts",
    "CREATE OR REPLACE FUNCTION stratlab_reject_mutation() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "SET session_replication_role = replica",
    "CREATE TABLE app_owned (id int)",
    "CREATE SCHEMA app_owned",
    "UPDATE schema_version SET digest = 'forged'",
)


@dataclass(frozen=True)
class Deployment:
    """One test's database (as its admin) and the name of its application role."""

    admin_url: str
    role: str

    @property
    def app_url(self) -> str:
        return make_conninfo(self.admin_url, user=self.role, password=APP_PASSWORD)


@contextmanager
def deployment_database(server_url: str, template: str | None) -> Iterator[Deployment]:
    suffix = uuid.uuid4().hex[:12]
    name, role = f"stratlab_deploy_{suffix}", f"stratlab_app_{suffix}"
    create_database(server_url, name, template=template)
    try:
        yield Deployment(database_url_for(server_url, name), role)
    finally:
        # The role's grants (CONNECT included) all live in this database: once it is gone
        # the role depends on nothing and drops cleanly, whatever the test did.
        try:
            drop_database(server_url, name)
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def fresh_deployment(postgres_url: str) -> Iterator[Deployment]:
    """An empty database: `stratlab setup` applies the schema itself."""
    with deployment_database(postgres_url, None) as deployment:
        yield deployment


@pytest.fixture
def deployment(postgres_url: str, postgres_template: str) -> Iterator[Deployment]:
    """A database holding the schema; its role does not exist yet."""
    with deployment_database(postgres_url, postgres_template) as deployment:
        yield deployment


@pytest.fixture
async def granted_deployment(deployment: Deployment) -> Deployment:
    async with await connect(deployment.admin_url) as admin:
        await ensure_app_role(admin, deployment.role, APP_PASSWORD)
    return deployment


@pytest.fixture
async def app_pool(granted_deployment: Deployment) -> AsyncIterator[Pool]:
    pool = make_pool(granted_deployment.app_url, max_size=12)
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


async def connect(url: str) -> AsyncConnection[DictRow]:
    return await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


async def stratlab(
    url: str, client: Client, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``stratlab *args`` as a user runs it, with DATABASE_URL = ``url``."""
    return await run_cli(SimpleNamespace(settings=lab_settings(url, home)), client, *args)


async def one_row(url: str, query: str, **params: object) -> dict[str, object]:
    async with await connect(url) as conn:
        row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return dict(row)


async def error_class(conn: AsyncConnection[DictRow], statement: str) -> str:
    try:
        await conn.execute(statement)
    except psycopg.Error as err:
        return type(err).__name__
    return "no error"


@asynccontextmanager
async def lab_running_as(client: Client, pool: Pool, settings: Settings) -> AsyncIterator[Lab]:
    """Every pool in this process on ``pool``, as the ``lab`` fixture runs them."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(POOLS, client, pool, settings, stop))
    try:
        yield Lab(settings, client, pool)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


async def test_setup_creates_an_app_role_that_cannot_touch_the_registry(
    fresh_deployment: Deployment,
    temporal_client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dep = fresh_deployment
    monkeypatch.setenv("STRATLAB_APP_DB_PASSWORD", APP_PASSWORD)
    args = (*SETUP_ONLY_DATABASE, "--app-role", dep.role, "--json")
    first = await stratlab(dep.admin_url, temporal_client, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["schema"]["digest"] == schema_digest()
    assert report["app_role"]["role"] == dep.role and report["app_role"]["created"] is True
    assert sorted(report["app_role"]["append_only"]) == ["benchmarks", "prompt_tags", "prompts"]
    assert "schema_version" in report["app_role"]["read_only"]
    assert "agent_sessions" in report["app_role"]["read_write"]
    assert report["temporal"]["schedules"] == {}
    registry = await one_row(dep.admin_url, _COUNT_REGISTRY)
    assert registry["prompts"] and registry["prompt_tags"]  # the defaults were seeded

    again = await stratlab(dep.admin_url, temporal_client, tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["app_role"]["created"] is False
    # Same rows, and the DDL was skipped: the recorded digest was not re-applied.
    assert await one_row(dep.admin_url, _COUNT_REGISTRY) == registry

    await assert_app_role_is_append_only(dep)
    await assert_app_role_owns_nothing(dep)


async def assert_app_role_is_append_only(dep: Deployment) -> None:
    async with await connect(dep.app_url) as conn:
        assert (await (await conn.execute("SELECT current_user")).fetchone()) == {
            "current_user": dep.role
        }
        # Appending is the lab's job: register a prompt, promote it, load the benchmarks.
        prompts = PromptRepo(SingleConnection(conn))
        added = await prompts.insert(
            prompt_id=str(uuid.uuid4()), role="designer", content="Design carefully.", tag="draft"
        )
        await prompts.tag(added.id, "prod", actor="test", reason="append as the app role")
        assert (await prompts.current_prod("designer")).id == added.id
        assert await BenchmarkRepo(SingleConnection(conn)).sync_suite(load_suite()) > 0

        outcomes = {statement: await error_class(conn, statement) for statement in DENIED_TO_APP}
    assert outcomes == dict.fromkeys(DENIED_TO_APP, errors.InsufficientPrivilege.__name__)

    async with await connect(dep.admin_url) as admin:
        # As the owner, the trigger (not a privilege) is what refuses: the check above
        # really told the two layers apart.
        assert await error_class(admin, DENIED_TO_APP[0]) == errors.RestrictViolation.__name__


async def assert_app_role_owns_nothing(dep: Deployment) -> None:
    attributes = await one_row(dep.admin_url, _ROLE_ATTRIBUTES, role=dep.role)
    assert attributes == {
        "rolsuper": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolreplication": False,
        "rolbypassrls": False,
        "rolcanlogin": True,
    }
    async with await connect(dep.admin_url) as admin:
        owned = await (await admin.execute(_OWNED_BY_ROLE, {"role": dep.role})).fetchall()
    assert owned == []


async def test_the_lab_runs_as_the_app_role(
    granted_deployment: Deployment, app_pool: Pool, temporal_client: Client, tmp_path: Path
) -> None:
    await prepare_database(app_pool)  # the schema is current: a no-op, not a privilege error
    settings = lab_settings(granted_deployment.app_url, tmp_path)
    async with lab_running_as(temporal_client, app_pool, settings) as lab:
        result = await lab.run_cycle(
            symbol="sp500",
            kind="rules",
            max_iterations=1,
            training_gate=OPEN_TRAINING_GATE,
            backtest_gate=OPEN_BACKTEST_GATE,
            statistical_gate=OPEN_STATISTICAL_GATE,
        )
        prod = await PromptRepo(app_pool).current_prod("designer")
        _, regression = await run_regression(
            lab, prompt_id=prod.id, task_ids=REGRESSION_TASKS[:1], max_parallel=1
        )
    assert result.outcome == "success", result

    written = await one_row(granted_deployment.admin_url, _SESSION_ROWS, s=result.session_id)
    assert written == {"outcome": "success", "backtests": 1}

    assert regression.status == "completed", regression
    results = await ExperimentRepo(app_pool).results(regression.experiment_id)
    assert [r.task_id for r in results] == REGRESSION_TASKS[:1]
    assert results[0].tokens > 0


async def test_an_out_of_date_schema_is_one_clear_error_for_the_app_role(
    granted_deployment: Deployment, app_pool: Pool, temporal_client: Client, tmp_path: Path
) -> None:
    dep = granted_deployment
    async with await connect(dep.admin_url) as admin:
        await admin.execute(_FORGE_OLD_DIGEST)

    with pytest.raises(SchemaOutOfDateError, match="stratlab setup"):
        await prepare_database(app_pool)
    assert await one_row(dep.admin_url, _SCHEMA_DIGEST) == {"digest": "old"}

    status = await stratlab(dep.app_url, temporal_client, tmp_path, "status")
    assert_one_line_error(status, "stratlab setup", dep.role)
    worker = await stratlab(dep.app_url, temporal_client, tmp_path, "worker", "orchestrator")
    assert_one_line_error(worker, "stratlab setup")

    async with await connect(dep.admin_url) as admin:
        await prepare_database(admin)
    assert await one_row(dep.admin_url, _SCHEMA_DIGEST) == {"digest": schema_digest()}
    await prepare_database(app_pool)


async def test_setup_run_as_the_app_role_is_one_clear_error(
    granted_deployment: Deployment,
    temporal_client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wrong DATABASE_URL for setup (the app role's) says so; it does not tell the
    user to run setup, and prints no traceback."""
    dep = granted_deployment
    monkeypatch.setenv("STRATLAB_APP_DB_PASSWORD", APP_PASSWORD)  # the subprocess's env
    grant = await stratlab(
        dep.app_url, temporal_client, tmp_path, *SETUP_ONLY_DATABASE, "--app-role", "someone"
    )
    assert_one_line_error(grant, "may not create or grant role", "admin user's DATABASE_URL")
    async with await connect(dep.admin_url) as admin:
        await admin.execute(_FORGE_OLD_DIGEST)
    migrate = await stratlab(dep.app_url, temporal_client, tmp_path, *SETUP_ONLY_DATABASE)
    assert_one_line_error(migrate, "setup must connect as the owner", dep.role)
    assert "run `stratlab setup`" not in migrate.stderr


async def test_setup_refuses_a_superuser_or_itself_as_the_app_role(
    deployment: Deployment, temporal_client: Client, tmp_path: Path
) -> None:
    dep = deployment
    admin_user = (await one_row(dep.admin_url, "SELECT current_user AS name"))["name"]
    assert isinstance(admin_user, str)
    itself = await stratlab(
        dep.admin_url, temporal_client, tmp_path, *SETUP_ONLY_DATABASE, "--app-role", admin_user
    )
    assert_one_line_error(itself, repr(admin_user))

    async with await connect(dep.admin_url) as admin:
        with pytest.raises(RoleSetupError, match="STRATLAB_APP_DB_PASSWORD"):
            await ensure_app_role(admin, dep.role, None)  # missing, and no password to make it
        # The fixture's role, made a superuser here: setup must refuse it and leave it as is.
        await admin.execute(
            sql.SQL("CREATE ROLE {} SUPERUSER NOLOGIN").format(sql.Identifier(dep.role))
        )
        with pytest.raises(RoleSetupError, match="superuser"):
            await ensure_app_role(admin, dep.role, APP_PASSWORD)
    superuser = await stratlab(
        dep.admin_url, temporal_client, tmp_path, *SETUP_ONLY_DATABASE, "--app-role", dep.role
    )
    assert_one_line_error(superuser, "superuser", dep.role)
    attributes = await one_row(dep.admin_url, _ROLE_ATTRIBUTES, role=dep.role)
    assert attributes["rolsuper"] is True and attributes["rolcanlogin"] is False


async def test_setup_creates_the_schedules_a_deployment_runs_on(
    deployment: Deployment, temporal_client: Client, tmp_path: Path
) -> None:
    """The compose one-shot's command: the research trigger and the nightly generation,
    created once and left alone by every later `up`."""
    args = ("setup", "--nightly-hour=3", "--nightly-role=designer", "--json")
    research = temporal_client.get_schedule_handle(RESEARCH_SCHEDULE_ID)
    nightly = temporal_client.get_schedule_handle(f"{NIGHTLY_SCHEDULE_ID}-designer")
    try:
        first = await stratlab(deployment.admin_url, temporal_client, tmp_path, *args)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["temporal"]["schedules"] == {
            RESEARCH_SCHEDULE_ID: "created",
            f"{NIGHTLY_SCHEDULE_ID}-designer": "created",
        }
        again = await stratlab(deployment.admin_url, temporal_client, tmp_path, *args)
        assert again.returncode == 0, again.stderr
        assert set(json.loads(again.stdout)["temporal"]["schedules"].values()) == {"exists"}

        described = await nightly.describe()
        (calendar,) = described.schedule.spec.calendars
        assert [r.start for r in calendar.hour] == [3]
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        trigger = await research.describe()
        assert trigger.schedule.spec.intervals[0].every == RESEARCH_SCHEDULE_INTERVAL
        assert isinstance(trigger.schedule.action, ScheduleActionStartWorkflow)
        assert trigger.schedule.action.task_queue.endswith("stratlab-orchestrator")
    finally:
        for handle in (research, nightly):
            with contextlib.suppress(RPCError):
                await handle.delete()
