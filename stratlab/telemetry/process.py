"""A worker process's telemetry: made once in the entry point, before the client connects.

``start_telemetry`` builds the Temporal runtime that serves ``/metrics`` (when a metrics
port is set), the shared tracer provider (when OTLP or Langfuse is configured) and the
``Instruments`` the workers record to; ``shutdown`` flushes spans when the workers stop.
Nothing configured, it changes nothing: the default runtime, no interceptor, no-op
instruments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import temporalio.client
from opentelemetry.sdk.trace import TracerProvider
from temporalio.runtime import Runtime

from stratlab.config import Settings
from stratlab.telemetry.instruments import Instruments
from stratlab.telemetry.metrics import LabMetrics, metrics_runtime
from stratlab.telemetry.tracing import (
    TRACER_NAME,
    shutdown_tracing,
    temporal_tracing,
    tracer_provider,
)

TEMPORAL_TRACER = "temporalio.contrib.opentelemetry"


@dataclass
class ProcessTelemetry:
    runtime: Runtime | None = None
    provider: TracerProvider | None = None
    instruments: Instruments = field(default_factory=Instruments)

    def client_interceptors(self) -> list[temporalio.client.Interceptor]:
        """Temporal's tracing interceptor when tracing is on (workers inherit it)."""
        if self.provider is None:
            return []
        return [temporal_tracing(self.provider.get_tracer(TEMPORAL_TRACER))]

    def shutdown(self) -> None:
        if self.provider is not None:
            shutdown_tracing()


def start_telemetry(settings: Settings, *, pools: Sequence[str]) -> ProcessTelemetry:
    label = "+".join(pools)
    runtime = metrics_runtime(settings, pools=label)
    provider = tracer_provider(settings, pool=label)
    metrics = LabMetrics(runtime.metric_meter) if runtime else LabMetrics.off()
    tracer = provider.get_tracer(TRACER_NAME) if provider else None
    return ProcessTelemetry(runtime, provider, Instruments(metrics, tracer))
