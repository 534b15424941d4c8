"""Prompt evolution's repositories: immutable benchmark tasks, idempotent experiments and
results, generations written once, and prompt lineage."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from stratlab.models.optimization import (
    BenchmarkSuite,
    BenchmarkTask,
    Criterion,
    ExperimentRecord,
    Fitness,
    GenerationRecord,
    Individual,
    OffspringRecord,
    TaskResult,
)
from stratlab.models.research import BacktestMetrics
from stratlab.store.benchmarks import (
    BenchmarkConflictError,
    BenchmarkRepo,
    benchmark_definition_hash,
)
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def task(task_id: str, *, sharpe: float = 0.5, version: int = 1) -> BenchmarkTask:
    return BenchmarkTask(
        task_id=task_id,
        suite_version=version,
        symbol="sp500",
        kind="rules",
        start=date(2007, 1, 1),
        end=date(2009, 12, 31),
        regime="crash",
        objective="risk-adjusted",
        description="survive 2008",
        criteria=[Criterion(metric="sharpe", op=">=", value=sharpe)],
    )


async def count(pool: Pool, table: str) -> int:
    query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row["n"])


async def seed(pool: Pool, *task_ids: str) -> None:
    """Prompts p1, p2 and the given benchmark tasks, for rows that reference them."""
    prompts = PromptRepo(pool)
    await prompts.insert(prompt_id="p1", role="designer", content="Design {{ symbol }}")
    await prompts.insert(prompt_id="p2", role="designer", content="Design well {{ symbol }}")
    await BenchmarkRepo(pool).sync_suite(
        BenchmarkSuite(version=1, tasks=[task(t) for t in task_ids])
    )


def experiment(experiment_id: str, prompt_id: str = "p1", **kw: object) -> ExperimentRecord:
    fields: dict[str, object] = {
        "task_ids": ["t1", "t2"], "task_set_hash": "h12", "rollouts": 1, "generation": 0,
        "workflow_id": "wf-1", **kw,
    }  # fmt: skip
    return ExperimentRecord(experiment_id=experiment_id, prompt_id=prompt_id, **fields)  # type: ignore[arg-type]


def result(experiment_id: str, task_id: str, **kw: object) -> TaskResult:
    fields: dict[str, object] = {"passed": True, "tokens": 1200, "latency_ms": 850.5, **kw}
    return TaskResult(experiment_id=experiment_id, task_id=task_id, prompt_id="p1", **fields)  # type: ignore[arg-type]


# --- benchmarks ------------------------------------------------------------------------------


async def test_sync_suite_inserts_once_and_reads_back(db_pool: Pool) -> None:
    repo = BenchmarkRepo(db_pool)
    suite = BenchmarkSuite(version=1, tasks=[task("t2"), task("t1")])
    assert await repo.sync_suite(suite) == 2
    assert await repo.sync_suite(suite) == 0  # re-loading the same definitions is a no-op
    grown = BenchmarkSuite(version=2, tasks=[task("t1"), task("t3", version=2)])
    assert await repo.sync_suite(grown) == 1
    assert await count(db_pool, "benchmarks") == 3

    listed = await repo.list()
    assert [t.task_id for t in listed] == ["t1", "t2", "t3"]
    assert listed[0] == task("t1")  # dates, criteria and kind survive the round trip
    assert [t.task_id for t in await repo.list(suite_version=2)] == ["t3"]
    assert [t.task_id for t in await repo.get_many(["t3", "t1"])] == ["t3", "t1"]


async def test_changed_definition_under_an_existing_id_is_refused(db_pool: Pool) -> None:
    repo = BenchmarkRepo(db_pool)
    await repo.sync_suite(BenchmarkSuite(version=1, tasks=[task("t1")]))
    changed = BenchmarkSuite(version=1, tasks=[task("new"), task("t1", sharpe=0.9)])
    with pytest.raises(BenchmarkConflictError, match="'t1'") as err:
        await repo.sync_suite(changed)
    assert err.value.task_ids == ["t1"]
    # All or nothing: the new task of the refused suite was not inserted either.
    assert [t.task_id for t in await repo.list()] == ["t1"]
    assert (await repo.get_many(["t1"]))[0].criteria[0].value == 0.5
    # The database refuses the change too, whoever tries it.
    async with db_pool.connection() as conn:
        with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
            await conn.execute("UPDATE benchmarks SET regime = 'boom'")


async def test_a_noise_task_round_trips_and_expect_leaves_stored_hashes_alone(
    db_pool: Pool,
) -> None:
    repo = BenchmarkRepo(db_pool)
    noise = task("n1").model_copy(update={"symbol": "noise-a", "regime": "noise"})
    noise = BenchmarkTask.model_validate(noise.model_dump(exclude={"expect"}))
    assert noise.expect == "no-discovery"
    await repo.sync_suite(BenchmarkSuite(version=1, tasks=[task("t1"), noise]))
    (stored,) = await repo.get_many(["n1"])
    assert stored == noise and stored.expect == "no-discovery"
    # expect follows from the regime and stays out of the identity: a task stored before
    # the field existed is the same definition (no conflict, nothing new).
    assert benchmark_definition_hash(task("t1")) == _hash_without_expect(task("t1"))
    assert await repo.sync_suite(BenchmarkSuite(version=1, tasks=[task("t1"), noise])) == 0


def _hash_without_expect(t: BenchmarkTask) -> str:
    """The definition hash as it was computed before ``expect`` existed."""
    body = {k: v for k, v in t.model_dump(mode="json").items() if k != "expect"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def test_get_many_names_unknown_ids(db_pool: Pool) -> None:
    repo = BenchmarkRepo(db_pool)
    await repo.sync_suite(BenchmarkSuite(version=1, tasks=[task("t1")]))
    with pytest.raises(LookupError, match="ghost, gone"):
        await repo.get_many(["t1", "ghost", "gone", "ghost"])
    assert await repo.get_many([]) == []


# --- experiments -------------------------------------------------------------------------------


async def test_start_is_idempotent_and_finish_sets_the_outcome(db_pool: Pool) -> None:
    await seed(db_pool, "t1", "t2")
    repo = ExperimentRepo(db_pool)
    started = await repo.start(experiment("e1"))
    assert started.status == "running" and started.started_at is not None
    assert started.task_ids == ["t1", "t2"] and started.fitness is None
    assert await repo.start(experiment("e1", rollouts=3)) == started  # the first row wins
    assert await count(db_pool, "experiments") == 1

    fitness = Fitness(success_rate=0.5, mean_tokens=1200, mean_latency_ms=850, tasks=2, passed=1)
    done = await repo.finish("e1", status="completed", fitness=fitness)
    assert (done.status, done.fitness, done.finished_at is not None) == ("completed", fitness, True)
    again = await repo.finish("e1", status="completed", fitness=fitness)
    assert again.finished_at == done.finished_at  # a retried finish keeps the first time
    assert await repo.get("e1") == again
    assert await repo.get("ghost") is None
    # Restarting a finished experiment does not reset it.
    assert (await repo.start(experiment("e1"))).status == "completed"


async def test_finish_refuses_unknown_ids_and_non_final_statuses(db_pool: Pool) -> None:
    await seed(db_pool)
    repo = ExperimentRepo(db_pool)
    with pytest.raises(LookupError, match="ghost"):
        await repo.finish("ghost", status="failed", fitness=None)
    await repo.start(experiment("e1"))
    with pytest.raises(ValueError, match="not final"):
        await repo.finish("e1", status="running", fitness=None)
    stopped = await repo.finish("e1", status="stopped_budget", fitness=None, stopped_reason="cap")
    assert (stopped.status, stopped.stopped_reason) == ("stopped_budget", "cap")


async def test_an_experiment_needs_a_registered_prompt(db_pool: Pool) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await ExperimentRepo(db_pool).start(experiment("e1", prompt_id="unregistered"))


async def test_record_result_first_write_wins(db_pool: Pool) -> None:
    await seed(db_pool, "t1", "t2")
    repo = ExperimentRepo(db_pool)
    await repo.start(experiment("e1", rollouts=2))
    metrics = BacktestMetrics(sharpe=0.8, total_return=0.12, trades=14, bars=250)
    first = await repo.record_result(
        result("e1", "t1", outcome="success", metrics=metrics, cost_usd=0.03, session_id="s1",
               score=0.4125)
    )  # fmt: skip
    assert first.created_at is not None and first.metrics == metrics and first.cost_usd == 0.03
    assert first.score == 0.4125
    retried = await repo.record_result(result("e1", "t1", passed=False, reasons=["late"]))
    assert retried == first
    failed = await repo.record_result(
        result("e1", "t1", rollout=2, passed=False, outcome="failed_backtest_gate",
               reasons=["sharpe 0.1 < 0.5"])
    )  # fmt: skip
    await repo.record_result(result("e1", "t2"))
    assert await count(db_pool, "experiment_results") == 3

    stored = await repo.results("e1")
    assert [(r.task_id, r.rollout) for r in stored] == [("t1", 1), ("t1", 2), ("t2", 1)]
    assert stored[1] == failed and failed.reasons == ["sharpe 0.1 < 0.5"]
    assert (stored[0].score, stored[1].score) == (0.4125, 0.0)  # unset: the column's default
    assert await repo.results("ghost") == []


async def test_a_result_needs_a_known_task(db_pool: Pool) -> None:
    await seed(db_pool)
    repo = ExperimentRepo(db_pool)
    await repo.start(experiment("e1"))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await repo.record_result(result("e1", "no-such-task"))


async def test_find_completed_reuses_only_a_matching_completed_run(db_pool: Pool) -> None:
    await seed(db_pool, "t1", "t2")
    repo = ExperimentRepo(db_pool)
    fit = Fitness(success_rate=1.0, tasks=2, passed=2)
    for eid, status in (("old", "completed"), ("new", "completed"), ("broke", "failed")):
        await repo.start(experiment(eid))
        await repo.finish(eid, status=status, fitness=fit)
    await repo.start(experiment("running"))
    await repo.start(experiment("three", rollouts=3))
    await repo.finish("three", status="completed", fitness=fit)

    found = await repo.find_completed("p1", "h12", 1)
    assert found is not None and found.experiment_id == "new"
    assert (await repo.find_completed("p1", "h12", 3)).experiment_id == "three"  # type: ignore[union-attr]
    assert await repo.find_completed("p1", "other-set", 1) is None
    assert await repo.find_completed("p2", "h12", 1) is None


async def test_latest_results_take_the_newest_completed_result_per_task(db_pool: Pool) -> None:
    await seed(db_pool, "t1", "t2", "t3")
    repo = ExperimentRepo(db_pool)
    for eid in ("e-old", "e-new", "e-failed"):
        await repo.start(experiment(eid))
    await repo.record_result(result("e-old", "t1", passed=False, created_at=T0))
    await repo.record_result(result("e-old", "t2", passed=False, created_at=T0))
    await repo.record_result(result("e-new", "t1", passed=True, created_at=T0 + timedelta(days=1)))
    # Newer still, but from an experiment that failed: it says nothing about the prompt.
    later = T0 + timedelta(days=2)
    await repo.record_result(result("e-failed", "t1", passed=False, created_at=later))
    await repo.record_result(result("e-failed", "t3", passed=False, created_at=later))
    for eid in ("e-old", "e-new"):
        await repo.finish(eid, status="completed", fitness=Fitness())
    await repo.finish("e-failed", status="failed", fitness=None)

    latest = await repo.latest_results("p1")
    assert {t: (r.experiment_id, r.passed) for t, r in latest.items()} == {
        "t1": ("e-new", True),
        "t2": ("e-old", False),
    }
    assert list(await repo.latest_results("p1", ["t2", "t3"])) == ["t2"]
    assert await repo.latest_results("p1", []) == {}
    assert await repo.latest_results("p2") == {}


async def test_by_prompt_and_latest_fitness(db_pool: Pool) -> None:
    await seed(db_pool)
    repo = ExperimentRepo(db_pool)
    await repo.start(experiment("a", started_at=T0))
    await repo.start(experiment("b", started_at=T0 + timedelta(hours=1)))
    await repo.start(experiment("c", started_at=T0 + timedelta(hours=2)))
    await repo.start(experiment("x", prompt_id="p2"))
    await repo.finish("a", status="completed", fitness=Fitness(success_rate=0.25))
    await repo.finish("b", status="completed", fitness=Fitness(success_rate=0.75))
    await repo.finish("c", status="stopped_budget", fitness=None)

    assert [e.experiment_id for e in await repo.by_prompt("p1")] == ["c", "b", "a"]
    best = await repo.latest_fitness(["p1", "p2", "ghost"])
    assert list(best) == ["p1"]  # p2's only experiment is still running
    assert best["p1"].experiment_id == "b" and best["p1"].fitness == Fitness(success_rate=0.75)
    assert await repo.latest_fitness([]) == {}


# --- generations ---------------------------------------------------------------------------


def generation(number: int, *, role: str = "designer", **kw: object) -> GenerationRecord:
    fit = Fitness(score=0.31, success_rate=0.5, mean_tokens=900, mean_latency_ms=400, tasks=4,
                  passed=2, version=1)  # fmt: skip
    fields: dict[str, object] = {
        "campaign_id": "camp-1", "seed": 2**40 + number, "task_ids": ["t1", "t2"],
        "population": [Individual(prompt_id="p1", fitness=fit, origin="prod", rank=0)],
        "offspring": [OffspringRecord(prompt_id="p2", operator="mutate", parent_ids=["p1"])],
        "front": ["p1"], "hypervolume": 0.42, "archive_hypervolume": 0.5,
        "best_success_rate": 0.5, "best_score": 0.31, "prod_prompt_id": "p1",
        "prod_fitness": fit,
        "evaluations": 3, "cost_usd": 0.12, "candidates": ["p2"],
        "logbook": [{"gen": number, "hv": 0.42}], **kw,
    }  # fmt: skip
    return GenerationRecord(role=role, generation=number, **fields)  # type: ignore[arg-type]


async def test_generations_are_written_once_and_read_newest_first(db_pool: Pool) -> None:
    repo = GenerationRepo(db_pool)
    assert await repo.next_generation("designer") == 0
    assert await repo.latest("designer") is None

    first = await repo.record(generation(0))
    assert first.finished_at is not None  # filled in by the database
    assert first.model_dump(exclude={"finished_at"}) == generation(0).model_dump(
        exclude={"finished_at"}
    )
    retried = await repo.record(generation(0, hypervolume=0.99, stopped_reason="late"))
    assert retried == first
    assert await count(db_pool, "generations") == 1

    await repo.record(generation(1, stopped_reason="budget"))
    await repo.record(generation(0, role="assessor"))
    assert await repo.next_generation("designer") == 2
    assert await repo.next_generation("assessor") == 1

    latest = await repo.latest("designer")
    assert latest is not None and (latest.generation, latest.stopped_reason) == (1, "budget")
    assert await repo.get("designer", 0) == first
    assert await repo.get("designer", 7) is None
    assert [g.generation for g in await repo.list(role="designer")] == [1, 0]
    assert [(g.role, g.generation) for g in await repo.list()] == [
        ("assessor", 0), ("designer", 1), ("designer", 0),
    ]  # fmt: skip
    assert len(await repo.list(limit=1)) == 1


async def test_generation_times_round_trip(db_pool: Pool) -> None:
    started, finished = T0, T0 + timedelta(minutes=7)
    stored = await GenerationRepo(db_pool).record(
        generation(0, started_at=started, finished_at=finished)
    )
    assert (stored.started_at, stored.finished_at) == (started, finished)


# --- prompt lineage ---------------------------------------------------------------------------


async def test_lineage_walks_ancestors_breadth_first_without_duplicates(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    # root ─┬─ a ─┐
    #       └─ b ─┴─ c ─ d        (c has parents a and b; d is c's child)
    await repo.insert(prompt_id="root", role="designer", content="r")
    await repo.insert(prompt_id="a", role="designer", content="a", parent_ids=["root"])
    await repo.insert(prompt_id="b", role="designer", content="b", parent_ids=["root", "lost"])
    await repo.insert(prompt_id="c", role="designer", content="c", parent_ids=["b", "a"])
    await repo.insert(prompt_id="d", role="designer", content="d", parent_ids=["c"])

    assert [p.id for p in await repo.lineage("d")] == ["c", "b", "a", "root"]
    assert [p.id for p in await repo.lineage("c")] == ["b", "a", "root"]
    assert await repo.lineage("root") == []
    assert await repo.lineage("ghost") == []


async def test_prompt_prefix_lookup_and_metadata(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    await repo.insert(prompt_id="abc_123", role="designer", content="x", metadata={"op": "seed"})
    await repo.insert(prompt_id="abcx123", role="designer", content="y")
    assert [p.id for p in await repo.by_prefix("abc")] == ["abc_123", "abcx123"]
    assert [p.id for p in await repo.by_prefix("abc_")] == ["abc_123"]  # "_" is literal
    assert await repo.by_prefix("zzz") == []
    assert await repo.metadata("abc_123") == {"op": "seed"}
    assert await repo.metadata("abcx123") == {}
    assert await repo.metadata("ghost") is None
