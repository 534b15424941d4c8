"""OpenTelemetry traces: the process's TracerProvider, Temporal's interceptor, gate spans.

``OTEL_EXPORTER_OTLP_ENDPOINT`` turns tracing on: one ``TracerProvider`` per process
(resource ``service.name`` and ``stratlab.pool``) exports through a ``BatchSpanProcessor``
and the OTLP/HTTP exporter to ``<endpoint>/v1/traces``. The Temporal client carries
Temporal's ``TracingInterceptor`` (``RunTracingInterceptor``: one trace per run even when
no traced client started it), so a cycle is one trace: StartWorkflow (when a traced
client started it) → RunWorkflow → StartActivity → RunActivity, and inside the
activities the lab's own spans: one per LLM call (``stratlab.telemetry.llm``) and one per
quality gate evaluation (here). Workflow code itself never touches OpenTelemetry.

Langfuse shares the provider: ``tracer_provider(settings)`` is the one place it is made.
"""

from __future__ import annotations

import hashlib
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio import workflow
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.worker import WorkflowInterceptorClassInput

from stratlab.config import Settings
from stratlab.models.research import GateResult
from stratlab.telemetry._safe import never_raises

TRACER_NAME = "stratlab"

_lock = threading.Lock()
_provider: TracerProvider | None = None


def tracer_provider(settings: Settings, *, pool: str = "") -> TracerProvider | None:
    """The process's shared SDK ``TracerProvider``, or ``None`` when nothing consumes spans.

    Contract (also for the Langfuse integration):

    - ``None`` unless ``settings.otel_endpoint`` is set or ``settings.langfuse_enabled``.
    - Otherwise the same provider on every call in a process; the first call makes it
      (later calls' settings and ``pool`` are ignored) and registers it as OpenTelemetry's
      global provider. With ``otel_endpoint`` it already exports to OTLP/HTTP; a caller
      may add its own span processor (``provider.add_span_processor(...)``) or hand the
      provider to a library (``Langfuse(tracer_provider=provider)``). Add processors
      before the workers start so the first spans reach them.
    - Workers flush it on shutdown (``shutdown_tracing``); callers never shut it down.
    """
    global _provider
    if not (settings.otel_endpoint or settings.langfuse_enabled):
        return None
    with _lock:
        if _provider is None:
            _provider = build_tracer_provider(settings, pool=pool)
            trace.set_tracer_provider(_provider)
        return _provider


def build_tracer_provider(
    settings: Settings, *, pool: str = "", exporter: SpanExporter | None = None
) -> TracerProvider:
    """A new provider (not the shared one): OTLP/HTTP when configured, or ``exporter``."""
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "stratlab.pool": pool or "all"}
    )
    provider = TracerProvider(resource=resource)
    if exporter is None and settings.otel_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under the base endpoint, as the OTel spec defines it."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def shutdown_tracing() -> None:
    """Flush and stop the shared provider (if one was made): what a worker does on exit."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        with never_raises("trace flush"):
            provider.shutdown()


def temporal_tracing(tracer: trace.Tracer) -> TracingInterceptor:
    """Temporal's interceptor for a client: it traces client calls, workflows and
    activities of every worker built on that client."""
    return RunTracingInterceptor(tracer)


class RunTracingInterceptor(TracingInterceptor):
    """Temporal's ``TracingInterceptor``, plus one trace per workflow run when no traced
    client started the run (a Schedule, the CLI, the web UI: most cycles).

    Temporal's interceptor parents a workflow's spans on the span in its start headers;
    without one, each activity would start a trace of its own. Here such a run gets a
    parent derived from its workflow and run ids (``run_trace_context``), the same on
    every replay, so the spans made before and after a worker restart share the trace.
    That parent is never exported: trace viewers show the run's spans under a missing root.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the span-making extern
        return _RunScopedWorkflowTracing


class _RunScopedWorkflowTracing(TracingWorkflowInboundInterceptor):
    def _load_workflow_context_carrier(self) -> dict[str, str | list[str]] | None:
        carrier = super()._load_workflow_context_carrier()
        if carrier is None:
            info = workflow.info()
            carrier = {**run_trace_context(info.workflow_id, info.run_id)}
            self._workflow_context_carrier = carrier
        return carrier


def run_trace_context(workflow_id: str, run_id: str) -> dict[str, str]:
    """The W3C ``traceparent`` of a run started without one: trace id = the first 32 hex
    digits of sha256(``workflow_id/run_id``), parent span id = the next 16."""
    digest = hashlib.sha256(f"{workflow_id}/{run_id}".encode()).hexdigest()
    return {"traceparent": f"00-{digest[:32]}-{digest[32:48]}-01"}


def gate_span(tracer: trace.Tracer, result: GateResult) -> None:
    """One span for a quality gate evaluation, child of the running activity's span."""
    with never_raises("gate span"):
        failed = [c.name for c in result.failures()]
        attributes: dict[str, str | bool | float | list[str]] = {
            "stratlab.gate": result.gate,
            "stratlab.gate.passed": result.passed,
            "stratlab.gate.failed_checks": failed,
        }
        for check in result.checks:
            attributes[f"stratlab.gate.check.{check.name}"] = check.value
            attributes[f"stratlab.gate.threshold.{check.name}"] = check.threshold
        # A rejected strategy is the gate working, not an error: the span's status stays unset.
        with tracer.start_as_current_span(f"gate {result.gate}", attributes=attributes):
            pass
