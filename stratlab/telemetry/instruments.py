"""What lab code records to: the lab's metrics and its tracer, both no-ops when off.

A worker owns one ``Instruments`` and its activity interceptor makes it current for the
duration of each activity, the way Temporal's ``activity.metric_meter()`` works: activity
classes and the domain code below them stay free of telemetry plumbing, and code run
outside a worker (CLI, unit tests, perf scripts) records to the no-op instruments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from opentelemetry.trace import Tracer

from stratlab.models.optimization import GenerationResult
from stratlab.models.research import GateResult
from stratlab.telemetry._safe import never_raises
from stratlab.telemetry.metrics import LabMetrics
from stratlab.telemetry.tracing import gate_span


@dataclass(frozen=True)
class Instruments:
    metrics: LabMetrics = field(default_factory=LabMetrics.off)
    tracer: Tracer | None = None  # None: tracing is off

    def gate(self, result: GateResult) -> None:
        """A quality gate was evaluated: count it and give it a span."""
        with never_raises("gate metrics"):
            self.metrics.gate(result)
        if self.tracer is not None:
            gate_span(self.tracer, result)

    def cycle_finished(self, outcome: str) -> None:
        with never_raises("cycle metrics"):
            self.metrics.cycle_finished(outcome)

    def phase_started(self, phase: str) -> None:
        with never_raises("phase metrics"):
            self.metrics.phase_started(phase)

    def phase_finished(self, phase: str, status: str, seconds: float) -> None:
        with never_raises("phase metrics"):
            self.metrics.phase_finished(phase, status, seconds)

    def generation(self, result: GenerationResult) -> None:
        with never_raises("generation metrics"):
            self.metrics.generation(result)


_OFF = Instruments()
_current: ContextVar[Instruments | None] = ContextVar("stratlab_instruments", default=None)


def current() -> Instruments:
    """The running activity's worker instruments, or the no-op ones outside a worker."""
    return _current.get() or _OFF


@contextmanager
def using(instruments: Instruments) -> Iterator[None]:
    token = _current.set(instruments)
    try:
        yield
    finally:
        _current.reset(token)
