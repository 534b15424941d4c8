"""``stratlab schedule``: the lab's Temporal Schedules, the research trigger and one nightly
optimizer generation per role, listed, changed, paused, triggered and deleted.

A schedule is named as ``lab_schedules.resolve`` finds it: by its id, by its id without
``stratlab-`` or by an unambiguous prefix of either. Creating them: ``stratlab dev`` and
``stratlab setup``, or ``schedule research`` and ``schedule nightly`` here.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from rich.table import Table
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from stratlab.cli._common import CliError, console, narrow_table, print_json, print_link
from stratlab.cli.lab_schedules import (
    LabSchedule,
    client_for,
    describe,
    lab_schedules,
    resolve,
)
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

NIGHTLY_HOUR = 2  # UTC
NIGHTLY_POPULATION = 16


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
