"""Kill the compute worker again and again while an ml strategy trains.

The compute pool runs as its own process (``python -m workers compute``, what a container
runs). Each time a new checkpoint row appears the test SIGKILLs that process and starts a
new one. Temporal notices the dead worker through the missing heartbeat and retries the
training activity, which must resume from its last checkpoint, not from epoch 0, and the
cycle must still complete with no duplicated rows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

import pytest
from temporalio.client import Client

from stratlab.store.prompts import PromptRepo
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import rows
from tests.fixtures.workers import start_worker

KILLS = 3

pytestmark = pytest.mark.slow


@pytest.fixture
def lab_pools() -> tuple[str, ...]:
    return ("orchestrator", "llm", "optimizer")


async def use_long_training_prompt(lab: Any) -> None:
    """A designer prompt asking for a long ml fit, so there is time to kill the worker."""
    repo = PromptRepo(lab.db)
    prod = await repo.current_prod("designer")
    assert prod is not None
    content = prod.content + "\nDirective: use machine learning. Train for many epochs.\n"
    created = await repo.insert(
        prompt_id="00000000-0000-4000-8000-00000000f417",
        role="designer",
        version="1.0.1-faults",
        system=prod.system,
        content=content,
        parent_ids=[prod.id],
    )
    await repo.tag(created.id, "prod", actor="test", reason="long ml training for the faults")


async def max_checkpoint(lab: Any) -> int:
    found = await rows(lab, "SELECT max(epoch) AS e FROM training_checkpoints")
    return int(found[0]["e"] or 0)


async def test_killed_compute_worker_resumes_training_from_checkpoint(
    lab: Any, temporal_client: Client
) -> None:
    await use_long_training_prompt(lab)
    worker = start_worker(lab, temporal_client)
    handle = await lab.start_cycle(
        symbol="sp500",
        kind="ml",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    kills, last_seen = 0, 0
    try:
        while kills < KILLS:
            epoch = await max_checkpoint(lab)
            if epoch > last_seen:  # the worker is training and has written a new checkpoint
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                # Re-read: the dead worker may have written one more epoch since the poll.
                kills, last_seen = kills + 1, await max_checkpoint(lab)
                worker = start_worker(lab, temporal_client)
            await asyncio.sleep(0.05)
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()

    assert result.outcome == "success", result
    (run,) = await rows(
        lab, "SELECT * FROM training_runs WHERE session_id = %(s)s", s=result.session_id
    )
    report = run["report"]
    epochs = [e["epoch"] for e in report["epochs"]]
    assert report["resumed_from_epoch"] >= last_seen > 0  # resumed, not restarted at 0
    assert epochs == list(range(1, len(epochs) + 1))  # every epoch once, in order
    checkpoints = await rows(
        lab,
        "SELECT epoch FROM training_checkpoints WHERE training_run_id = %(r)s",
        r=run["training_run_id"],
    )
    assert sorted(c["epoch"] for c in checkpoints) == epochs
    for table in ("strategies", "training_runs", "backtests", "assessments"):
        counted = await rows(
            lab, f"SELECT count(*) AS n FROM {table} WHERE session_id = %(s)s", s=result.session_id
        )
        assert counted[0]["n"] == 1, table
    train_phase = await rows(
        lab,
        "SELECT detail FROM session_phases WHERE session_id = %(s)s AND phase = 'train'",
        s=result.session_id,
    )
    assert train_phase[0]["detail"]["attempt"] > KILLS
