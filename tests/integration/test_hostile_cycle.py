"""Hostile strategy code through a whole evaluation on a real Temporal server (issue 15).

The strategy code here writes the sandbox's result file itself and exits before the
runner can: once with 63 MiB of duplicate JSON keys (the result that held the GIL for
seconds and made the training activity miss its heartbeat), once with a forged
``internal`` status carrying the code's own text (which used to surface as a broken
sandbox). Such code cannot pass the validator, so each test lets that one source through
it, as a validator hole found tomorrow would: what is tested is the layer behind it.

Each must end as a rejected strategy: ``failed_training`` with one clean line of
feedback, a single attempt of the training activity that failed as the business error
``TrainingError``, no timed-out or retried activity, and no run directory left behind.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from stratlab.cli.evaluate import start_evaluation
from stratlab.models.research import EvaluateStrategyInput, EvaluateStrategyResult
from stratlab.sandbox import executor, validator
from stratlab.sandbox._isolation import find_bwrap
from stratlab.strategies import code as code_strategies
from stratlab.strategies import validation
from tests.fixtures.temporal import rows

pytestmark = pytest.mark.skipif(
    find_bwrap() is None, reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
)

HOSTILE = "# hostile: let through the validator by this test only\n"
OVERSIZED = HOSTILE + (
    "import os\n"
    "def signals(data, params):\n"
    "    chunk = ('\"k\":1,' * 65536).encode()\n"
    "    with open('/work/result.json', 'wb') as out:\n"
    "        out.write(b'{')\n"
    "        for _ in range(63 * 1024 * 1024 // len(chunk)):\n"
    "            out.write(chunk)\n"
    "        out.write(b'\"k\":1}')\n"
    "    os._exit(0)\n"
)
# The forged text is the code's own (long) source, as in the report.
FORGED = HOSTILE + (
    "import json, os\n"
    "# CODE TEXT " + "x" * 9000 + "\n"
    "def signals(data, params):\n"
    "    text = open('/sandbox/in/strategy.py').read()\n"
    "    with open('/work/result.json', 'w') as out:\n"
    "        json.dump({'status': 'internal', 'error': text[:9999]}, out)\n"
    "    os._exit(0)\n"
)


def spec(name: str, source: str) -> dict[str, Any]:
    return {"name": name, "kind": "code", "symbol": "sp500", "code": source}


@pytest.fixture
def validator_hole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator lets the hostile sources through, and only them; the lab's workers
    run in this process, so this reaches the register activity and the training run."""
    real = validator.validate_code

    def validate_code(source: str, *args: Any, **kwargs: Any) -> Any:
        if source.startswith(HOSTILE):
            return None
        return real(source, *args, **kwargs)

    for module in (validation, code_strategies, executor):
        monkeypatch.setattr(module, "validate_code", validate_code)


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox's run dirs go here, so the test can see that none is left."""
    root = tmp_path / "run-dirs"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


async def evaluate_hostile(lab: Any, name: str, source: str) -> tuple[Any, EvaluateStrategyResult]:
    inp = EvaluateStrategyInput(spec=spec(name, source), symbol="sp500")
    handle = await start_evaluation(lab.client, lab.settings, inp)
    return handle, await asyncio.wait_for(handle.result(), timeout=240)


async def assert_rejected_in_one_attempt(lab: Any, handle: Any, result: Any) -> None:
    assert result.outcome == "failed_training", result
    error = result.error or ""
    assert error.startswith("TrainingError: code failed (bad_result): "), error
    assert "\n" not in error and len(error) <= 1600, error
    assert "CODE TEXT" not in error and "xxxxxxxx" not in error  # no forged text echoed
    history = await handle.fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT not in kinds
    failed = [
        e.activity_task_failed_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    (failure,) = failed  # the training run, and nothing else failed
    info = failure.failure.application_failure_info
    assert info.type == "TrainingError" and info.non_retryable, failure.failure
    assert failure.retry_state != 0 and "bad_result" in failure.failure.message
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert all(attempt == 1 for attempt in started), started  # no activity was retried
    (session,) = await rows(
        lab, "SELECT outcome FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["outcome"] == "failed_training"
    (run,) = await rows(
        lab, "SELECT status FROM training_runs WHERE session_id = %(s)s", s=result.session_id
    )
    assert run["status"] == "failed"


async def test_an_oversized_result_ends_as_a_rejected_strategy(
    lab: Any, validator_hole: None, run_dirs: Path
) -> None:
    handle, result = await evaluate_hostile(lab, "oversized result", OVERSIZED)
    await assert_rejected_in_one_attempt(lab, handle, result)
    error = result.error or ""
    assert "wrote a result file of 66060" in error, error  # 63 MiB + braces, refused unread
    assert "more than any valid answer for" in error, error
    assert list(run_dirs.iterdir()) == [], "the run dir must be removed"


async def test_a_forged_sandbox_status_ends_as_a_rejected_strategy(
    lab: Any, validator_hole: None, run_dirs: Path
) -> None:
    handle, result = await evaluate_hostile(lab, "forged status", FORGED)
    await assert_rejected_in_one_attempt(lab, handle, result)
    assert "wrote the sandbox's own status into the result file" in (result.error or "")
    assert list(run_dirs.iterdir()) == [], "the run dir must be removed"


async def test_the_validator_still_rejects_the_same_code_without_the_hole(lab: Any) -> None:
    """Without the hole, the same source never reaches the sandbox: ``failed_design``."""
    _, result = await evaluate_hostile(lab, "oversized result", OVERSIZED)
    assert result.outcome == "failed_design", result
    assert "\n" not in (result.error or "")
