"""What a run a lab schedule starts says it is in the Temporal UI: the static summary and
details of a manually started run of the same workflow, plus the schedule that started it.
Used where the schedules are created (``stratlab dev``, ``setup``, ``schedule research|
nightly``) and whenever ``stratlab schedule`` changes one."""

from __future__ import annotations

from datetime import timedelta

from stratlab.models.optimization import OptimizationInput
from stratlab.models.research import ResearchCycleInput
from stratlab.temporal_names import (
    NIGHTLY_SCHEDULE_ID,
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
)
from workflows.labels import StartLabels, optimization_labels, research_labels


def research_schedule_input() -> ResearchCycleInput:
    """The cycle the research trigger starts."""
    return ResearchCycleInput(trigger="schedule")


def research_schedule_labels(
    cycle: ResearchCycleInput, every: timedelta = RESEARCH_SCHEDULE_INTERVAL
) -> StartLabels:
    """The static summary and details of a cycle the research trigger starts: those of a
    manually started cycle, and which schedule started it."""
    labels = research_labels(cycle)
    return StartLabels(
        static_summary=labels["static_summary"],
        static_details=f"{labels['static_details']}\n- started by the schedule "
        f"{RESEARCH_SCHEDULE_ID}, every {duration(every.total_seconds())} (overlap Skip)",
    )


def nightly_schedule_labels(inp: OptimizationInput, hour: int) -> StartLabels:
    """The static summary and details of a nightly generation: those of ``optimize``, and
    which schedule started it."""
    labels = optimization_labels(inp)
    return StartLabels(
        static_summary=f"nightly: {labels['static_summary']}",
        static_details=f"{labels['static_details']}\n- started by the schedule "
        f"{NIGHTLY_SCHEDULE_ID}-{inp.role}, daily {hour:02d}:00 UTC (overlap Skip)",
    )


def duration(seconds: float) -> str:
    """ "5m", "2h", "90s": an interval as the CLI writes it."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
