"""Prompt evolution's tables: benchmark tasks, regression experiments and generations.

Every write is idempotent, because each is made by a Temporal activity that may be
retried: benchmark tasks and task results keep their first row, experiments are created
once and then finished (the one update here: prompts are immutable, experiments are not),
and a generation is written once when it ends.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from stratlab.models.optimization import (
    BenchmarkSuite,
    BenchmarkTask,
    ExperimentRecord,
    Fitness,
    GenerationRecord,
    TaskResult,
)
from stratlab.models.research import TrainingReport
from stratlab.store._util import fetch_all, fetch_one, jsonb, to_decimal
from stratlab.store.db import ConnectionSource

__all__ = [
    "BenchmarkConflictError",
    "BenchmarkRepo",
    "ExperimentRepo",
    "GenerationRepo",
    "benchmark_definition_hash",
]

FINAL_STATUSES = ("completed", "stopped_budget", "raced_out", "failed")

# --- benchmarks ----------------------------------------------------------------------------

_INSERT_TASK = """
INSERT INTO benchmarks (task_id, suite_version, symbol, kind, start_date, end_date, regime,
                        objective, description, criteria, definition_hash)
VALUES (%(task_id)s, %(suite_version)s, %(symbol)s, %(kind)s, %(start)s, %(end)s, %(regime)s,
        %(objective)s, %(description)s, %(criteria)s, %(definition_hash)s)
ON CONFLICT (task_id) DO NOTHING
RETURNING task_id
"""
_TASK_HASH = "SELECT definition_hash FROM benchmarks WHERE task_id = %(task_id)s"
# BenchmarkTask calls the dates start and end ("end" is a keyword, hence the quotes).
_SELECT_TASKS = """
SELECT task_id, suite_version, symbol, kind, start_date AS start, end_date AS "end", regime,
       objective, description, criteria
  FROM benchmarks
"""
_LIST_TASKS = (
    _SELECT_TASKS
    + " WHERE (%(suite_version)s::integer IS NULL OR suite_version = %(suite_version)s)"
    + " ORDER BY task_id"
)
_GET_TASKS = _SELECT_TASKS + " WHERE task_id = ANY (%(task_ids)s)"

# --- experiments ---------------------------------------------------------------------------

_START = """
INSERT INTO experiments (experiment_id, prompt_id, role, generation, task_ids, task_set_hash,
                         rollouts, status, fitness, stopped_reason, workflow_id, started_at,
                         finished_at)
VALUES (%(experiment_id)s, %(prompt_id)s, %(role)s, %(generation)s, %(task_ids)s,
        %(task_set_hash)s, %(rollouts)s, %(status)s, %(fitness)s, %(stopped_reason)s,
        %(workflow_id)s, COALESCE(%(started_at)s, now()), %(finished_at)s)
ON CONFLICT (experiment_id) DO NOTHING
"""
_GET_EXPERIMENT = "SELECT * FROM experiments WHERE experiment_id = %(experiment_id)s"
# A retried finish with the same status keeps the first finish time.
_FINISH = """
UPDATE experiments
   SET status = %(status)s, fitness = %(fitness)s, stopped_reason = %(stopped_reason)s,
       finished_at = CASE WHEN status = %(status)s AND finished_at IS NOT NULL
                          THEN finished_at ELSE now() END
 WHERE experiment_id = %(experiment_id)s
RETURNING *
"""
_FIND_COMPLETED = """
SELECT * FROM experiments
 WHERE prompt_id = %(prompt_id)s AND task_set_hash = %(task_set_hash)s
   AND rollouts = %(rollouts)s AND status = 'completed'
 ORDER BY finished_at DESC NULLS LAST, started_at DESC, experiment_id
 LIMIT 1
"""
_BY_PROMPT = """
SELECT * FROM experiments WHERE prompt_id = %(prompt_id)s
 ORDER BY started_at DESC, experiment_id
"""
_LATEST_FITNESS = """
SELECT DISTINCT ON (prompt_id) * FROM experiments
 WHERE prompt_id = ANY (%(prompt_ids)s) AND status = 'completed'
 ORDER BY prompt_id, finished_at DESC NULLS LAST, started_at DESC, experiment_id
"""

_RECORD_RESULT = """
INSERT INTO experiment_results (experiment_id, task_id, rollout, prompt_id, session_id,
                                passed, score, outcome, reasons, metrics, tokens, latency_ms,
                                cost_usd, created_at)
