"""Langfuse against a local receiver (tests/fixtures/otlp_receiver.py), through the real SDK
and real workers: a cycle's LLM calls arrive as generations that match ``agent_actions``
row for row, a regression run arrives as an experiment run over its benchmark tasks with
the scores the store measured, and a Langfuse that fails or is gone fails nothing.

With tracing on, the lab's and Temporal's spans arrive too, around the generations.

Each test prebuilds its Langfuse sink on a tracer provider of its own, so the process's
shared provider (``stratlab.telemetry.tracing``) is left to the tests that own it; the
workers then find that sink by its key. ``shutdown_langfuse`` flushes, as a worker does
when it stops, before the test reads what arrived.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client

from stratlab.config import Settings
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.prompts import PromptRepo
from stratlab.telemetry.langfuse import langfuse_sink, shutdown_langfuse
from stratlab.telemetry.tracing import build_tracer_provider
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.optimization import REGRESSION_TASKS, run_regression
from tests.fixtures.otlp_receiver import TRACES_PATH, LangfuseReceiver
from tests.fixtures.temporal import Lab, lab_settings, rows, running_traced_lab


@pytest.fixture
def receiver() -> Iterator[LangfuseReceiver]:
    with LangfuseReceiver() as r:
        yield r


@pytest.fixture
def outage() -> str:
    """Parametrized by the outage tests: "500" (every request fails) or "down"."""
    return "none"


@pytest.fixture
def langfuse_url(receiver: LangfuseReceiver, outage: str) -> str:
    if outage == "down":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}"
    receiver.status = 500 if outage == "500" else 200
    return receiver.base_url


def _fields(url: str) -> dict[str, Any]:
    return {
        # A key per test: the SDK keeps one client per public key per process.
        "langfuse_public_key": f"pk-lf-{uuid.uuid4().hex[:12]}",
        "langfuse_secret_key": "sk-lf-test-not-a-secret",
        "langfuse_base_url": url,
    }


@pytest.fixture
async def langfuse_fields(langfuse_url: str) -> AsyncIterator[dict[str, Any]]:
    fields = _fields(langfuse_url)
    provider = TracerProvider()
    assert langfuse_sink(Settings(**fields), tracer_provider=provider) is not None
    yield fields
    await shutdown_langfuse(Settings(**fields))
    provider.shutdown()


@pytest.fixture
def garbage_llm() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(default=FakeReply(content="Sure! Buy low, sell high.")) as server:
        yield server


@pytest.fixture
def llm_fields(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The offline provider, or with ``"garbage"`` a model that never answers JSON."""
    if getattr(request, "param", None) != "garbage":
        return {}
    server = request.getfixturevalue("garbage_llm")
    return {
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "openai_base_url": server.base_url,
        "openai_api_key": "sk-test-not-a-secret",
    }


@pytest.fixture
def lab_overrides(langfuse_fields: dict[str, Any], llm_fields: dict[str, Any]) -> dict[str, Any]:
    return {**langfuse_fields, **llm_fields}


async def test_every_llm_call_of_a_cycle_is_a_generation_like_its_row(
    lab: Any, receiver: LangfuseReceiver
) -> None:
    result = await lab.run_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    await shutdown_langfuse(lab.settings)

    actions = await rows(
        lab,
        "SELECT a.*, p.version FROM agent_actions a JOIN prompts p USING (prompt_id)"
        " WHERE a.session_id = %(s)s",
        s=result.session_id,
    )
    assert {a["role"] for a in actions} == {"designer", "assessor"}
    generations = {g.metadata("action_id"): g for g in receiver.generations()}
    assert sorted(generations) == sorted(a["action_id"] for a in actions)
    for action in actions:
        generation = generations[action["action_id"]]
        assert generation.name == action["role"]
        assert generation.attributes["langfuse.observation.model.name"] == action["model"]
        assert generation.attributes["session.id"] == result.session_id
        assert generation.json("langfuse.observation.usage_details") == {
            "input": action["input_tokens"],
            "output": action["output_tokens"],
            "total": action["input_tokens"] + action["output_tokens"],
        }
        cost = generation.json("langfuse.observation.cost_details")
        assert cost == {"total": pytest.approx(float(action["cost_usd"]), rel=1e-9)}
        assert cost["total"] > 0
        latency_ms = (generation.end_ns - generation.start_ns) / 1e6
        assert latency_ms == pytest.approx(action["latency_ms"], abs=0.01)
        assert generation.metadata("prompt_id") == action["prompt_id"]
        assert generation.metadata("prompt_version") == action["version"]
        assert generation.metadata("provider") == action["provider"] == "offline"
        assert generation.metadata("outcome") == action["outcome"]
        assert generation.metadata("scope") == "research"
        assert generation.metadata("latency_simulated") is True
        system, user = generation.json("langfuse.observation.input")
        assert system["role"] == "system" and user["role"] == "user" and user["content"]
        assert generation.attributes["langfuse.observation.output"]
    # The keys came from Settings, and the secret only ever travelled as basic auth.
    (auth,) = {r.headers["authorization"] for r in receiver.to(TRACES_PATH)}
    expected = f"{lab.settings.langfuse_public_key}:sk-lf-test-not-a-secret".encode()
    assert auth == "Basic " + base64.b64encode(expected).decode()


