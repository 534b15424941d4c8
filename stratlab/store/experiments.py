"""Regression runs' tables: experiments and their per-task results.

Every write is idempotent, because each is made by a Temporal activity that may be
retried: task results keep their first row, and an experiment is created once and then
finished (the one update here: prompts are immutable, experiments are not).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from stratlab.models.optimization import ExperimentRecord, Fitness, TaskResult
from stratlab.models.research import TrainingReport
from stratlab.store._util import fetch_all, fetch_one, jsonb, to_decimal
from stratlab.store.db import ConnectionSource

__all__ = ["ExperimentRepo"]

FINAL_STATUSES = ("completed", "stopped_budget", "raced_out", "failed")

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


def _result_params(result: TaskResult) -> dict[str, Any]:
    return {
        **result.model_dump(exclude={"reasons", "metrics", "cost_usd"}),
        "reasons": Jsonb(list(result.reasons)),
        "metrics": jsonb(result.metrics),
        "cost_usd": to_decimal(result.cost_usd),
    }