VALUES (%(experiment_id)s, %(task_id)s, %(rollout)s, %(prompt_id)s, %(session_id)s,
        %(passed)s, %(score)s, %(outcome)s, %(reasons)s, %(metrics)s, %(tokens)s,
        %(latency_ms)s, %(cost_usd)s, COALESCE(%(created_at)s, now()))
ON CONFLICT (experiment_id, task_id, rollout) DO NOTHING
"""
_GET_RESULT = """
SELECT * FROM experiment_results
 WHERE experiment_id = %(experiment_id)s AND task_id = %(task_id)s AND rollout = %(rollout)s
"""
_RESULTS = """
SELECT * FROM experiment_results WHERE experiment_id = %(experiment_id)s
 ORDER BY task_id, rollout
"""
# Only completed experiments count: a run stopped by the budget or failed half-way says
# nothing reliable about the prompt. Ties on created_at (one transaction) prefer rollout 1.
_LATEST_RESULTS = """
SELECT DISTINCT ON (r.task_id) r.*
  FROM experiment_results r
  JOIN experiments e ON e.experiment_id = r.experiment_id
 WHERE r.prompt_id = %(prompt_id)s AND e.status = 'completed'
   AND (%(task_ids)s::text[] IS NULL OR r.task_id = ANY (%(task_ids)s))
 ORDER BY r.task_id, r.created_at DESC, r.rollout, r.experiment_id
"""

# Read only, from the research side's table: what a task's score is deflated by.
_TRAINING_REPORT = """
SELECT report FROM training_runs
 WHERE training_run_id = %(training_run_id)s AND status = 'completed'
"""

# --- generations ---------------------------------------------------------------------------

_NEXT_GENERATION = """
SELECT COALESCE(max(generation) + 1, 0) AS next FROM generations WHERE role = %(role)s
"""
_RECORD_GENERATION = """
INSERT INTO generations (role, generation, campaign_id, seed, task_ids, hypervolume,
                         archive_hypervolume, best_success_rate, evaluations, cost_usd,
                         candidates, stopped_reason, prod_prompt_id, record, started_at,
                         finished_at)
VALUES (%(role)s, %(generation)s, %(campaign_id)s, %(seed)s, %(task_ids)s, %(hypervolume)s,
        %(archive_hypervolume)s, %(best_success_rate)s, %(evaluations)s, %(cost_usd)s,
        %(candidates)s, %(stopped_reason)s, %(prod_prompt_id)s, %(record)s, %(started_at)s,
        COALESCE(%(finished_at)s, now()))
ON CONFLICT (role, generation) DO NOTHING
"""
# The times come from the columns: finished_at may have been filled in by the database.
_SELECT_GENERATIONS = """
SELECT record || jsonb_build_object('started_at', started_at, 'finished_at', finished_at)
       AS record
  FROM generations
"""
_GET_GENERATION = _SELECT_GENERATIONS + " WHERE role = %(role)s AND generation = %(generation)s"
_LATEST_GENERATION = _SELECT_GENERATIONS + " WHERE role = %(role)s ORDER BY generation DESC LIMIT 1"
_LIST_GENERATIONS = (
    _SELECT_GENERATIONS
    + """
 WHERE (%(role)s::text IS NULL OR role = %(role)s)
 ORDER BY finished_at DESC, generation DESC, role
 LIMIT %(limit)s
