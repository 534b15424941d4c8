"""Kill the orchestrator worker in the middle of paper execution, again and again.

The orchestrator pool (the workflows and the execution activity) runs as its own process,
``python -m workers orchestrator``, as a container would. To kill it *during* execution
rather than somewhere near it, the test holds a row lock on the strategy's book; when the
worker's execution transaction is seen waiting on that lock in ``pg_stat_activity`` with
instructions to fill, the test SIGKILLs the worker, releases the lock and starts a new
one. The dead attempt never commits; Temporal retries it on the new worker, the workflow
moves there, and the replay must finish with every instruction filled exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import Counter
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from stratlab.store.trading import PaperRepo
from tests.fixtures.paper import execution_fills, start_paper
from tests.fixtures.temporal import rows
from tests.fixtures.workers import start_worker

KILLS = 2
STRATEGY = "faults"

pytestmark = pytest.mark.slow


@pytest.fixture
def lab_pools() -> tuple[str, ...]:
    return ("llm", "compute", "optimizer")


async def execution_waiting_on_lock(lab: Any) -> bool:
    found = await rows(
        lab,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE '%%paper_books%%'",
    )
    return int(found[0]["n"]) > 0


async def pending_orders(lab: Any) -> int:
    """Orders of the latest decision: what the blocked execution is filling."""
    latest = await PaperRepo(lab.db).history(STRATEGY, kinds=["instructions"], limit=1)
    return len(latest[0].payload["instructions"]) if latest else 0


async def kill_during_execution(lab: Any, worker: subprocess.Popen[bytes]) -> bool:
    """Hold the book's row lock until the execution blocks on it; kill the worker if that
    execution has orders to fill. True when it killed."""
    async with lab.db.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT 1 FROM paper_books WHERE strategy_id = %(s)s FOR UPDATE", {"s": STRATEGY}
        )
        for _ in range(600):
            if await execution_waiting_on_lock(lab):
                break
            await asyncio.sleep(0.05)
        else:
            return False
        if await pending_orders(lab) == 0:
            return False
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        return True


async def test_killed_worker_during_execution_never_fills_twice(
    lab: Any, temporal_client: Client
) -> None:
    worker = start_worker(lab, temporal_client, "orchestrator")
    handle = await start_paper(
        lab, STRATEGY, symbols=["sp500"], replay_from="2016-01-01", replay_to="2016-09-30"
    )
    kills = 0
    try:
        while kills < KILLS:
            described = await handle.describe()
            assert described.status == WorkflowExecutionStatus.RUNNING, "ended before the kills"
            if await kill_during_execution(lab, worker):
                kills += 1
                worker = start_worker(lab, temporal_client, "orchestrator")
        result = await asyncio.wait_for(handle.result(), timeout=300)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()

    assert result.finished_reason == "replay finished: no bar left"
    fills = await execution_fills(lab, STRATEGY)
    assert fills
    counts = Counter(f.instruction_id for f in fills)
    assert max(counts.values()) == 1  # no instruction filled twice
    _, book = await PaperRepo(lab.db).load_book(STRATEGY) or (0, None)
    assert book is not None
    assert set(book.fills) == set(counts)
    signed = sum(f.quantity if f.side == "buy" else -f.quantity for f in fills)
    assert book.position("sp500") == signed  # the position is the sum of the fills
    attempts = await rows(
        lab,
        "SELECT count(*) AS n FROM paper_equity WHERE strategy_id = %(s)s",
        s=STRATEGY,
    )
    assert attempts[0]["n"] == result.cycle  # one equity point per bar, none twice
