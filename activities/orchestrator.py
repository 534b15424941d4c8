"""Orchestrator-pool activities: light store work at the start and end of a cycle."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from stratlab.models.research import (
    FinishSessionInput,
    ResearchCycleResult,
    SessionStarted,
    StartSessionInput,
)
from stratlab.research.sessions import SessionService
from stratlab.telemetry.instruments import current


class SessionActivities:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    @activity.defn(name=names.START_SESSION)
    async def start_session(self, inp: StartSessionInput) -> SessionStarted:
        try:
            return await self._service.start(inp)
        except LookupError as err:  # a prompt id that is not in the registry: no retry helps
            raise ApplicationError(str(err), type="PromptNotFound", non_retryable=True) from err

    @activity.defn(name=names.FINISH_SESSION)
    async def finish_session(self, inp: FinishSessionInput) -> ResearchCycleResult:
        result = await self._service.finish(inp)
        current().cycle_finished(result.outcome)
        return result
