"""The Anthropic provider through the real SDK against the local fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from anthropic import AsyncAnthropic

from stratlab.config import Settings
from stratlab.llm.anthropic_provider import AnthropicProvider, tool_name
from stratlab.llm.base import LlmRequestError, LlmTransientError
from stratlab.llm.factory import build_provider
from stratlab.models.llm import LlmRequest
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}}
KEY = "sk-ant-test-not-a-secret"


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


def _settings(server: FakeLlmServer, **changes: object) -> Settings:
    values: dict[str, object] = {
        "llm_provider": "anthropic",
        "anthropic_base_url": server.anthropic_base_url,
        "anthropic_api_key": KEY,
        "llm_timeout_seconds": 5.0,
        "max_output_tokens": 512,
    }
    values.update(changes)
    return Settings.model_validate(values)


def _provider(server: FakeLlmServer, **changes: object) -> AnthropicProvider:
    return AnthropicProvider(_settings(server, **changes))


def _request(**changes: object) -> LlmRequest:
    request = LlmRequest(
        role="assessor",
        system="You assess.",
        prompt="Assess this.",
        schema_name="Assessment v1",
        json_schema=SCHEMA,
        max_output_tokens=1024,
        temperature=0.3,
    )
    return request.model_copy(update=changes)


async def test_a_forced_tool_answer_becomes_json_text_with_usage(server: FakeLlmServer) -> None:
    server.script(FakeReply(content='{"verdict": "accept"}', prompt_tokens=42, completion_tokens=9))
    response = await _provider(server).complete(_request())
    assert json.loads(response.text) == {"verdict": "accept"}
    assert (response.input_tokens, response.output_tokens) == (42, 9)
    assert response.provider == "anthropic" and response.model == "claude-sonnet-4-5"
    assert response.stop_reason == "end" and not response.tokens_estimated
    assert response.latency_ms > 0 and not response.latency_simulated

    [sent] = server.requests
    assert sent.path == "/v1/messages"
    assert "anthropic-version" in sent.headers
    assert KEY in (sent.headers.get("authorization", "") + sent.headers.get("x-api-key", ""))
    body = sent.json()
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == 512  # the request's 1024, capped by Settings
    assert body["system"] == "You assess."
    assert body["messages"] == [{"role": "user", "content": "Assess this."}]
    assert [t["name"] for t in body["tools"]] == ["Assessment_v1"]
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert body["tool_choice"]["type"] == "tool"
    assert body["tool_choice"]["name"] == "Assessment_v1"
    # API version 2026-10-21 rejects sampling parameters, even at their defaults.
    assert "temperature" not in body


async def test_model_comes_from_the_request_then_settings(server: FakeLlmServer) -> None:
    provider = _provider(server, llm_model="claude-haiku-4-5")
    assert provider.model_for(_request()) == "claude-haiku-4-5"
    assert provider.model_for(_request(model="claude-opus-4-5")) == "claude-opus-4-5"
    await provider.complete(_request(model="claude-opus-4-5"))
    assert server.requests[0].json()["model"] == "claude-opus-4-5"


async def test_prompt_cache_input_counts_as_input(server: FakeLlmServer) -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 90,
        "output_tokens": 3,
    }
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "tool_use", "id": "t1", "name": "Assessment_v1", "input": {}}],
        "stop_reason": "tool_use",
        "usage": usage,
    }
    server.script(FakeReply(body=message))
    response = await _provider(server).complete(_request())
    assert (response.input_tokens, response.output_tokens) == (105, 3)
    assert response.model == "claude-sonnet-4-5-20250929" and response.text == "{}"


async def test_an_answer_without_the_tool_falls_back_to_its_text(server: FakeLlmServer) -> None:
    server.script(FakeReply(content="Sure! {not json"))
    response = await _provider(server).complete(_request())
    assert response.text == "Sure! {not json" and response.stop_reason == "end"


async def test_truncation_and_refusal_are_classified_not_parsed(server: FakeLlmServer) -> None:
    server.script(
        FakeReply(content='{"verdict": "acc', stop_reason="max_tokens", completion_tokens=512),
        FakeReply(refusal="I won't assess that."),
    )
    provider = _provider(server)
    truncated = await provider.complete(_request())
    assert truncated.stop_reason == "max_tokens" and truncated.output_tokens == 512
    refused = await provider.complete(_request())
    assert refused.stop_reason == "refusal" and refused.text == "I won't assess that."


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_client_errors_are_not_retryable_and_sent_once(
    server: FakeLlmServer, status: int
) -> None:
    server.script(FakeReply(status=status))
    with pytest.raises(LlmRequestError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.status_code == status and not caught.value.retryable
    assert str(caught.value).startswith(f"anthropic returned {status}")
    assert "\n" not in str(caught.value) and KEY not in str(caught.value)
    assert len(server.requests) == 1


async def test_overloaded_529_is_transient_and_names_the_error_type(
    server: FakeLlmServer,
) -> None:
    server.script(FakeReply(status=529))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.status_code == 529 and caught.value.retry_after is None
    assert str(caught.value) == "anthropic returned 529 overloaded_error: fake server error 529"
    assert len(server.requests) == 1  # max_retries=0: Temporal owns retries


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "250"}, 0.25), ({}, None)],
)
async def test_rate_limit_carries_the_retry_hint(
    server: FakeLlmServer, headers: dict[str, str], expected: float | None
) -> None:
    server.script(FakeReply(status=429, headers=headers))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.retry_after == expected and caught.value.status_code == 429


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(server: FakeLlmServer, status: int) -> None:
    server.script(FakeReply(status=status, raw="<html>bad gateway</html>"))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.status_code == status
    assert len(server.requests) == 1


async def test_read_timeout_is_transient(server: FakeLlmServer) -> None:
    server.script(FakeReply(content="{}", delay_seconds=2.0))
    with pytest.raises(LlmTransientError, match=r"^anthropic request timed out after 0\.3s$"):
        await _provider(server, llm_timeout_seconds=0.3).complete(_request())


async def test_connection_reset_is_transient(server: FakeLlmServer) -> None:
    server.script(FakeReply(reset=True))
    with pytest.raises(LlmTransientError, match=r"^anthropic connection error"):
        await _provider(server).complete(_request())
    assert len(server.requests) == 1


async def test_connection_refused_is_transient() -> None:
    with FakeLlmServer() as fake:
        settings = _settings(fake, llm_timeout_seconds=2)
    with pytest.raises(LlmTransientError, match="connection error"):
        await AnthropicProvider(settings).complete(_request())


def test_tool_names_are_sanitised() -> None:
    assert tool_name("Assessment v1") == "Assessment_v1"
    assert tool_name("a.b/c") == "a_b_c"
    assert tool_name("") == "answer"
    assert len(tool_name("x" * 100)) == 64


def test_the_factory_builds_it_from_a_key_and_refuses_without(server: FakeLlmServer) -> None:
    assert isinstance(build_provider(_settings(server, llm_provider="auto")), AnthropicProvider)
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        build_provider(_settings(server, anthropic_api_key=None))


async def test_models_are_listed_like_anthropic_lists_them(server: FakeLlmServer) -> None:
    client = AsyncAnthropic(api_key=KEY, base_url=server.anthropic_base_url, max_retries=0)
    page = await client.models.list()
    assert [m.id for m in page.data] == ["claude-sonnet-4-5", "gpt-4o-mini"]
    await client.close()
    assert server.requests[-1].method == "GET" and server.calls() == []
