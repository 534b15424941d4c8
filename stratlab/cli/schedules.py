"""``stratlab schedule``: the lab's Temporal Schedules, the research trigger and one nightly
optimizer generation per role, listed, changed, paused, triggered and deleted.

A schedule is named by its id, by its id without ``stratlab-`` (``research-trigger``,
``nightly-optimization-designer``) or by an unambiguous prefix of either (``research``,
``nightly``). Creating them: ``stratlab dev`` and ``stratlab setup``, or ``schedule
research`` and ``schedule nightly`` here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import (
    CliError,
    console,
    narrow_table,
    print_json,
    print_link,
    temporal,
)
from stratlab.cli.ids import ambiguous
from stratlab.cli.schedule_labels import duration as _duration
from stratlab.cli.schedule_labels import (
    nightly_schedule_labels,
    research_schedule_input,
    research_schedule_labels,
)
from stratlab.config import Settings
from stratlab.models.optimization import OPTIMIZABLE_ROLES, OptimizationInput
from stratlab.models.research import ResearchCycleInput
from stratlab.temporal_names import (
    NIGHTLY_SCHEDULE_ID,
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
)
from workflows.labels import StartLabels

_PREFIX = "stratlab-"
NIGHTLY_HOUR = 2  # UTC
NIGHTLY_POPULATION = 16


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


def _labels_after(
    found: LabSchedule,
    *,
    hour: int | None,
    population: int | None,
    every: timedelta | None,
) -> StartLabels:
    """A schedule's labels once an update is applied (its input may be unreadable: then
    the defaults the lab creates it with)."""
    if found.kind == "research":
        try:
            cycle = ResearchCycleInput.model_validate(found.input)
        except ValueError:
            cycle = research_schedule_input()
        seconds = found.every_seconds or RESEARCH_SCHEDULE_INTERVAL.total_seconds()
        return research_schedule_labels(cycle, every or timedelta(seconds=seconds))
    fields = {**found.input, **({} if population is None else {"population": population})}
    try:
        inp = OptimizationInput.model_validate(fields)
    except ValueError:
        role = found.id.removeprefix(f"{NIGHTLY_SCHEDULE_ID}-")
        inp = OptimizationInput.model_validate(
            {"role": role if role in OPTIMIZABLE_ROLES else "designer",
             "population": population or NIGHTLY_POPULATION}
        )  # fmt: skip
    hour = found.hour if hour is None else hour
    return nightly_schedule_labels(inp, NIGHTLY_HOUR if hour is None else hour)


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


# --- list ------------------------------------------------------------------------------------


def schedules_table(schedules: list[LabSchedule]) -> Table:
    """One row per schedule, for 80 columns; notes, input and links are in --json."""
    table = narrow_table("Schedules (times UTC)")
    table.add_column("schedule", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("next run", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    for s in schedules:
        table.add_row(
            s.name,
            "[yellow]paused[/yellow]" if s.paused else "active",
            s.when,
            "—" if s.paused or s.next_run is None else f"{s.next_run:%m-%d %H:%M}",
            str(s.runs),
        )
    return table


async def list_schedules(cfg: Settings, *, as_json: bool) -> None:
    client = await client_for(cfg)
    schedules = await lab_schedules(cfg, client)
    if as_json:
        print_json([s.as_json() for s in schedules])
        return
    if not schedules:
        console.print(
            "no lab schedules: `stratlab schedule research` and `stratlab schedule nightly` "
            "create them"
        )
        return
    console.print(schedules_table(schedules))
    for s in schedules:
        if s.paused and s.note:
            console.print(f"{s.name} paused: {s.note}", markup=False, highlight=False)


# --- pause, resume, trigger, delete -----------------------------------------------------------


async def act(cfg: Settings, ref: str, action: str, *, note: str = "", as_json: bool) -> None:
    """``pause``, ``resume``, ``trigger`` or ``delete`` one schedule."""
    client = await client_for(cfg)
    found = await resolve(cfg, client, ref)
    handle = client.get_schedule_handle(found.id)
    if action == "pause":
        await handle.pause(note=note or "paused from the CLI")
    elif action == "resume":
        await handle.unpause(note=note or "resumed from the CLI")
    elif action == "trigger":
        await handle.trigger()
    elif action == "delete":
        await handle.delete()
    else:  # pragma: no cover - the commands pass one of the above
        raise ValueError(action)
    done = {"pause": "paused", "resume": "resumed", "trigger": "triggered", "delete": "deleted"}
    if as_json:
        print_json({"id": found.id, "action": done[action]})
        return
    extra = {"trigger": ": one run starts now (overlap policy Skip applies)"}.get(action, "")
    console.print(f"schedule {found.id} {done[action]}{extra}", highlight=False)


# --- create and update ------------------------------------------------------------------------


async def update(
    cfg: Settings,
    ref: str,
    *,
    hour: int | None,
    population: int | None,
    every: timedelta | None,
    as_json: bool,
) -> None:
    client = await client_for(cfg)
    found = await resolve(cfg, client, ref)
    if found.kind == "research" and (hour is not None or population is not None):
        raise CliError(f"{found.id} runs every few minutes: it takes --every, not --hour")
    if found.kind == "nightly" and every is not None:
        raise CliError(f"{found.id} runs daily: it takes --hour and --population, not --every")
    if hour is None and population is None and every is None:
        raise CliError("nothing to change: pass --hour/--population (nightly) or --every")
    changes = await _apply(client, found, hour=hour, population=population, every=every)
    _report(found.id, changes, as_json=as_json)


async def _apply(
    client: Client,
    found: LabSchedule,
    *,
    hour: int | None = None,
    population: int | None = None,
    every: timedelta | None = None,
    task_queue: str | None = None,
) -> list[str]:
    """Change what differs in one update; a description of each change."""
    changes: list[str] = []
    if hour is not None and hour != found.hour:
        changes.append(f"hour {_hh(found.hour)} → {hour:02d}:00 UTC")
    if every is not None and every.total_seconds() != found.every_seconds:
        was = _duration(found.every_seconds) if found.every_seconds else "?"
        changes.append(f"every {was} → {_duration(every.total_seconds())}")
    old_population = found.input.get("population")
    if population is not None and population != old_population:
        changes.append(f"population {old_population or '?'} → {population}")
    if task_queue is not None and task_queue != found.task_queue:
        changes.append(f"task queue {found.task_queue} → {task_queue}")
    if not changes:
        return []

    async def updater(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = current.description.schedule
        if hour is not None:
            schedule.spec = dataclasses.replace(
                schedule.spec,
                calendars=[
                    ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(0)])
                ],
            )
        if every is not None:
            schedule.spec = dataclasses.replace(
                schedule.spec, intervals=[ScheduleIntervalSpec(every=every)]
            )
        action = schedule.action
        if isinstance(action, ScheduleActionStartWorkflow):
            if population is not None:
                inp = OptimizationInput.model_validate({**found.input, "population": population})
                action = dataclasses.replace(action, args=[inp])
            if task_queue is not None:
                action = dataclasses.replace(action, task_queue=task_queue)
            # What the runs it starts say they are follows the change (and a schedule made
            # before runs carried labels gets them).
            labels = _labels_after(found, hour=hour, population=population, every=every)
            action = dataclasses.replace(action, **labels)
            schedule.action = action
        return ScheduleUpdate(schedule=schedule)

    handle: ScheduleHandle = client.get_schedule_handle(found.id)
    await handle.update(updater)
    return changes


def _hh(hour: int | None) -> str:
    return "?" if hour is None else f"{hour:02d}:00"


def _report(schedule_id: str, changes: list[str], *, as_json: bool, created: bool = False) -> None:
    state = "created" if created else "updated" if changes else "unchanged"
    if as_json:
        print_json({"id": schedule_id, "state": state, "changes": changes})
        return
    detail = f": {'; '.join(changes)}" if changes and not created else ""
    console.print(f"schedule {schedule_id} {state}{detail}", highlight=False)


async def nightly(
    cfg: Settings, *, role: str, hour: int | None, population: int | None, as_json: bool
) -> None:
    """Create the role's nightly schedule, or update the existing one to ``hour`` and
    ``population`` (None: keep what it has) and say what changed."""
    from stratlab.cli.evolution import ensure_nightly_schedule

    client = await client_for(cfg)
    schedule_id = f"{NIGHTLY_SCHEDULE_ID}-{role}"
    existing = await describe(cfg, client, schedule_id)
    if existing is None:
        hour = NIGHTLY_HOUR if hour is None else hour
        population = NIGHTLY_POPULATION if population is None else population
        await ensure_nightly_schedule(client, cfg, role=role, hour=hour, population=population)
        _report(schedule_id, [f"daily {hour:02d}:00 UTC", f"population {population}"],
                as_json=as_json, created=True)  # fmt: skip
        if not as_json:
            console.print(f"  one {role} generation every day at {hour:02d}:00 UTC (overlap Skip)")
            print_link(cfg.ui_link("schedules", schedule_id))
        return
    changes = await _apply(
        client,
        existing,
        hour=hour,
        population=population,
        task_queue=cfg.task_queue("orchestrator"),
    )
    _report(schedule_id, changes, as_json=as_json)
    if not as_json and not changes:
        console.print(f"  {existing.when}, population {existing.input.get('population', '?')}")


async def research(cfg: Settings, *, every: timedelta | None, as_json: bool) -> None:
    """Create the research trigger (every 5 minutes unless ``every``), or update its
    interval."""
    from stratlab.cli.control import ensure_research_schedule

    client = await client_for(cfg)
    existing = await describe(cfg, client, RESEARCH_SCHEDULE_ID)
    if existing is None:
        await ensure_research_schedule(client, cfg, every=every)
        created = await describe(cfg, client, RESEARCH_SCHEDULE_ID)
        when = created.when if created else "every 5m"
        _report(RESEARCH_SCHEDULE_ID, [when], as_json=as_json, created=True)
        if not as_json:
            console.print(f"  one research cycle {when} (overlap Skip)")
            print_link(cfg.ui_link("schedules", RESEARCH_SCHEDULE_ID))
        return
    changes = await _apply(client, existing, every=every, task_queue=cfg.task_queue("orchestrator"))
    _report(RESEARCH_SCHEDULE_ID, changes, as_json=as_json)