@pytest.fixture
async def traced_lab(
    temporal_client: Client,
    db_pool: Pool,
    database_url: str,
    tmp_path: Path,
    langfuse_url: str,
) -> AsyncIterator[Lab]:
    """The lab with tracing on, as ``start_telemetry`` sets it up, on a provider of its
    own that plays the process's shared one: Langfuse hangs its processor on it."""
    provider = build_tracer_provider(Settings(), pool="test")
    settings = lab_settings(database_url, tmp_path, **_fields(langfuse_url))
    assert langfuse_sink(settings, tracer_provider=provider) is not None
    try:
        async with running_traced_lab(temporal_client, db_pool, settings, provider) as lab:
            yield lab
    finally:
        await shutdown_langfuse(settings)
        provider.shutdown()


async def test_with_tracing_on_the_lab_spans_reach_langfuse_around_the_generations(
    traced_lab: Lab, receiver: LangfuseReceiver
) -> None:
    result = await traced_lab.run_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    await shutdown_langfuse(traced_lab.settings)

    spans = receiver.spans()
    by_id = {s.span_id: s for s in spans}
    names = {s.name for s in spans}
    assert {
        "RunWorkflow:ResearchCycleWorkflow",
        "RunActivity:design_strategy",
        "RunActivity:assess_strategy",
        "gate training",
        "gate backtest",
    } <= names
    # The lab's, Temporal's and Langfuse's spans, all in the cycle's one trace.
    assert {s.scope.split(".")[0] for s in spans} == {"temporalio", "stratlab", "langfuse-sdk"}
    assert len({s.trace_id for s in spans}) == 1
    generations = receiver.generations()
    assert {g.name for g in generations} == {"designer", "assessor"}
    for generation in generations:
        call = by_id[generation.parent_span_id]  # the lab's span of the same LLM call
        assert call.name.startswith("chat ") and call.scope == "stratlab"
        assert call.attributes["stratlab.action_id"] == generation.metadata("action_id")
        activity = {"designer": "design_strategy", "assessor": "assess_strategy"}[generation.name]
        assert by_id[call.parent_span_id].name == f"RunActivity:{activity}"
        assert generation.attributes["session.id"] == result.session_id


@pytest.mark.parametrize("llm_fields", ["garbage"], indirect=True)
async def test_a_rejected_answer_is_scored_on_its_generation(
    lab: Any, receiver: LangfuseReceiver
) -> None:
    result = await lab.run_cycle(symbol="sp500")
    await shutdown_langfuse(lab.settings)
    assert result.outcome == "failed_design"

    actions = await rows(
        lab, "SELECT * FROM agent_actions WHERE session_id = %(s)s", s=result.session_id
    )
    assert [a["outcome"] for a in actions] == ["malformed", "malformed"]  # answer + repair
    generations = {g.metadata("action_id"): g for g in receiver.generations()}
    assert sorted(generations) == sorted(a["action_id"] for a in actions)
    scores = {(s["traceId"], s["observationId"]): s for s in receiver.scores()}
    for action in actions:
        generation = generations[action["action_id"]]
        assert generation.attributes["langfuse.observation.model.name"] == "gpt-4o-mini"
        assert generation.metadata("provider") == "openai"
        assert generation.json("langfuse.observation.cost_details")["total"] > 0  # billed
        score = scores[(generation.trace_id, generation.span_id)]
        assert (score["name"], score["value"]) == ("outcome", "malformed")
        assert score["comment"] == action["error"][:500]


