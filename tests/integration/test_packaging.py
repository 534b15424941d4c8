"""A wheel, not only an editable checkout, carries what the lab reads at run time: the
schema, the prompt templates and the benchmark suite; installed from the wheel,
``stratlab db init`` builds an empty database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.postgres import create_database, database_url_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("designer", "assessor", "mutator", "composer", "sanity")
NOT_PACKAGED = (".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "perf", "docs")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree, and
    # a stale build/ in the checkout would put deleted modules into later wheels.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_PACKAGED))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("stratlab-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The wheel installed into a directory of its own (``pip install --target``)."""
    target = wheel.parent / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    name = f"wheel_{uuid.uuid4().hex[:10]}"
    create_database(postgres_url, name)
    try:
        yield database_url_for(postgres_url, name)
    finally:
        drop_database(postgres_url, name)


def test_the_wheel_carries_the_schema_templates_and_suite(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "stratlab/store/schema.sql" in names
    assert "stratlab/evolution/suite.toml" in names
    for role in ROLES:
        assert f"stratlab/llm/templates/{role}.j2" in names
        assert f"stratlab/llm/templates/{role}.system.j2" in names


def test_db_init_from_the_installed_wheel_builds_an_empty_database(
    installed: Path, empty_database: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "DATABASE_URL": empty_database,
        "STRATLAB_HOME": str(tmp_path),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import stratlab.store.db as db; print(db.SCHEMA_PATH)"],
        cwd=tmp_path,  # not the checkout: nothing may come from the source tree
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed)), where.stdout
    done = subprocess.run(
        [sys.executable, "-m", "stratlab.cli.main", "db", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(empty_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
        prompts = conn.execute("SELECT count(*) FROM prompts").fetchone()
    assert {"agent_sessions", "prompts", "trials", "agent_budget"} <= tables
    assert prompts is not None and prompts[0] >= len(ROLES)
