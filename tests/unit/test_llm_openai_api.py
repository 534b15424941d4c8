"""The OpenAI provider's stop reasons, and its Responses API path, through the real SDK
against the local fake server (chat completions basics are in test_llm_openai.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI

from stratlab.config import Settings
from stratlab.llm.base import LlmRequestError, LlmTransientError
from stratlab.llm.openai_compat import OpenAICompatibleProvider
from stratlab.models.llm import LlmRequest
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}}


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


def _provider(server: FakeLlmServer, api: str, **changes: object) -> OpenAICompatibleProvider:
    values: dict[str, object] = {
        "llm_provider": "openai",
        "openai_api": api,
        "openai_base_url": server.base_url,
        "openai_api_key": "test-key-not-secret",
        "llm_model": "gpt-4o-mini",
        "llm_timeout_seconds": 5.0,
        "max_output_tokens": 512,
    }
    values.update(changes)
    return OpenAICompatibleProvider(Settings.model_validate(values))


def _request() -> LlmRequest:
    return LlmRequest(
        role="assessor",
        system="You assess.",
        prompt="Assess this.",
        schema_name="Assessment",
        json_schema=SCHEMA,
        max_output_tokens=1024,
        temperature=0.3,
    )


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_cut_off_answer_is_max_tokens(server: FakeLlmServer, api: str) -> None:
    server.script(FakeReply(content='{"verdict": "acc', stop_reason="max_tokens"))
    response = await _provider(server, api).complete(_request())
    assert response.stop_reason == "max_tokens"
    assert response.text == '{"verdict": "acc'


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_refusal_is_classified_with_its_text(server: FakeLlmServer, api: str) -> None:
    server.script(FakeReply(refusal="I can't help with trading advice."))
    response = await _provider(server, api).complete(_request())
    assert response.stop_reason == "refusal"
    assert response.text == "I can't help with trading advice."


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_complete_answer_ends_normally(server: FakeLlmServer, api: str) -> None:
    server.script(FakeReply(content='{"verdict": "accept"}', prompt_tokens=40, completion_tokens=8))
    response = await _provider(server, api).complete(_request())
    assert response.stop_reason == "end" and response.text == '{"verdict": "accept"}'
    assert (response.input_tokens, response.output_tokens) == (40, 8)
    assert response.model == "gpt-4o-mini" and not response.tokens_estimated


async def test_the_responses_api_sends_instructions_input_and_a_json_schema(
    server: FakeLlmServer,
) -> None:
    await _provider(server, "responses").complete(_request())
    [sent] = server.requests
    assert sent.path == "/v1/responses"
    body = sent.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["instructions"] == "You assess." and body["input"] == "Assess this."
    assert body["max_output_tokens"] == 512 and body["temperature"] == 0.3
    assert body["store"] is False
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "Assessment", "schema": SCHEMA, "strict": False}
    }


async def test_responses_without_usage_are_estimated(server: FakeLlmServer) -> None:
    server.script(FakeReply(content="x" * 40, include_usage=False))
    response = await _provider(server, "responses").complete(_request())
    assert response.tokens_estimated and response.output_tokens == 10


async def test_a_failed_response_is_transient(server: FakeLlmServer) -> None:
    body = {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-mini",
        "status": "failed",
        "error": {"code": "server_error", "message": "The model  crashed\nmid-answer"},
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    server.script(FakeReply(status=200, body=body))
    with pytest.raises(LlmTransientError) as caught:
        await _provider(server, "responses").complete(_request())
    assert str(caught.value) == (
        "openai-compatible response failed: server_error: The model crashed mid-answer"
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, LlmTransientError), (500, LlmTransientError), (401, LlmRequestError)],
)
async def test_responses_errors_map_like_chat_errors(
    server: FakeLlmServer, status: int, error: type[Exception]
) -> None:
    server.script(FakeReply(status=status, headers={"retry-after": "3"}))
    with pytest.raises(error) as caught:
        await _provider(server, "responses").complete(_request())
    assert str(caught.value).startswith(f"openai-compatible server returned {status}")
    if isinstance(caught.value, LlmTransientError):
        assert caught.value.retry_after == 3.0
    assert len(server.requests) == 1


async def test_connection_reset_is_transient(server: FakeLlmServer) -> None:
    server.script(FakeReply(reset=True))
    with pytest.raises(LlmTransientError, match="connection error"):
        await _provider(server, "chat").complete(_request())


async def test_models_are_listed_like_openai_lists_them(server: FakeLlmServer) -> None:
    client = AsyncOpenAI(api_key="test", base_url=server.base_url, max_retries=0)
    page = await client.models.list()
    assert [m.id for m in page.data] == ["claude-sonnet-4-5", "gpt-4o-mini"]
    await client.close()
