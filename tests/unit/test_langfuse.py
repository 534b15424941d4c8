"""The Langfuse integration without Temporal or Postgres: off means nothing is built or
sent; on, a generation carries what the call recorded, including a prompt version that
arrives after the call ended and an outcome rejected after it; a broken SDK changes
nothing for the call. Spans go to the local receiver, through the real SDK."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from stratlab.config import Settings
from stratlab.evolution.langfuse_runs import langfuse_experiments
from stratlab.llm.observe import CallTrace, observed
from stratlab.models.llm import LlmCallRecord, LlmRequest, LlmResponse
from stratlab.models.prompts import PromptRecord
from stratlab.telemetry.langfuse import (
    LangfuseObserver,
    LangfuseSink,
    langfuse_sink,
    shutdown_langfuse,
    span_filter,
)
from stratlab.telemetry.observers import call_observers
from tests.fixtures.otlp_receiver import LangfuseReceiver


@pytest.fixture
def receiver() -> Iterator[LangfuseReceiver]:
    with LangfuseReceiver() as r:
        yield r


def _settings(base_url: str, **fields: Any) -> Settings:
    # A key per test: the SDK keeps one client per public key per process.
    values = {
        "langfuse_public_key": f"pk-lf-{uuid.uuid4().hex[:12]}",
        "langfuse_secret_key": "sk-lf-not-a-secret",
        "langfuse_base_url": base_url,
        **fields,
    }
    return Settings(**values)


def _call(action_id: str, *, prompt_id: str = "prompt-1") -> CallTrace:
    request = LlmRequest(
        role="designer", system="You design.", prompt="Design one.", schema_name="S", json_schema={}
    )
    return CallTrace(
        request=request,
        model="fake-model",
        action_id=action_id,
        scope="research",
        session_id="session-1",
        prompt_id=prompt_id,
        iteration=1,
    )


def _answer(trace: CallTrace, *, latency_ms: float = 250.0) -> None:
    trace.response = LlmResponse(
        text='{"name": "x"}',
        provider="openai",
        model="fake-model",
        input_tokens=120,
        output_tokens=30,
        latency_ms=latency_ms,
    )
    trace.record = LlmCallRecord(
        action_id=trace.action_id,
        session_id=trace.session_id,
        role="designer",
        prompt_id=trace.prompt_id,
        provider="openai",
        model="fake-model",
        input_tokens=120,
        output_tokens=30,
        cost_usd=0.00081,
        latency_ms=latency_ms,
    )


async def test_without_keys_nothing_is_built_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import langfuse

    built: list[dict[str, Any]] = []

    class RecordingLangfuse:
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)

        def shutdown(self) -> None:
            return None

    connects: list[Any] = []
    connect = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> None:
        connects.append(address)
        connect(self, address)

    monkeypatch.setattr(langfuse, "Langfuse", RecordingLangfuse)
    monkeypatch.setattr(socket.socket, "connect", recording_connect)

    for off in (Settings(), Settings(langfuse_public_key="pk-lf-only-the-public-key")):
        assert langfuse_sink(off) is None
        assert langfuse_experiments(off) is None
        assert not any(isinstance(o, LangfuseObserver) for o in call_observers(off))
        await shutdown_langfuse(off)
    assert built == [] and connects == []

    # The same calls with both keys do build it, from Settings (so the test above can fail).
    on = _settings("http://127.0.0.1:9")
    assert langfuse_sink(on, tracer_provider=TracerProvider()) is not None
    assert any(isinstance(o, LangfuseObserver) for o in call_observers(on))
    assert langfuse_experiments(on) is not None
    await shutdown_langfuse(on)
    assert len(built) == 1 and connects == []
    assert built[0]["public_key"] == on.langfuse_public_key
    assert built[0]["secret_key"] == "sk-lf-not-a-secret"
    assert built[0]["base_url"] == "http://127.0.0.1:9"


def test_without_keys_the_sdk_is_not_even_imported() -> None:
    code = (
        "import sys\n"
        "from stratlab.config import Settings\n"
        "from stratlab.evolution.langfuse_runs import langfuse_experiments\n"
        "from stratlab.telemetry.observers import call_observers\n"
        "call_observers(Settings()); langfuse_experiments(Settings())\n"
        "print('langfuse' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("scope", "attributes", "exported"),
    [
        ("stratlab", {}, True),
        ("stratlab.telemetry.llm", {}, True),
        ("temporalio.contrib.opentelemetry", {}, True),
        ("langfuse-sdk", {}, True),
        ("opentelemetry.instrumentation.openai", {}, True),
        ("psycopg", {"gen_ai.request.model": "m"}, True),
        ("psycopg", {}, False),
        ("opentelemetry.instrumentation.httpx", {}, False),
        ("stratlabx", {}, True),  # a prefix, like every "stratlab…" scope
    ],
)
def test_the_lab_and_temporal_spans_reach_langfuse_and_others_do_not(
    scope: str, attributes: dict[str, Any], exported: bool
) -> None:
    span = ReadableSpan(
        name="x", instrumentation_scope=InstrumentationScope(scope), attributes=attributes
    )
    assert span_filter()(span) is exported


async def test_langfuse_hangs_its_processor_on_the_shared_tracer_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stratlab.telemetry.tracing as tracing

    shared = TracerProvider()
    asked: list[Settings] = []

    def shared_provider(settings: Settings, *, pool: str = "") -> TracerProvider:
        asked.append(settings)
        return shared

    monkeypatch.setattr(tracing, "tracer_provider", shared_provider)
    settings = _settings("http://127.0.0.1:9")
    processors = len(shared._active_span_processor._span_processors)
    assert langfuse_sink(settings) is not None
    await shutdown_langfuse(settings)
    assert asked == [settings]
    assert len(shared._active_span_processor._span_processors) == processors + 1
    shared.shutdown()


class SlowPrompts:
    """A prompt registry that answers only when released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.lookups = 0

    async def get(self, prompt_id: str) -> PromptRecord | None:
        self.lookups += 1
        await self.release.wait()
        return PromptRecord(
            id=prompt_id, role="designer", version="2.1.0", content="x", content_hash="h"
        )


