"""Starting cycles and steering the research trigger schedule."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError
from stratlab.cli.schedule_labels import research_schedule_input, research_schedule_labels
from stratlab.config import Settings
from stratlab.models.research import ResearchCycleInput, ResearchCycleResult
from stratlab.temporal_names import (
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
    RESEARCH_WORKFLOW_ID,
)
from workflows.labels import research_labels
from workflows.research import ResearchCycleWorkflow


async def start_cycle(
    client: Client, cfg: Settings, cycle: ResearchCycleInput
) -> WorkflowHandle[ResearchCycleWorkflow, ResearchCycleResult]:
    """Start a cycle with its business-key workflow id ``research-<session>``."""
    session_id = cycle.session_id or str(uuid.uuid4())
    cycle = cycle.model_copy(update={"session_id": session_id})
    return await client.start_workflow(
        ResearchCycleWorkflow.run,
        cycle,
        id=RESEARCH_WORKFLOW_ID.format(session_id=session_id),
        task_queue=cfg.task_queue("orchestrator"),
        **research_labels(cycle),
    )


async def ensure_research_schedule(
    client: Client, cfg: Settings, *, every: timedelta | None = None
) -> bool:
    """Create the research trigger (every 5 minutes unless ``every``, overlap Skip) if
    missing; True when it was created."""
    every = every or RESEARCH_SCHEDULE_INTERVAL
    cycle = research_schedule_input()
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ResearchCycleWorkflow.run,
            cycle,
            id="research-scheduled",
            task_queue=cfg.task_queue("orchestrator"),
            # The UI says what a scheduled cycle is, as for one started by hand.
            **research_schedule_labels(cycle, every),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RESEARCH_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


async def set_schedule_paused(client: Client, *, paused: bool, note: str) -> None:
    handle = client.get_schedule_handle(RESEARCH_SCHEDULE_ID)
    try:
        if paused:
            await handle.pause(note=note)
        else:
            await handle.unpause(note=note)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"schedule {RESEARCH_SCHEDULE_ID} does not exist; "
                "`stratlab schedule research` creates it (so do `stratlab dev` and `setup`)"
            ) from err
        raise
