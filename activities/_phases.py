"""Phase timing rows: each activity records when its phase ran and how it ended.

The same timing feeds the worker's metrics: phases running now and phase durations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from stratlab.models.records import PhaseStatus
from stratlab.models.research import Phase
from stratlab.store.sessions import SessionRepo
from stratlab.telemetry.instruments import current


@asynccontextmanager
async def recorded_phase(
    sessions: SessionRepo, session_id: str, iteration: int, phase: Phase
) -> AsyncIterator[dict[str, Any]]:
    """Yields a dict the activity may fill with details; the row is written either way."""
    started = datetime.now(UTC)
    detail: dict[str, Any] = {}
    status: PhaseStatus = "ok"
    instruments = current()
    instruments.phase_started(phase)
    try:
        yield detail
    except BaseException as err:
        status = "failed"
        detail["error"] = f"{type(err).__name__}: {err}"[:1000]
        raise
    finally:
        finished = datetime.now(UTC)
        instruments.phase_finished(phase, status, (finished - started).total_seconds())
        await sessions.record_phase(
            session_id,
            iteration,
            phase,
            started_at=started,
            finished_at=finished,
            status=status,
            detail=detail,
        )
