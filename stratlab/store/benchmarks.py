"""The benchmark suite's table: tasks are inserted once and never change.

``sync_suite`` is idempotent, because a Temporal activity may retry it: a task keeps its
first row, and a stored task whose definition differs from the loaded one is a conflict
(task ids are immutable), never an update.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from stratlab.models.optimization import BenchmarkSuite, BenchmarkTask
from stratlab.store._util import fetch_all
from stratlab.store.db import ConnectionSource

__all__ = ["BenchmarkConflictError", "BenchmarkRepo", "benchmark_definition_hash"]

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


def _task_params(task: BenchmarkTask) -> dict[str, Any]:
    return {
        **task.model_dump(exclude={"criteria"}),
        "criteria": Jsonb([c.model_dump(mode="json") for c in task.criteria]),
        "definition_hash": benchmark_definition_hash(task),
    }