async def test_a_regression_run_is_an_experiment_run_over_its_tasks(
    lab: Any, receiver: LangfuseReceiver
) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    tasks = REGRESSION_TASKS[:2]
    _, run = await run_regression(
        lab, prompt_id=prod.id, task_ids=tasks, max_parallel=2, reuse=False
    )
    await shutdown_langfuse(lab.settings)
    results = await ExperimentRepo(lab.db).results(run.experiment_id)
    assert run.status == "completed" and run.fitness is not None and len(results) == 2

    # The benchmark tasks are the dataset's items: input the task, expected output its criteria.
    items = {r.body["id"]: r.body for r in receiver.to("/api/public/dataset-items")}
    assert sorted(items) == sorted(f"stratlab-{t}" for t in tasks)
    spans = receiver.spans()
    runs = [s for s in spans if s.name == "experiment-item-run"]
    assert len(runs) == 2
    assert {s.attributes["langfuse.experiment.id"] for s in runs} == {run.experiment_id}
    metadata = runs[0].json("langfuse.experiment.metadata")
    assert metadata["prompt_id"] == prod.id and metadata["prompt_version"] == prod.version
    assert metadata["role"] == "designer" and metadata["experiment_id"] == run.experiment_id
    assert prod.version in runs[0].attributes["langfuse.experiment.name"]

    scores = receiver.scores()
    by_task = {s.json("langfuse.experiment.item.metadata")["task_id"]: s for s in runs}
    definitions = {t.task_id: t for t in await BenchmarkRepo(lab.db).get_many(tasks)}
    for result in results:
        task = definitions[result.task_id]
        span = by_task[task.task_id]
        assert span.attributes["langfuse.experiment.item.id"] == f"stratlab-{task.task_id}"
        given = span.json("langfuse.observation.input")
        assert (given["symbol"], given["period"]["start"]) == (task.symbol, task.start.isoformat())
        assert given["criteria"] == [c.describe() for c in task.criteria]
        expected = span.json("langfuse.experiment.item.expected_output")
        assert expected == {"criteria": [c.model_dump() for c in task.criteria]}
        output = span.json("langfuse.observation.output")
        assert output["passed"] == result.passed and output["outcome"] == result.outcome
        assert output["session_id"] == result.session_id
        measured = {s["name"]: s["value"] for s in scores if s.get("traceId") == span.trace_id}
        assert measured == {
            "success": float(result.passed),
            "tokens": result.tokens,
            "cost_usd": pytest.approx(result.cost_usd),
            "latency_ms": pytest.approx(result.latency_ms),
        }
        # The item sits in its cycle's session, beside that cycle's generations.
        (task_span,) = [
            s for s in spans if s.trace_id == span.trace_id and s.name == "experiment-item-task"
        ]
        assert task_span.attributes["session.id"] == result.session_id
        cycle = [g for g in receiver.generations() if g.metadata("session_id") == result.session_id]
        assert cycle and {g.metadata("scope") for g in cycle} == {"optimizer"}

    fitness = {s["name"]: s["value"] for s in scores if s.get("datasetRunId") == run.experiment_id}
    assert fitness == pytest.approx(
        {
            "success_rate": run.fitness.success_rate,
            "mean_tokens": run.fitness.mean_tokens,
            "mean_latency_ms": run.fitness.mean_latency_ms,
            "cost_usd": run.fitness.cost_usd,
        }
    )


@pytest.mark.parametrize("outage", ["500", "down"])
async def test_a_langfuse_outage_fails_neither_the_cycle_nor_the_run(
    lab: Any, receiver: LangfuseReceiver, outage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(lab.settings.langfuse_base_url.rsplit(":", 1)[1])
    tries: list[Any] = []
    connect = socket.socket.connect

    def counting_connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[1] == port:
            tries.append(address)
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    prod = await PromptRepo(lab.db).current_prod("designer")
    _, run = await run_regression(
        lab, prompt_id=prod.id, task_ids=REGRESSION_TASKS[:1], reuse=False
    )
    await shutdown_langfuse(lab.settings)

    (result,) = await ExperimentRepo(lab.db).results(run.experiment_id)
    assert run.status == "completed" and run.fitness is not None and run.fitness.tasks == 1
    (session,) = await rows(
        lab, "SELECT outcome FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["outcome"] == result.outcome is not None
    # Langfuse was on and tried: the generations and the publication met the outage.
    assert tries
    if outage == "500":
        assert receiver.to(TRACES_PATH) and receiver.to("/api/public/v2/datasets")
        assert {r.status for r in receiver.received} == {500}
    else:
        assert receiver.received == []
