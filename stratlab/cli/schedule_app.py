"""``stratlab schedule``: the lab's Temporal Schedules (the bodies are in ``schedules``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from stratlab.cli._common import CliError, JsonOpt, run, settings

schedule_app = typer.Typer(
    help="The lab's Temporal Schedules: list, create, update, pause, resume, trigger, delete.",
    no_args_is_help=True,
)

ScheduleArg = Annotated[
    str,
    typer.Argument(
        help="schedule id, without 'stratlab-' (research-trigger, "
        "nightly-optimization-designer) or a unique prefix (research, nightly)"
    ),
]


@schedule_app.command("list")
def schedule_list(as_json: JsonOpt = False) -> None:
    """The lab's schedules: research trigger and nightly generations, paused or not."""
    from stratlab.cli import schedules

    run(schedules.list_schedules(settings(), as_json=as_json))


@schedule_app.command("nightly")
def schedule_nightly(
    hour: Annotated[
        int | None,
        typer.Option(min=0, max=23, help="hour of the day, UTC (new: 2; existing: kept)"),
    ] = None,
    role: Annotated[str, typer.Option(help="the role whose prompt evolves")] = "designer",
    population: Annotated[
        int | None, typer.Option(min=2, max=64, help="offspring (new: 16; existing: kept)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one optimizer generation every night (overlap Skip); on an existing schedule,
    change its hour or population and say what changed."""
    from stratlab.cli import schedules
    from stratlab.models.optimization import OPTIMIZABLE_ROLES

    if role not in OPTIMIZABLE_ROLES:
        raise CliError(
            f"role {role!r} has no benchmark; optimizable: {', '.join(OPTIMIZABLE_ROLES)}"
        )
    run(schedules.nightly(settings(), role=role, hour=hour, population=population, as_json=as_json))


@schedule_app.command("research")
def schedule_research(
    every: Annotated[
        str | None, typer.Option(help="interval, e.g. 5m, 1h (new: 5m; existing: kept)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the research trigger schedule (overlap Skip), or change its interval."""
    from stratlab.cli import schedules

    run(schedules.research(settings(), every=_interval(every), as_json=as_json))


@schedule_app.command("update")
def schedule_update(
    schedule_id: ScheduleArg,
    hour: Annotated[
        int | None, typer.Option(min=0, max=23, help="nightly: hour of the day, UTC")
    ] = None,
    population: Annotated[
        int | None, typer.Option(min=2, max=64, help="nightly: offspring per generation")
    ] = None,
    every: Annotated[str | None, typer.Option(help="research trigger: interval, e.g. 10m")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a schedule's hour and population (nightly) or interval (research trigger)."""
    from stratlab.cli import schedules

    run(
        schedules.update(
            settings(),
            schedule_id,
            hour=hour,
            population=population,
            every=_interval(every),
            as_json=as_json,
        )
    )


def _interval(text: str | None) -> timedelta | None:
    from stratlab.cli.paper_control import parse_duration

    if text is None:
        return None
    seconds = parse_duration(text, option="--every")
    if seconds < 1:
        raise CliError(f"--every {text!r} is too short: at least 1s")
    return timedelta(seconds=seconds)


def _schedule_action(action: str, schedule_id: str, note: str, as_json: bool) -> None:
    from stratlab.cli import schedules

    run(schedules.act(settings(), schedule_id, action, note=note, as_json=as_json))


@schedule_app.command("pause")
def schedule_pause(
    schedule_id: ScheduleArg,
    reason: Annotated[str, typer.Option(help="note shown in the UI")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Pause a schedule: no runs until resumed."""
    _schedule_action("pause", schedule_id, reason, as_json)


@schedule_app.command("resume")
def schedule_resume(
    schedule_id: ScheduleArg,
    reason: Annotated[str, typer.Option(help="note shown in the UI")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Resume a paused schedule."""
    _schedule_action("resume", schedule_id, reason, as_json)


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: ScheduleArg, as_json: JsonOpt = False) -> None:
    """Start the schedule's workflow once now (its overlap policy applies)."""
    _schedule_action("trigger", schedule_id, "", as_json)


@schedule_app.command("delete")
def schedule_delete(schedule_id: ScheduleArg, as_json: JsonOpt = False) -> None:
    """Delete a schedule (running workflows it started go on)."""
    _schedule_action("delete", schedule_id, "", as_json)
