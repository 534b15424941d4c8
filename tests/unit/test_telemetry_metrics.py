"""The lab's metrics as Prometheus sees them, and observers that never break a call."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families
from temporalio.runtime import Runtime

from stratlab.config import Settings
from stratlab.llm.observe import CallTrace, observed
from stratlab.models.llm import LlmCallRecord, LlmRequest
from stratlab.models.optimization import GenerationResult
from stratlab.models.records import BudgetDay
from stratlab.models.research import GateCheck, GateResult
from stratlab.runtime import StackError
from stratlab.telemetry.instruments import Instruments
from stratlab.telemetry.llm import LlmLogObserver, LlmMetricsObserver, LlmSpanObserver
from stratlab.telemetry.metrics import METRICS, LabMetrics, metrics_runtime
from stratlab.telemetry.observers import call_observers
from stratlab.telemetry.tracing import build_tracer_provider, tracer_provider, traces_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Runtime, int]]:
    port = free_port()
    runtime = metrics_runtime(Settings(metrics_port=port), pools="llm")
    assert runtime is not None
    yield runtime, port


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    (found,) = [v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items())]
    return float(found)


def record(**fields: Any) -> LlmCallRecord:
    base: dict[str, Any] = {
        "action_id": "a1",
        "role": "designer",
        "provider": "anthropic",
        "model": "claude-x",
        "input_tokens": 1000,
        "output_tokens": 200,
        "cost_usd": 0.006,
        "latency_ms": 1500.0,
    }
    return LlmCallRecord(**{**base, **fields})


def test_every_recorded_metric_is_exported_under_its_documented_names(
    served: tuple[Runtime, int],
) -> None:
    runtime, port = served
    metrics = LabMetrics(runtime.metric_meter)
    assert metrics.enabled and not LabMetrics.off().enabled
    metrics.llm_call(record())
    metrics.llm_call(record(cached=True, cost_usd=0.0, latency_ms=0.0))
    metrics.llm_call(record(outcome="error", input_tokens=0, output_tokens=0, cost_usd=0.0))
    metrics.llm_rejected(record(outcome="malformed"))
    failed = GateResult(
        gate="backtest",
        passed=False,
        checks=[
            GateCheck(name="sharpe", value=0.1, threshold=0.5, op=">=", passed=False),
            GateCheck(name="win_rate", value=0.6, threshold=0.45, op=">=", passed=True),
        ],
    )
    metrics.gate(failed)
    metrics.cycle_finished("failed_backtest_gate")
    metrics.phase_started("train")
    metrics.phase_started("train")
    metrics.phase_finished("train", "ok", 2.0)
    metrics.budget(
        BudgetDay(scope="research", day=date.today(), cap_usd=5, spent_usd=1.25, remaining_usd=3.5)
    )
    metrics.generation(
        GenerationResult(
            role="designer",
            generation=4,
            seed=1,
            hypervolume=0.42,
            archive_hypervolume=0.5,
            best_success_rate=0.75,
        )
    )
    samples = scrape(port)

    exported = {name for m in METRICS for name in m.exported()}
    assert exported <= set(samples), exported - set(samples)
    model = {"role": "designer", "provider": "anthropic", "model": "claude-x"}
    assert value(samples, "stratlab_llm_calls_total", **model, outcome="ok", cached="false") == 1
    assert value(samples, "stratlab_llm_calls_total", **model, outcome="ok", cached="true") == 1
    assert value(samples, "stratlab_llm_calls_total", **model, outcome="error") == 1
    assert value(samples, "stratlab_llm_rejected_answers_total", outcome="malformed") == 1
    assert value(samples, "stratlab_llm_tokens_total", direction="input") == 2000
    assert value(samples, "stratlab_llm_cost_usd_sum", **model) == pytest.approx(0.006)
    assert value(samples, "stratlab_llm_cost_usd_count", **model) == 3
    # Only the answered, uncached call has a latency.
    assert value(samples, "stratlab_llm_latency_seconds_count", **model) == 1
    assert value(samples, "stratlab_llm_latency_seconds_sum", **model) == pytest.approx(1.5)
    assert value(samples, "stratlab_gate_results_total", gate="backtest", result="failed") == 1
    assert value(samples, "stratlab_gate_check_failures_total", check="sharpe") == 1
    assert "win_rate" not in {
        lab["check"] for lab, _ in samples["stratlab_gate_check_failures_total"]
    }
    assert value(samples, "stratlab_cycles_total", outcome="failed_backtest_gate") == 1
    assert value(samples, "stratlab_cycle_phase_active", phase="train") == 1
    assert value(samples, "stratlab_phase_duration_seconds_sum", phase="train", status="ok") == 2
    assert value(samples, "stratlab_budget_remaining_usd", scope="research") == 3.5
    assert value(samples, "stratlab_budget_spent_usd", scope="research") == 1.25
    assert value(samples, "stratlab_generation", role="designer") == 4
    assert value(samples, "stratlab_generation_hypervolume", role="designer") == 0.42
    assert value(samples, "stratlab_generation_best_success_rate", role="designer") == 0.75
    assert {lab["pool"] for series in samples.values() for lab, _ in series} == {"llm"}


def test_a_busy_metrics_port_is_a_clear_error_and_no_port_means_no_runtime(
    served: tuple[Runtime, int],
) -> None:
    _, port = served
    with pytest.raises(StackError, match=f"cannot serve metrics on port {port}"):
        metrics_runtime(Settings(metrics_port=port), pools="compute")
    assert metrics_runtime(Settings(), pools="compute") is None


# --- observers never break the call they watch ------------------------------------------


class Broken:
    """Every method of a metrics sink or tracer raises."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"exporter down ({name})")

        return fail


def a_call() -> CallTrace:
    request = LlmRequest(role="designer", system="s", prompt="p", schema_name="X", json_schema={})
    return CallTrace(request=request, model="claude-x", action_id="a1", scope="research")


async def test_broken_sinks_cost_telemetry_not_the_call() -> None:
    observers = [
        LlmSpanObserver(Broken()),  # type: ignore[arg-type]
        LlmLogObserver(),
        LlmMetricsObserver(Broken(), None, Settings()),  # type: ignore[arg-type]
    ]
    call = a_call()
    with observed(observers, call):
        call.record = record()
    for observer in observers:
        observer.relabel(record(outcome="invalid"))

    # The call's own failure goes through unchanged.
    with pytest.raises(ValueError, match="provider said no"), observed(observers, a_call()):
        raise ValueError("provider said no")


def test_observers_follow_what_is_on() -> None:
    off = call_observers(Settings())
    assert [type(o) for o in off] == [LlmLogObserver]
    tracer = TracerProvider().get_tracer("t")
    on = call_observers(Settings(), instruments=Instruments(LabMetrics.off(), tracer))
    assert [type(o) for o in on] == [LlmSpanObserver, LlmLogObserver]
    assert all(isinstance(o.observe(a_call()), AbstractContextManager) for o in on)


def test_tracing_is_off_unless_configured_and_exports_to_the_otlp_traces_path() -> None:
    assert tracer_provider(Settings()) is None
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces/") == "http://collector:4318/v1/traces"
    provider = build_tracer_provider(
        Settings(otel_service_name="lab-a", otel_endpoint="http://127.0.0.1:9"), pool="llm"
    )
    try:
        assert provider.resource.attributes["service.name"] == "lab-a"
        assert provider.resource.attributes["stratlab.pool"] == "llm"
    finally:
        provider.shutdown()