"""
)


class BenchmarkConflictError(ValueError):
    """A stored benchmark task has the same id as a loaded one but another definition."""

    def __init__(self, task_ids: Sequence[str]) -> None:
        self.task_ids = list(task_ids)
        super().__init__(
            f"benchmark task {', '.join(map(repr, self.task_ids))} is already stored with "
            "another definition; task ids are immutable: give a changed task a new id"
        )


def benchmark_definition_hash(task: BenchmarkTask) -> str:
    """sha256 of the task's canonical JSON (sorted keys), the identity ``sync_suite``
    compares. ``suite_version`` is part of it, like every other field but ``expect``,
    which follows from the regime (and came later: stored tasks keep their hashes)."""
    body = task.model_dump(mode="json", exclude={"expect"})
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class BenchmarkRepo:
    """The benchmark suite: tasks are inserted once and never change."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def sync_suite(self, suite: BenchmarkSuite) -> int:
        """Insert the suite's new tasks; returns how many were new. All or nothing: if a
        stored task with one of the ids differs, raises ``BenchmarkConflictError`` naming
        every such task and inserts none."""
        new, conflicts = 0, []
        async with self._pool.connection() as conn, conn.transaction():
            for task in suite.tasks:
                params = _task_params(task)
                if await (await conn.execute(_INSERT_TASK, params)).fetchone() is not None:
                    new += 1
                    continue
                stored = await (await conn.execute(_TASK_HASH, params)).fetchone()
                if stored is None or stored["definition_hash"] != params["definition_hash"]:
                    conflicts.append(task.task_id)
            if conflicts:
                raise BenchmarkConflictError(conflicts)  # rolls the inserts back
        return new

    async def list(self, *, suite_version: int | None = None) -> builtins.list[BenchmarkTask]:
        """Stored tasks ordered by id, optionally of one suite version."""
        params = {"suite_version": suite_version}
        return await fetch_all(self._pool, _LIST_TASKS, params, BenchmarkTask)

    async def get_many(self, task_ids: Sequence[str]) -> builtins.list[BenchmarkTask]:
        """The tasks in the given order. Raises ``LookupError`` listing unknown ids."""
        found = await fetch_all(self._pool, _GET_TASKS, {"task_ids": list(task_ids)}, BenchmarkTask)
        by_id = {t.task_id: t for t in found}
        unknown = [t for t in dict.fromkeys(task_ids) if t not in by_id]
        if unknown:
            raise LookupError(f"unknown benchmark task(s): {', '.join(unknown)}")
        return [by_id[t] for t in task_ids]


class ExperimentRepo:
    """Regression runs and their per-task results."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def start(self, record: ExperimentRecord) -> ExperimentRecord:
        """Create the experiment unless its id exists; returns the stored row (a retry
        gets the first one back unchanged, even if it has finished since)."""
        params = {
            **record.model_dump(exclude={"fitness"}),
            "fitness": jsonb(record.fitness),
        }
        async with self._pool.connection() as conn:
            await conn.execute(_START, params)
            row = await (await conn.execute(_GET_EXPERIMENT, params)).fetchone()
        return ExperimentRecord.model_validate(row)

    async def get(self, experiment_id: str) -> ExperimentRecord | None:
        params = {"experiment_id": experiment_id}
        return await fetch_one(self._pool, _GET_EXPERIMENT, params, ExperimentRecord)

    async def record_result(self, result: TaskResult) -> TaskResult:
        """Store one task × rollout result; the first write of a key wins and is returned."""
        params = _result_params(result)
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD_RESULT, params)
            row = await (await conn.execute(_GET_RESULT, params)).fetchone()
        return TaskResult.model_validate(row)

    async def results(self, experiment_id: str) -> builtins.list[TaskResult]:
        """The experiment's results ordered by task id and rollout."""
        params = {"experiment_id": experiment_id}
        return await fetch_all(self._pool, _RESULTS, params, TaskResult)

    async def finish(
        self,
        experiment_id: str,
        *,
        status: str,
        fitness: Fitness | None,
        stopped_reason: str | None = None,
    ) -> ExperimentRecord:
        """Set the final status, fitness and reason (finished_at is the database's now,
        kept when a retry repeats the same status). Raises ``ValueError`` for a status
        that is not final and ``LookupError`` for an unknown experiment."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status {status!r} is not final; use one of {FINAL_STATUSES}")
        params = {
            "experiment_id": experiment_id,
            "status": status,
            "fitness": jsonb(fitness),
            "stopped_reason": stopped_reason,
        }
        found = await fetch_one(self._pool, _FINISH, params, ExperimentRecord)
        if found is None:
            raise LookupError(f"no experiment {experiment_id!r} to finish")
        return found

    async def find_completed(
        self, prompt_id: str, task_set_hash: str, rollouts: int
    ) -> ExperimentRecord | None:
        """The latest completed run of this prompt on this task set, to reuse its fitness."""
        params = {"prompt_id": prompt_id, "task_set_hash": task_set_hash, "rollouts": rollouts}
        return await fetch_one(self._pool, _FIND_COMPLETED, params, ExperimentRecord)

    async def latest_results(
        self, prompt_id: str, task_ids: Sequence[str] | None = None
    ) -> dict[str, TaskResult]:
        """The newest result (by created_at) per task of this prompt, from completed
        experiments only; optionally only for ``task_ids``. Keyed by task id."""
        params = {"prompt_id": prompt_id, "task_ids": None if task_ids is None else list(task_ids)}
        found = await fetch_all(self._pool, _LATEST_RESULTS, params, TaskResult)
        return {r.task_id: r for r in found}

    async def training_report(self, training_run_id: str) -> TrainingReport | None:
        """The completed fit's report (walk-forward result, trial statistics), or None."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_TRAINING_REPORT, {"training_run_id": training_run_id})
            row = await cur.fetchone()
        if row is None or row["report"] is None:
            return None
        return TrainingReport.model_validate(row["report"])

    async def by_prompt(self, prompt_id: str) -> builtins.list[ExperimentRecord]:
        """Every experiment of the prompt, newest first."""
        params = {"prompt_id": prompt_id}
        return await fetch_all(self._pool, _BY_PROMPT, params, ExperimentRecord)

    async def latest_fitness(self, prompt_ids: Sequence[str]) -> dict[str, ExperimentRecord]:
        """The newest completed experiment of each prompt that has one, keyed by prompt id."""
        params = {"prompt_ids": list(prompt_ids)}
        found = await fetch_all(self._pool, _LATEST_FITNESS, params, ExperimentRecord)
        return {e.prompt_id: e for e in found}