async def test_a_generation_waits_for_its_prompt_version_and_takes_a_late_relabel(
    receiver: LangfuseReceiver,
) -> None:
    settings = _settings(receiver.base_url)
    provider = TracerProvider()
    sink = langfuse_sink(settings, tracer_provider=provider)
    assert sink is not None
    prompts = SlowPrompts()
    observer = LangfuseObserver(sink, prompts)

    first, second = _call("action-1"), _call("action-2")
    with observed([observer], first):
        _answer(first)
    # The version lookup is still running: the generation is open and takes the new outcome.
    observer.relabel(first.record.model_copy(update={"outcome": "malformed", "error": "no JSON"}))  # type: ignore[union-attr]
    with observed([observer], second):
        _answer(second, latency_ms=40.0)
    prompts.release.set()
    await shutdown_langfuse(settings)
    provider.shutdown()

    assert prompts.lookups == 1  # one read per prompt, however many calls
    generations = {g.metadata("action_id"): g for g in receiver.generations()}
    assert sorted(generations) == ["action-1", "action-2"]
    rejected, accepted = generations["action-1"], generations["action-2"]
    for generation in (rejected, accepted):
        assert generation.name == "designer"
        assert generation.attributes["session.id"] == "session-1"
        assert generation.attributes["langfuse.observation.model.name"] == "fake-model"
        assert generation.metadata("prompt_id") == "prompt-1"
        assert generation.metadata("prompt_version") == "2.1.0"
        assert generation.attributes["langfuse.version"] == "2.1.0"
        assert generation.json("langfuse.observation.usage_details") == {
            "input": 120,
            "output": 30,
            "total": 150,
        }
        assert generation.json("langfuse.observation.cost_details") == {"total": 0.00081}
    assert (rejected.end_ns - rejected.start_ns) / 1e6 == pytest.approx(250.0, abs=0.01)
    assert (accepted.end_ns - accepted.start_ns) / 1e6 == pytest.approx(40.0, abs=0.01)
    assert rejected.metadata("outcome") == "malformed"
    assert rejected.attributes["langfuse.observation.level"] == "WARNING"
    assert rejected.attributes["langfuse.observation.status_message"] == "no JSON"
    assert accepted.metadata("outcome") == "ok"
    assert "langfuse.observation.level" not in accepted.attributes
    (score,) = receiver.scores()
    assert score["name"] == "outcome" and score["value"] == "malformed"
    assert (score["traceId"], score["observationId"]) == (rejected.trace_id, rejected.span_id)


class BrokenClient:
    """A Langfuse client whose every call fails (an SDK bug, a full queue)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise RuntimeError(f"langfuse {name} is broken")

        return fail


async def test_a_broken_langfuse_client_changes_nothing_for_the_call() -> None:
    observer = LangfuseObserver(LangfuseSink(BrokenClient()))  # type: ignore[arg-type]
    trace = _call("action-1")
    with observed([observer], trace):
        _answer(trace)
    observer.relabel(trace.record)  # type: ignore[arg-type]

    failing = _call("action-2")
    with (
        pytest.raises(ValueError, match="the provider's own error"),
        observed([observer], failing),
    ):
        raise ValueError("the provider's own error")
