"""``stratlab prompts`` / ``generations`` / ``pareto`` as a user runs them: a real process
against the test's own database, filled through the repositories. User errors are one
line on stderr and exit code 1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stratlab.models.optimization import (
    BenchmarkSuite,
    BenchmarkTask,
    ExperimentRecord,
    Fitness,
    GenerationRecord,
    Individual,
    OffspringRecord,
    TaskResult,
)
from stratlab.store.db import Pool
from stratlab.store.optimization import BenchmarkRepo, ExperimentRepo, GenerationRepo
from stratlab.store.prompts import PromptRepo

ROOT = Path(__file__).resolve().parents[2]

# UUID-shaped ids, as workflows make them; P1 and P2 share their first 8 characters.
P0 = "11111111-0000-4000-8000-000000000000"
P1 = "22222222-0000-4000-8000-000000000001"
P2 = "22222222-0000-4000-8000-000000000002"
P3 = "33333333-0000-4000-8000-000000000003"

# Scores (what NSGA-II climbs) order the prompts as their success rates do.
FITNESS = {
    P0: Fitness(score=0.5, success_rate=0.5, mean_tokens=1000, mean_latency_ms=800, tasks=2,
                passed=1, version=1),
    P1: Fitness(score=0.75, success_rate=0.75, mean_tokens=1200, mean_latency_ms=900, tasks=2,
                passed=1, version=1),
    P2: Fitness(score=0.5, success_rate=0.5, mean_tokens=700, mean_latency_ms=500, tasks=2,
                passed=1, version=1),
    P3: Fitness(score=0.25, success_rate=0.25, mean_tokens=1500, mean_latency_ms=1200, tasks=2,
                passed=0, version=1),
}  # fmt: skip


def run_cli(
    database_url: str, home: Path, *args: str, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "STRATLAB_HOME": str(home),
           "COLUMNS": str(columns)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "stratlab.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Any:
    async def call(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
        home = tmp_path / "home"
        return await asyncio.to_thread(run_cli, database_url, home, *args, columns=columns)

    return call


async def cli_json(cli: Any, *args: str) -> Any:
    done = await cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


async def seed_registry(pool: Pool) -> None:
    """Four designer prompts (P3 bred from P1 and P2, both mutations of P0), each with a
    completed experiment on two benchmark tasks."""
    prompts = PromptRepo(pool)
    await prompts.insert(
        prompt_id=P0,
        role="designer",
        system="You design.",
        content="Design for {{ symbol }}.",
        tag="prod",
        actor="seed",
    )
    await prompts.insert(
        prompt_id=P1,
        role="designer",
        system="You design.",
        content="Design for {{ symbol }}.\nCheck the drawdown first.",
        parent_ids=[P0],
        generation=1,
        tag="candidate",
        actor="optimizer",
        metadata={"operator": "mutate"},
    )
    await prompts.insert(
        prompt_id=P2,
        role="designer",
        system="You design briefly.",
        content="Design for {{ symbol }}.",
        parent_ids=[P0],
        generation=1,
        tag="experimental",
        actor="optimizer",
    )
    await prompts.insert(
        prompt_id=P3,
        role="designer",
        system="You design briefly.",
        content="Design for {{ symbol }}.\nCheck the drawdown first.",
        parent_ids=[P1, P2],
        generation=1,
        tag="draft",
        actor="optimizer",
    )
    tasks = [
        BenchmarkTask(task_id=t, symbol="sp500", start=date(2007, 1, 1), end=date(2009, 12, 31),
                      regime="crash", objective="risk-adjusted")
        for t in ("t1", "t2")
    ]  # fmt: skip
    await BenchmarkRepo(pool).sync_suite(BenchmarkSuite(version=1, tasks=tasks))
    experiments = ExperimentRepo(pool)
    for n, (prompt_id, fitness) in enumerate(FITNESS.items()):
        eid = f"exp-{n}"
        await experiments.start(ExperimentRecord(
            experiment_id=eid, prompt_id=prompt_id, generation=0, task_ids=["t1", "t2"],
            task_set_hash="h", rollouts=1))  # fmt: skip
        for t in ("t1", "t2"):
            await experiments.record_result(TaskResult(
                experiment_id=eid, task_id=t, prompt_id=prompt_id, passed=t == "t1",
                tokens=int(fitness.mean_tokens), latency_ms=fitness.mean_latency_ms))  # fmt: skip
        await experiments.finish(eid, status="completed", fitness=fitness)


def generation_zero() -> GenerationRecord:
    """P0 (prod), P1 and P2 survived; P3 was an accepted offspring that did not."""
    population = [
        Individual(prompt_id=P0, fitness=FITNESS[P0], origin="prod", experiment_id="exp-0"),
        Individual(prompt_id=P1, fitness=FITNESS[P1], origin="offspring", operator="mutate",
                   parent_ids=[P0], experiment_id="exp-1"),
        Individual(prompt_id=P2, fitness=FITNESS[P2], origin="offspring", operator="mutate",
                   parent_ids=[P0], experiment_id="exp-2"),
    ]  # fmt: skip
    offspring = [
        OffspringRecord(prompt_id=P3, operator="crossover", parent_ids=[P1, P2]),
        OffspringRecord(operator="mutate", parent_ids=[P0], accepted=False, reason="unsafe"),
    ]
    return GenerationRecord(
        generation=0, seed=1234, task_ids=["t1", "t2"], population=population,
        offspring=offspring, front=[P1, P2], hypervolume=0.31, archive_hypervolume=0.35,
        best_success_rate=0.75, prod_prompt_id=P0, prod_fitness=FITNESS[P0], evaluations=4,
        cost_usd=0.08, candidates=[P1],
    )  # fmt: skip


async def test_prompt_commands(db_pool: Pool, cli: Any) -> None:
    await seed_registry(db_pool)

    listed = await cli_json(cli, "prompts", "list", "--role", "designer")
    by_id = {p["id"]: p for p in listed}
    assert {P0, P1, P2, P3} <= set(by_id)
    assert by_id[P1]["fitness"]["success_rate"] == 0.75 and by_id[P1]["tag"] == "candidate"
    assert by_id[P1]["experiment_id"] == "exp-1"
    assert [p["id"] for p in await cli_json(cli, "prompts", "list", "--tag", "candidate")] == [P1]
    table = await cli("prompts", "list", "--role", "designer")
    assert table.returncode == 0 and P1[:8] in table.stdout and "75%" in table.stdout

    shown = await cli_json(cli, "prompts", "show", P3[:8])  # a unique prefix
    assert shown["prompt"]["id"] == P3 and shown["prompt"]["parent_ids"] == [P1, P2]
    assert [e["tag"] for e in shown["tags"]] == ["draft"]
    assert [e["experiment_id"] for e in shown["experiments"]] == ["exp-3"]
    detail = await cli_json(cli, "prompts", "show", P1)
    assert detail["metadata"] == {"operator": "mutate"}
    text = await cli("prompts", "show", P1)
    assert text.returncode == 0, text.stderr
    assert "Check the drawdown first." in text.stdout and "candidate" in text.stdout

    diff = await cli_json(cli, "prompts", "diff", P0, P1)
    assert "+Check the drawdown first." in diff["content"]
    assert diff["system"] == []  # same system text
    coloured = await cli("prompts", "diff", P0, P3)
    assert "-You design." in coloured.stdout and "+You design briefly." in coloured.stdout

    tree = await cli_json(cli, "prompts", "lineage", P3)
    assert [a["id"] for a in tree["ancestors"]] == [P1, P2, P0]
    assert tree["ancestors"][2]["tag"] == "prod"
    assert tree["ancestors"][0]["fitness"]["mean_tokens"] == 1200
    drawn = await cli("prompts", "lineage", P3)
    assert drawn.returncode == 0 and "(shown above)" in drawn.stdout  # P0, reached twice


async def test_prompt_errors_are_one_line(db_pool: Pool, cli: Any) -> None:
    await seed_registry(db_pool)
    # Longer than a narrow terminal, and still one line.
    narrow = await cli("prompts", "show", "222222", columns=60)
    assert_one_line_error(narrow, "ambiguous", P1, P2)
    assert_one_line_error(await cli("prompts", "show", "ffffffff-0000"), "ffffffff-0000")
    assert_one_line_error(await cli("prompts", "lineage", "abc"), "6+ characters")
    assert_one_line_error(await cli("prompts", "diff", P0, "nope-nope"), "nope-nope")
    assert_one_line_error(await cli("prompts", "list", "--role", "wizard"), "wizard")
    assert_one_line_error(await cli("prompts", "list", "--tag", "gold"), "gold")
    assert_one_line_error(await cli("generations", "--limit", "0"))


async def test_generations_and_pareto(db_pool: Pool, cli: Any, tmp_path: Path) -> None:
    assert_one_line_error(
        await cli("pareto"), "no generations recorded for role designer yet: run stratlab optimize"
    )
    assert await cli_json(cli, "generations") == []
    await seed_registry(db_pool)
    await GenerationRepo(db_pool).record(generation_zero())

    [gen] = await cli_json(cli, "generations", "--role", "designer")
    assert (gen["generation"], gen["seed"], gen["front"]) == (0, 1234, [P1, P2])
    listed = await cli("generations")
    assert listed.returncode == 0 and "0.3100" in listed.stdout and P1[:8] in listed.stdout

    front = await cli_json(cli, "pareto")
    rows = [(p["prompt_id"], p["rank"], p["prod"], p["candidate"]) for p in front["individuals"]]
    # P1 and P2 trade score for tokens (front 0); P2 dominates P0; P0 dominates P3,
    # whose fitness comes from its experiment since the record carries none for it.
    assert rows == [(P1, 0, False, True), (P2, 0, False, False), (P0, 1, True, False),
                    (P3, 2, False, False)]  # fmt: skip
    assert front["individuals"][3]["fitness"]["success_rate"] == 0.25
    assert front["individuals"][3]["experiment_id"] == "exp-3"

    plot = tmp_path / "front.png"
    drawn = await cli("pareto", "--generation", "0", "--plot", str(plot))
    assert drawn.returncode == 0, drawn.stderr
    assert f"plot written to {plot}" in drawn.stdout.replace("\n", "")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000

    assert_one_line_error(await cli("pareto", "--generation", "5"), "no generation 5")
    assert_one_line_error(await cli("pareto", "--role", "assessor"), "role assessor yet")
    assert_one_line_error(await cli("pareto", "--role", "wizard"), "wizard")
