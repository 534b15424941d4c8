"""The lab's Prometheus metrics, recorded through Temporal's runtime metric meter.

One exporter per process: with ``--metrics-port`` the worker's Temporal ``Runtime`` serves
``/metrics`` (``PrometheusConfig``), and the lab's own metrics are instruments of that
runtime's ``metric_meter``, so Temporal's SDK metrics and the lab's share one port. Without
a port the meter is Temporal's no-op meter and recording costs nothing.

Temporal's counters take integers only, so money is a histogram: ``stratlab_llm_cost_usd``
has the exact float total in ``_sum`` (daily spend is ``increase(..._sum[1d])``) and the
per-call distribution in its buckets. Counter names get ``_total`` when exported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from stratlab.config import Settings
from stratlab.models.llm import LlmCallRecord
from stratlab.models.optimization import GenerationResult
from stratlab.models.records import BudgetDay
from stratlab.models.research import GateResult

Kind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class MetricDef:
    """One lab metric: its name as created (counters are exported with ``_total``)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def exported(self) -> tuple[str, ...]:
        """The series names Prometheus sees for this metric."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)


_MODEL = ("role", "provider", "model")
LLM_CALLS = MetricDef(
    "stratlab_llm_calls",
    "counter",
    "LLM calls as recorded (outcome ok, error, budget_exhausted); cached answers cost nothing",
    (*_MODEL, "outcome", "cached"),
)
LLM_REJECTED = MetricDef(
    "stratlab_llm_rejected_answers",
    "counter",
    "Answered calls whose answer the caller then rejected (malformed, invalid, ...)",
    (*_MODEL, "outcome"),
)
LLM_TOKENS = MetricDef(
    "stratlab_llm_tokens",
    "counter",
    "LLM tokens by direction (input, output)",
    (*_MODEL, "direction"),
)
LLM_COST = MetricDef(
    "stratlab_llm_cost_usd",
    "histogram",
    "Cost of each LLM call in USD (_sum is the spend)",
    _MODEL,
    (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)
LLM_LATENCY = MetricDef(
    "stratlab_llm_latency_seconds",
    "histogram",
    "Provider latency of answered, uncached calls (offline: simulated from output tokens)",
    _MODEL,
    (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0),
)
CYCLES = MetricDef(
    "stratlab_cycles", "counter", "Finished research cycles by outcome", ("outcome",)
)
GATE_RESULTS = MetricDef(
    "stratlab_gate_results",
    "counter",
    "Quality gate evaluations (training, backtest) by result (passed, failed)",
    ("gate", "result"),
)
GATE_CHECK_FAILURES = MetricDef(
    "stratlab_gate_check_failures",
    "counter",
    "Failed checks of the quality gates, by check",
    ("gate", "check"),
)
PHASE_ACTIVE = MetricDef(
    "stratlab_cycle_phase_active",
    "gauge",
    "Research cycles running a phase (design, train, backtest, assess, analyse) right now",
    ("phase",),
)
PHASE_DURATION = MetricDef(
    "stratlab_phase_duration_seconds",
    "histogram",
    "Wall time of research phases by status (ok, failed)",
    ("phase", "status"),
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0),
)
BUDGET_REMAINING = MetricDef(
    "stratlab_budget_remaining_usd",
    "gauge",
    "Today's budget left per scope (cap - spent - reserved), read after each LLM call",
    ("scope",),
)
BUDGET_SPENT = MetricDef(
    "stratlab_budget_spent_usd", "gauge", "Today's spend per scope (UTC day)", ("scope",)
)
BUDGET_CAP = MetricDef("stratlab_budget_cap_usd", "gauge", "Today's cap per scope", ("scope",))
GENERATION = MetricDef(
    "stratlab_generation", "gauge", "Latest recorded optimizer generation per role", ("role",)
)
GENERATION_HYPERVOLUME = MetricDef(
    "stratlab_generation_hypervolume",
    "gauge",
    "Hypervolume of the latest generation's Pareto front per role",
    ("role",),
)
GENERATION_BEST_SUCCESS = MetricDef(
    "stratlab_generation_best_success_rate",
    "gauge",
    "Best benchmark success rate in the latest generation per role",
    ("role",),
)

METRICS: tuple[MetricDef, ...] = (
    LLM_CALLS,
    LLM_REJECTED,
    LLM_TOKENS,
    LLM_COST,
    LLM_LATENCY,
    CYCLES,
    GATE_RESULTS,
    GATE_CHECK_FAILURES,
    PHASE_ACTIVE,
    PHASE_DURATION,
    BUDGET_REMAINING,
    BUDGET_SPENT,
    BUDGET_CAP,
    GENERATION,
    GENERATION_HYPERVOLUME,
    GENERATION_BEST_SUCCESS,
)


def metrics_runtime(settings: Settings, *, pools: str) -> Runtime | None:
    """A Temporal runtime serving ``/metrics`` on ``settings.metrics_port`` (all interfaces),
    or ``None`` without a port. Create it before the client connects: the client and its
    workers report through the runtime they were connected with."""
    if settings.metrics_port is None:
        return None
    prometheus = PrometheusConfig(
        bind_address=f"0.0.0.0:{settings.metrics_port}",
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={m.name: m.buckets for m in METRICS if m.buckets},
    )
    telemetry = TelemetryConfig(
        metrics=prometheus, global_tags={"pool": pools}, attach_service_name=False
    )
    try:
        return Runtime(telemetry=telemetry)
    except ValueError as err:  # the exporter could not bind its port
        from stratlab.runtime import StackError

        raise StackError(f"cannot serve metrics on port {settings.metrics_port}: {err}") from err


class LabMetrics:
    """Typed recording of the lab's metrics on one ``MetricMeter`` (no-op when off)."""

    def __init__(self, meter: MetricMeter) -> None:
        self.enabled = meter is not MetricMeter.noop
        self._calls = meter.create_counter(LLM_CALLS.name, LLM_CALLS.help)
        self._rejected = meter.create_counter(LLM_REJECTED.name, LLM_REJECTED.help)
        self._tokens = meter.create_counter(LLM_TOKENS.name, LLM_TOKENS.help)
        self._cost = meter.create_histogram_float(LLM_COST.name, LLM_COST.help, "USD")
        self._latency = meter.create_histogram_float(LLM_LATENCY.name, LLM_LATENCY.help, "s")
        self._cycles = meter.create_counter(CYCLES.name, CYCLES.help)
        self._gates = meter.create_counter(GATE_RESULTS.name, GATE_RESULTS.help)
        self._checks = meter.create_counter(GATE_CHECK_FAILURES.name, GATE_CHECK_FAILURES.help)
        self._active = meter.create_gauge(PHASE_ACTIVE.name, PHASE_ACTIVE.help)
        self._phase = meter.create_histogram_float(PHASE_DURATION.name, PHASE_DURATION.help, "s")
        self._remaining = meter.create_gauge_float(BUDGET_REMAINING.name, BUDGET_REMAINING.help)
        self._spent = meter.create_gauge_float(BUDGET_SPENT.name, BUDGET_SPENT.help)
        self._cap = meter.create_gauge_float(BUDGET_CAP.name, BUDGET_CAP.help)
        self._generation = meter.create_gauge(GENERATION.name, GENERATION.help)
        self._hypervolume = meter.create_gauge_float(
            GENERATION_HYPERVOLUME.name, GENERATION_HYPERVOLUME.help
        )
        self._best = meter.create_gauge_float(
            GENERATION_BEST_SUCCESS.name, GENERATION_BEST_SUCCESS.help
        )
        # Temporal's gauges are set, not added to: this process's counts live here.
        self._running: Counter[str] = Counter()

    @classmethod
    def off(cls) -> LabMetrics:
        return cls(MetricMeter.noop)

    def llm_call(self, record: LlmCallRecord) -> None:
        model = {"role": record.role, "provider": record.provider, "model": record.model}
        cached = "true" if record.cached else "false"
        self._calls.add(1, {**model, "outcome": record.outcome, "cached": cached})
        self._tokens.add(record.input_tokens, {**model, "direction": "input"})
        self._tokens.add(record.output_tokens, {**model, "direction": "output"})
        self._cost.record(record.cost_usd, model)
        if record.outcome == "ok" and not record.cached:
            self._latency.record(record.latency_ms / 1000.0, model)

    def llm_rejected(self, record: LlmCallRecord) -> None:
        model = {"role": record.role, "provider": record.provider, "model": record.model}
        self._rejected.add(1, {**model, "outcome": record.outcome})

    def budget(self, day: BudgetDay) -> None:
        scope = {"scope": day.scope}
        self._remaining.set(float(day.remaining_usd), scope)
        self._spent.set(float(day.spent_usd), scope)
        self._cap.set(float(day.cap_usd), scope)

    def gate(self, result: GateResult) -> None:
        outcome = "passed" if result.passed else "failed"
        self._gates.add(1, {"gate": result.gate, "result": outcome})
        for check in result.failures():
            self._checks.add(1, {"gate": result.gate, "check": check.name})

    def cycle_finished(self, outcome: str) -> None:
        self._cycles.add(1, {"outcome": outcome})

    def phase_started(self, phase: str) -> None:
        self._running[phase] += 1
        self._active.set(self._running[phase], {"phase": phase})

    def phase_finished(self, phase: str, status: str, seconds: float) -> None:
        self._running[phase] = max(self._running[phase] - 1, 0)
        self._active.set(self._running[phase], {"phase": phase})
        self._phase.record(seconds, {"phase": phase, "status": status})

    def generation(self, result: GenerationResult) -> None:
        role = {"role": result.role}
        self._generation.set(result.generation, role)
        self._hypervolume.set(result.hypervolume, role)
        self._best.set(result.best_success_rate, role)
