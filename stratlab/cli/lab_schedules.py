"""The lab's Temporal Schedules as a person sees them: ``LabSchedule`` (what one does,
when, and how often it ran), every lab schedule that exists, and one found by name.

A schedule is named by its id, by its id without ``stratlab-`` (``research-trigger``,
``nightly-optimization-designer``) or by an unambiguous prefix of either (``research``,
``nightly``). ``schedules`` lists and changes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
)
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError, temporal
from stratlab.cli.ids import ambiguous
from stratlab.cli.schedule_labels import duration as _duration
from stratlab.config import Settings
from stratlab.models.optimization import OPTIMIZABLE_ROLES
from stratlab.temporal_names import NIGHTLY_SCHEDULE_ID, RESEARCH_SCHEDULE_ID

_PREFIX = "stratlab-"


@dataclass
class LabSchedule:
    """What a person needs to know about one of the lab's schedules."""

    id: str
    kind: str  # research | nightly
    paused: bool
    note: str
    when: str  # "every 5m" or "daily 02:00 UTC"
    workflow: str
    task_queue: str
    hour: int | None = None
    every_seconds: float | None = None
    input: dict[str, Any] = field(default_factory=dict)
    next_run: datetime | None = None
    last_run: datetime | None = None
    runs: int = 0
    skipped_overlaps: int = 0
    ui: str = ""

    @property
    def name(self) -> str:
        return self.id.removeprefix(_PREFIX)

    def as_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        for key in ("next_run", "last_run"):
            body[key] = body[key].isoformat() if body[key] else None
        return body


def is_lab_schedule(schedule_id: str) -> bool:
    return schedule_id == RESEARCH_SCHEDULE_ID or schedule_id.startswith(f"{NIGHTLY_SCHEDULE_ID}-")


async def client_for(cfg: Settings) -> Client:
    """The lab's Temporal; ``StackError`` (one line: where, and how to start it) if down."""
    return await temporal(cfg)


async def lab_schedules(cfg: Settings, client: Client) -> list[LabSchedule]:
    """Every lab schedule that exists: the known ids, described directly (the list of
    schedules lags behind a create), plus any other nightly one the list shows."""
    ids = [RESEARCH_SCHEDULE_ID, *(f"{NIGHTLY_SCHEDULE_ID}-{r}" for r in OPTIMIZABLE_ROLES)]
    async for listed in await client.list_schedules():
        if is_lab_schedule(listed.id) and listed.id not in ids:
            ids.append(listed.id)
    found = [await describe(cfg, client, sid) for sid in ids]
    return [s for s in found if s is not None]


async def describe(cfg: Settings, client: Client, schedule_id: str) -> LabSchedule | None:
    try:
        desc = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return await _summary(cfg, client, desc)


async def _summary(cfg: Settings, client: Client, desc: ScheduleDescription) -> LabSchedule:
    schedule, info = desc.schedule, desc.info
    action = schedule.action
    workflow, queue, inp = "?", "?", {}
    if isinstance(action, ScheduleActionStartWorkflow):
        workflow, queue = action.workflow, action.task_queue or "?"
        inp = await _decoded_input(client, action)
    hour, every = _hour(schedule), _every(schedule)
    when = f"daily {hour:02d}:00 UTC" if hour is not None else "?"
    if every is not None:
        when = f"every {_duration(every)}"
    recent = info.recent_actions[-1].started_at if info.recent_actions else None
    return LabSchedule(
        id=desc.id,
        kind="research" if desc.id == RESEARCH_SCHEDULE_ID else "nightly",
        paused=schedule.state.paused,
        note=schedule.state.note or "",
        when=when,
        workflow=workflow,
        task_queue=queue,
        hour=hour,
        every_seconds=every,
        input=inp,
        next_run=info.next_action_times[0] if info.next_action_times else None,
        last_run=recent,
        runs=info.num_actions,
        skipped_overlaps=info.num_actions_skipped_overlap,
        ui=cfg.ui_link("schedules", desc.id),
    )


async def _decoded_input(client: Client, action: ScheduleActionStartWorkflow) -> dict[str, Any]:
    if not action.args:
        return {}
    first = action.args[0]
    try:
        if hasattr(first, "metadata"):  # a raw payload, as a description carries it
            (first,) = await client.data_converter.decode([first])
    except Exception:  # not JSON this CLI can read: show nothing rather than fail
        return {}
    return dict(first) if isinstance(first, dict) else {}


def _hour(schedule: Schedule) -> int | None:
    calendars = schedule.spec.calendars
    if calendars and calendars[0].hour:
        return calendars[0].hour[0].start
    return None


def _every(schedule: Schedule) -> float | None:
    intervals = schedule.spec.intervals
    return intervals[0].every.total_seconds() if intervals else None


async def resolve(cfg: Settings, client: Client, ref: str) -> LabSchedule:
    """A lab schedule by id, by id without ``stratlab-``, or by a unique prefix."""
    schedules = await lab_schedules(cfg, client)
    ref = ref.strip()
    for s in schedules:
        if ref in (s.id, s.name):
            return s
    matches = [s for s in schedules if s.id.startswith(ref) or s.name.startswith(ref)]
    if not ref or not matches:
        names = ", ".join(s.name for s in schedules) or "none exists yet"
        raise CliError(f"no lab schedule {ref!r}; schedules: {names}")
    if len(matches) > 1:
        raise ambiguous("schedule", ref, [s.name for s in matches])
    return matches[0]
