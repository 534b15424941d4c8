"""One research cycle is one trace: client → workflow → activities → LLM calls and gates.

The lab's workers run in-process on a client that carries Temporal's tracing interceptor
(what ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns on), with spans going to an in-memory
exporter instead of OTLP. The spans are then checked against the database: the LLM
spans carry the tokens and cost of their ``agent_actions`` rows, the gate spans the
results stored with the training run and the backtest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from stratlab.config import Settings
from stratlab.store.db import Pool
from stratlab.telemetry.tracing import build_tracer_provider
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import Lab, lab_settings, rows, running_traced_lab

pytestmark = pytest.mark.slow


@pytest.fixture
async def traced(
    temporal_client: Client, db_pool: Pool, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Lab, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(Settings(), pool="test", exporter=exporter)
    settings = lab_settings(database_url, tmp_path)
    try:
        async with running_traced_lab(temporal_client, db_pool, settings, provider) as lab:
            yield lab, exporter, provider
    finally:
        provider.shutdown()


def _by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    assert span.parent is not None, span.name
    parents = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parents[0].name if parents else None


async def test_one_trace_covers_the_cycle_its_activities_llm_calls_and_gates(
    traced: tuple[Lab, InMemorySpanExporter, TracerProvider],
) -> None:
    lab, exporter, provider = traced
    handle = await lab.start_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result.outcome == "success", result
    provider.force_flush()
    spans = list(exporter.get_finished_spans())
    names = {s.name for s in spans}

    # One trace: the client's start, the workflow run and everything below it.
    (start,) = _by_name(spans, "StartWorkflow:ResearchCycleWorkflow")
    assert {s.context.trace_id for s in spans} == {start.context.trace_id}
    expected = {
        "StartWorkflow:ResearchCycleWorkflow",
        "RunWorkflow:ResearchCycleWorkflow",
        "RunActivity:start_session",
        "RunActivity:design_strategy",
        "RunActivity:train_strategy",
        "RunActivity:run_backtest",
        "RunActivity:assess_strategy",
        "RunActivity:finish_session",
        "gate training",
        "gate backtest",
    }
    assert expected <= names, expected - names
    workflow_id = f"research-{result.session_id}"
    for span in spans:
        if span.name.startswith("RunActivity:"):
            assert span.attributes is not None
            assert span.attributes["temporalWorkflowID"] == workflow_id

    # One CLIENT span per LLM call, inside the activity that made it, as recorded.
    actions = await rows(
        lab,
        "SELECT * FROM agent_actions WHERE session_id = %(s)s",
        s=result.session_id,
    )
    llm_spans = [s for s in spans if s.name.startswith("chat ")]
    assert len(llm_spans) == len(actions) >= 2
    by_action = {str(a["action_id"]): a for a in actions}
    roles = set()
    for span in llm_spans:
        attrs = dict(span.attributes or {})
        row = by_action[str(attrs["stratlab.action_id"])]
        roles.add(attrs["stratlab.role"])
        assert attrs["stratlab.role"] == row["role"]
        assert attrs["gen_ai.usage.input_tokens"] == row["input_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] == row["output_tokens"] > 0
        assert attrs["stratlab.cost_usd"] == pytest.approx(float(row["cost_usd"]))
        assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == row["provider"]
        assert attrs["gen_ai.response.model"] == row["model"]
        assert attrs["stratlab.prompt_id"] == row["prompt_id"]
        assert attrs["stratlab.session_id"] == result.session_id
        assert attrs["stratlab.outcome"] == row["outcome"]
        assert attrs["stratlab.cached"] is False
        parent = {"designer": "design_strategy", "assessor": "assess_strategy"}[row["role"]]
        assert _parent_name(span, spans) == f"RunActivity:{parent}"
    assert roles == {"designer", "assessor"}

    # Gate spans say what the stored gate results say.
    (training,) = await rows(
        lab, "SELECT gate FROM training_runs WHERE session_id = %(s)s", s=result.session_id
    )
    (backtest,) = await rows(
        lab, "SELECT gate FROM backtests WHERE session_id = %(s)s", s=result.session_id
    )
    for name, stored, activity in (
        ("gate training", training["gate"], "train_strategy"),
        ("gate backtest", backtest["gate"], "run_backtest"),
    ):
        (span,) = _by_name(spans, name)
        attrs: dict[str, Any] = dict(span.attributes or {})
        assert attrs["stratlab.gate.passed"] is stored["passed"] is True
        failed = [c["name"] for c in stored["checks"] if not c["passed"]]
        assert list(attrs["stratlab.gate.failed_checks"]) == failed
        for check in stored["checks"]:
            assert attrs[f"stratlab.gate.check.{check['name']}"] == pytest.approx(check["value"])
        assert _parent_name(span, spans) == f"RunActivity:{activity}"