class GenerationRepo:
    """One ``GenerationRecord`` per role and generation number."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def next_generation(self, role: str) -> int:
        """The number the role's next generation gets: 0 when none is recorded."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_NEXT_GENERATION, {"role": role})).fetchone()
        assert row is not None  # an aggregate always returns a row
        return int(row["next"])

    async def record(self, gen: GenerationRecord) -> GenerationRecord:
        """Store the generation unless (role, generation) exists; returns the stored
        record (a retry gets the first one back)."""
        params = {
            "role": gen.role,
            "generation": gen.generation,
            "campaign_id": gen.campaign_id,
            "seed": gen.seed,
            "task_ids": gen.task_ids,
            "hypervolume": gen.hypervolume,
            "archive_hypervolume": gen.archive_hypervolume,
            "best_success_rate": gen.best_success_rate,
            "evaluations": gen.evaluations,
            "cost_usd": to_decimal(gen.cost_usd),
            "candidates": gen.candidates,
            "stopped_reason": gen.stopped_reason,
            "prod_prompt_id": gen.prod_prompt_id,
            "record": jsonb(gen),
            "started_at": gen.started_at,
            "finished_at": gen.finished_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD_GENERATION, params)
            row = await (await conn.execute(_GET_GENERATION, params)).fetchone()
        assert row is not None  # inserted above or already there
        return GenerationRecord.model_validate(row["record"])

    async def get(self, role: str, generation: int) -> GenerationRecord | None:
        rows = await self._records(_GET_GENERATION, {"role": role, "generation": generation})
        return rows[0] if rows else None

    async def latest(self, role: str) -> GenerationRecord | None:
        """The role's highest-numbered generation."""
        rows = await self._records(_LATEST_GENERATION, {"role": role})
        return rows[0] if rows else None

    async def list(
        self, *, role: str | None = None, limit: int = 100
    ) -> builtins.list[GenerationRecord]:
        """Generations, newest first, optionally of one role."""
        return await self._records(_LIST_GENERATIONS, {"role": role, "limit": limit})

    async def _records(self, sql: str, params: dict[str, Any]) -> builtins.list[GenerationRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(sql, params)).fetchall()
        return [GenerationRecord.model_validate(r["record"]) for r in rows]


def _task_params(task: BenchmarkTask) -> dict[str, Any]:
    return {
        **task.model_dump(exclude={"criteria"}),
        "criteria": Jsonb([c.model_dump(mode="json") for c in task.criteria]),
        "definition_hash": benchmark_definition_hash(task),
    }


def _result_params(result: TaskResult) -> dict[str, Any]:
    return {
        **result.model_dump(exclude={"reasons", "metrics", "cost_usd"}),
        "reasons": Jsonb(list(result.reasons)),
        "metrics": jsonb(result.metrics),
        "cost_usd": to_decimal(result.cost_usd),
    }
