"""The worker interceptor that gives every activity its log context and instruments.

Each activity runs in its own asyncio task, so what is bound here stays with that
activity: every log line it writes (structlog or stdlib) carries the workflow id, run id,
activity type and id, attempt and task queue, and ``instruments.current()`` answers with
the worker's metrics and tracer.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from stratlab.telemetry.instruments import Instruments, using


class TelemetryInterceptor(Interceptor):
    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityTelemetry(next, self._instruments)


class _ActivityTelemetry(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, instruments: Instruments) -> None:
        super().__init__(next)
        self._instruments = instruments

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        ids = {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity": info.activity_type,
            "activity_id": info.activity_id,
            "attempt": info.attempt,
            "task_queue": info.task_queue,
        }
        with structlog.contextvars.bound_contextvars(**ids), using(self._instruments):
            return await super().execute_activity(input)
