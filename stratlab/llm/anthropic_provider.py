"""Anthropic's Messages API through the official SDK.

Structured output is a forced tool: the request's JSON schema is the ``input_schema`` of
one tool and ``tool_choice`` names it, so the model answers with a ``tool_use`` block
whose ``input`` is the object; the answer text is that input as JSON (or, should a
server answer without the tool, its text blocks). Why the model stopped is checked
before anything is parsed: ``max_tokens`` (and a full context window) is
``stop_reason="max_tokens"``, ``refusal`` is ``"refusal"``. No temperature is sent: the
SDK speaks API version 2026-10-21, which rejects sampling parameters. The SDK's own
retries are off because Temporal owns retries; SDK exceptions become
``LlmRequestError`` (400, 401, 403, 404, 413, 422) or ``LlmTransientError`` (429, 5xx
including 529 overloaded, timeouts, connection errors) with the server's retry hint.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anthropic
from anthropic import AsyncAnthropic

from stratlab.config import Settings
from stratlab.llm.base import LlmError, LlmRequestError, LlmTransientError, one_line, status_error
from stratlab.llm.pricing import output_token_cap
from stratlab.models.llm import LlmRequest, LlmResponse, StopReason

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# A proxy at anthropic_base_url may need no key, but the SDK would otherwise go looking
# for credentials in the environment and config files behind the Settings object's back.
_PLACEHOLDER_KEY = "not-needed"
_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_STOP_REASONS: dict[str | None, StopReason] = {
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "refusal",
}


class AnthropicProvider:
    """Claude through ``messages.create`` with a forced tool for structured output."""

    name = "anthropic"

    def __init__(self, settings: Settings, *, client: AsyncAnthropic | None = None) -> None:
        self._settings = settings
        self._client = client or AsyncAnthropic(
            api_key=settings.anthropic_api_key or _PLACEHOLDER_KEY,
            base_url=settings.anthropic_base_url or ANTHROPIC_BASE_URL,
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
        )

    def model_for(self, request: LlmRequest) -> str:
        return request.model or self._settings.llm_model or DEFAULT_ANTHROPIC_MODEL

    async def complete(self, request: LlmRequest) -> LlmResponse:
        model = self.model_for(request)
        options: dict[str, Any] = {}
        if request.system:
            options["system"] = request.system
        if request.json_schema:
            name = tool_name(request.schema_name)
            options["tools"] = [
                {
                    "name": name,
                    "description": f"Record the answer as one {request.schema_name} object.",
                    "input_schema": request.json_schema,
                }
            ]
            options["tool_choice"] = {
                "type": "tool",
                "name": name,
                "disable_parallel_tool_use": True,
            }
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(
                model=model,
                max_tokens=output_token_cap(request, self._settings),
                messages=[{"role": "user", "content": request.prompt}],
                **options,
            )
        except anthropic.AnthropicError as exc:
            raise map_anthropic_error(exc, self._settings.llm_timeout_seconds) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        usage = message.usage
        # Input billed as prompt-cache writes or reads is not in input_tokens; counting it
        # at the full input price errs high, never low.
        cached_input = (usage.cache_creation_input_tokens or 0) + (
            usage.cache_read_input_tokens or 0
        )
        return LlmResponse(
            text=answer_text(message.content),
            provider=self.name,
            model=message.model or model,
            input_tokens=usage.input_tokens + cached_input,
            output_tokens=usage.output_tokens,
            latency_ms=latency_ms,
            stop_reason=_STOP_REASONS.get(message.stop_reason, "end"),
        )

    async def aclose(self) -> None:
        await self._client.close()


def answer_text(blocks: list[Any]) -> str:
    """The first ``tool_use`` block's input as JSON, else the text blocks joined."""
    for block in blocks:
        if getattr(block, "type", None) == "tool_use":
            return json.dumps(block.input)
    return "".join(str(block.text) for block in blocks if getattr(block, "type", None) == "text")


def tool_name(schema_name: str) -> str:
    """Anthropic requires ^[a-zA-Z0-9_-]{1,64}$ for a tool name."""
    return (_TOOL_NAME.sub("_", schema_name) or "answer")[:64]


def map_anthropic_error(exc: anthropic.AnthropicError, timeout_seconds: float) -> LlmError:
    """Classify an SDK exception as retryable or not, with a one-line message."""
    if isinstance(exc, anthropic.APITimeoutError):
        return LlmTransientError(f"anthropic request timed out after {timeout_seconds:g}s")
    if isinstance(exc, anthropic.APIConnectionError):
        return LlmTransientError(f"anthropic connection error: {one_line(exc)}")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        # The body's own message ("Overloaded") reads better than the SDK's repr of it.
        detail = " ".join((exc.api_message or "").split())[:300] or one_line(exc)
        kind = f" {exc.type}" if exc.type else ""
        message = f"anthropic returned {status}{kind}: {detail}"
        return status_error(message, status, exc.response.headers)
    return LlmRequestError(f"anthropic client error: {one_line(exc)}")
