"""The OpenAI-compatible provider through the real SDK against a local fake server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stratlab.config import Settings
from stratlab.llm.base import LlmRequestError, LlmTransientError
from stratlab.llm.openai_compat import OpenAICompatibleProvider, retry_after_seconds
from stratlab.models.llm import LlmRequest
from tests.fixtures.fake_llm_server import FakeOpenAIServer, FakeReply

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def _provider(server: FakeOpenAIServer, **settings: object) -> OpenAICompatibleProvider:
    values: dict[str, object] = {
        "llm_provider": "openai",
        "openai_base_url": server.base_url,
        "openai_api_key": "test-key-not-secret",
        "llm_model": "fake-model-7b",
        "llm_timeout_seconds": 5.0,
        "max_output_tokens": 512,
    }
    values.update(settings)
    return OpenAICompatibleProvider(Settings.model_validate(values))


def _request(**changes: object) -> LlmRequest:
    request = LlmRequest(
        role="assessor",
        system="You assess.",
        prompt="Assess this.",
        schema_name="Assessment v1",
        json_schema=SCHEMA,
        max_output_tokens=1024,
    )
    return request.model_copy(update=changes)


async def test_success_returns_text_usage_and_latency(server: FakeOpenAIServer) -> None:
    server.script(FakeReply(content='{"verdict": "accept"}', prompt_tokens=42, completion_tokens=9))
    response = await _provider(server).complete(_request())
    assert response.text == '{"verdict": "accept"}'
    assert (response.input_tokens, response.output_tokens) == (42, 9)
    assert response.provider == "openai" and response.model == "fake-model-7b"
    assert response.latency_ms > 0 and not response.latency_simulated
    assert not response.tokens_estimated

    [sent] = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer test-key-not-secret"
    body = sent.json()
    assert body["model"] == "fake-model-7b"
    assert body["messages"] == [
        {"role": "system", "content": "You assess."},
        {"role": "user", "content": "Assess this."},
    ]
    assert body["max_tokens"] == 512  # the request's 1024, capped by Settings
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Assessment_v1", "schema": SCHEMA, "strict": False},
    }


async def test_request_model_overrides_settings(server: FakeOpenAIServer) -> None:
    provider = _provider(server)
    request = _request(model="other-model")
    assert provider.model_for(request) == "other-model"
    await provider.complete(request)
    assert server.requests[0].json()["model"] == "other-model"


async def test_missing_usage_is_estimated(server: FakeOpenAIServer) -> None:
    server.script(FakeReply(content="x" * 40, include_usage=False))
    response = await _provider(server).complete(_request())
    assert response.tokens_estimated and response.output_tokens == 10


async def test_malformed_content_comes_back_as_text(server: FakeOpenAIServer) -> None:
    server.set_default(FakeReply(content="Sure! Here is {not json"))
    response = await _provider(server).complete(_request())
    assert response.text == "Sure! Here is {not json"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_client_errors_are_not_retryable_and_sent_once(
    server: FakeOpenAIServer, status: int
) -> None:
    server.script(FakeReply(status=status))
    with pytest.raises(LlmRequestError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.status_code == status and not caught.value.retryable
    assert str(caught.value).startswith(f"openai-compatible server returned {status}")
    assert "test-key-not-secret" not in str(caught.value)
    assert len(server.requests) == 1


async def test_rate_limit_is_transient_with_retry_after(server: FakeOpenAIServer) -> None:
    server.script(FakeReply(status=429, headers={"retry-after": "2"}))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.retryable and caught.value.retry_after == 2.0
    assert caught.value.status_code == 429
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(server: FakeOpenAIServer, status: int) -> None:
    server.script(FakeReply(status=status, raw="<html>bad gateway</html>"))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server).complete(_request())
    assert caught.value.status_code == status and caught.value.retry_after is None
    assert len(server.requests) == 1


async def test_timeout_is_transient(server: FakeOpenAIServer) -> None:
    server.script(FakeReply(content="{}", delay_seconds=2.0))
    with pytest.raises(LlmTransientError, match=r"timed out after 0\.3s"):
        await _provider(server, llm_timeout_seconds=0.3).complete(_request())


async def test_connection_refused_is_transient() -> None:
    with FakeOpenAIServer() as fake:
        base_url = fake.base_url
    settings = Settings(llm_provider="openai", openai_base_url=base_url, llm_timeout_seconds=2)
    with pytest.raises(LlmTransientError, match="connection error"):
        await OpenAICompatibleProvider(settings).complete(_request())


async def test_script_then_default(server: FakeOpenAIServer) -> None:
    server.script(FakeReply(content="first"))
    provider = _provider(server)
    texts = [(await provider.complete(_request())).text for _ in range(3)]
    assert texts == ["first", "{}", "{}"]
    assert [r.json()["model"] for r in server.requests] == ["fake-model-7b"] * 3


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
