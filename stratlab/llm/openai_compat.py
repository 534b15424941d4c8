"""OpenAI and OpenAI-compatible servers (Ollama, vLLM, llama.cpp) through the official SDK.

Two APIs, chosen by ``Settings.openai_api``: chat completions (``chat``, the default, the
one compatible servers implement) and OpenAI's Responses API (``responses``). Structured
output asks for a JSON schema with ``strict: False`` in both: strict mode rejects schemas
with defaults and open objects, and several compatible servers implement only the
non-strict form. The answer comes back as text; parsing and validation are the caller's
job, so a malformed answer is a normal response here. Why the model stopped is
classified before anything is parsed: the output-token cap (``finish_reason="length"``,
an ``incomplete`` response) is ``stop_reason="max_tokens"``, a refusal or a content
filter is ``"refusal"``. The SDK's own retries are off because Temporal owns retries;
SDK exceptions become ``LlmRequestError`` or ``LlmTransientError``.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from stratlab.config import Settings
from stratlab.llm.base import (
    LlmError,
    LlmRequestError,
    LlmTransientError,
    one_line,
    retry_after_seconds,
    status_error,
)
from stratlab.llm.pricing import estimate_tokens, output_token_cap
from stratlab.models.llm import LlmRequest, LlmResponse, StopReason

__all__ = ["OpenAICompatibleProvider", "map_openai_error", "retry_after_seconds"]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers need no key, but the SDK refuses to build a client without one.
_PLACEHOLDER_KEY = "not-needed"
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_LABEL = "openai-compatible"

TokenParam = Literal["max_tokens", "max_completion_tokens"]
_Result = tuple[str, StopReason, tuple[int, int] | None, str | None]
"""Answer text, why it stopped, (input, output) tokens when reported, answering model."""


class OpenAICompatibleProvider:
    """Chat completions or responses against api.openai.com or ``openai_base_url``."""

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncOpenAI | None = None,
        token_param: TokenParam | None = None,
    ) -> None:
        self._settings = settings
        base_url = settings.openai_base_url or OPENAI_BASE_URL
        # Base URL and key are passed explicitly so the SDK never falls back to
        # environment variables behind the Settings object's back.
        self._client = client or AsyncOpenAI(
            api_key=settings.openai_api_key or _PLACEHOLDER_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
        )
        # OpenAI's newer models accept only max_completion_tokens; many compatible
        # servers know only max_tokens.
        self._token_param: TokenParam = token_param or (
            "max_completion_tokens" if settings.openai_base_url is None else "max_tokens"
        )

    def model_for(self, request: LlmRequest) -> str:
        return request.model or self._settings.llm_model or DEFAULT_OPENAI_MODEL

    async def complete(self, request: LlmRequest) -> LlmResponse:
        model = self.model_for(request)
        started = time.perf_counter()
        try:
            if self._settings.openai_api == "responses":
                result = await self._responses(request, model)
            else:
                result = await self._chat(request, model)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, self._settings.llm_timeout_seconds) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        text, stop_reason, usage, answered_by = result
        return _response(request, answered_by or model, text, stop_reason, usage, latency_ms)

    async def aclose(self) -> None:
        await self._client.close()

    async def _chat(self, request: LlmRequest, model: str) -> _Result:
        messages: list[ChatCompletionMessageParam] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        options: dict[str, Any] = {
            self._token_param: output_token_cap(request, self._settings),
            "temperature": request.temperature,
        }
        if request.json_schema:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.schema_name),
                    "schema": request.json_schema,
                    "strict": False,
                },
            }
        completion = await self._client.chat.completions.create(
            model=model, messages=messages, **options
        )
        if not completion.choices:
            raise LlmTransientError(f"{_LABEL} server returned no choices")
        choice = completion.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        stop: StopReason = "end"
        if refusal or choice.finish_reason == "content_filter":
            stop = "refusal"
        elif choice.finish_reason == "length":
            stop = "max_tokens"
        text = refusal or choice.message.content or ""
        usage = completion.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
        return text, stop, tokens, completion.model

    async def _responses(self, request: LlmRequest, model: str) -> _Result:
        options: dict[str, Any] = {
            "max_output_tokens": output_token_cap(request, self._settings),
            "temperature": request.temperature,
            # Each call stands alone (no previous_response_id), so nothing is kept
            # server-side; the lab stores what it needs itself.
            "store": False,
        }
        if request.system:
            options["instructions"] = request.system
        if request.json_schema:
            options["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": _schema_name(request.schema_name),
                    "schema": request.json_schema,
                    "strict": False,
                }
            }
        response = await self._client.responses.create(model=model, input=request.prompt, **options)
        if response.status == "failed":
            error = response.error
            detail = f"{error.code}: {' '.join(error.message.split())[:300]}" if error else "?"
            raise LlmTransientError(f"{_LABEL} response failed: {detail}")
        refusal = _responses_refusal(response)
        reason = response.incomplete_details.reason if response.incomplete_details else None
        stop: StopReason = "end"
        if refusal is not None or reason == "content_filter":
            stop = "refusal"
        elif response.status == "incomplete":
            stop = "max_tokens"
        usage = response.usage
        tokens = (usage.input_tokens, usage.output_tokens) if usage is not None else None
        return refusal or response.output_text, stop, tokens, response.model


def _responses_refusal(response: Any) -> str | None:
    """The text of the first refusal part of a Responses API answer, if it has one."""
    for item in response.output:
        if getattr(item, "type", None) != "message":
            continue
        for part in item.content:
            if getattr(part, "type", None) == "refusal":
                return str(part.refusal or "refused")
    return None


def _response(
    request: LlmRequest,
    model: str,
    text: str,
    stop_reason: StopReason,
    tokens: tuple[int, int] | None,
    latency_ms: float,
) -> LlmResponse:
    if tokens is not None:
        (input_tokens, output_tokens), estimated = tokens, False
    else:
        # Some compatible servers omit usage; estimate so cost and budgets stay honest.
        input_tokens = estimate_tokens(request.system) + estimate_tokens(request.prompt)
        output_tokens, estimated = estimate_tokens(text), True
    return LlmResponse(
        text=text,
        provider=OpenAICompatibleProvider.name,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        tokens_estimated=estimated,
        stop_reason=stop_reason,
    )


def map_openai_error(exc: openai.OpenAIError, timeout_seconds: float) -> LlmError:
    """Classify an SDK exception as retryable or not, with a one-line message."""
    if isinstance(exc, openai.APITimeoutError):
        return LlmTransientError(f"{_LABEL} request timed out after {timeout_seconds:g}s")
    if isinstance(exc, openai.APIConnectionError):
        return LlmTransientError(f"{_LABEL} connection error: {one_line(exc)}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"{_LABEL} server returned {status}: {one_line(exc)}"
        return status_error(message, status, exc.response.headers)
    return LlmRequestError(f"{_LABEL} client error: {one_line(exc)}")


def _schema_name(name: str) -> str:
    """OpenAI requires ^[a-zA-Z0-9_-]{1,64}$ for the schema name."""
    return (_SCHEMA_NAME.sub("_", name) or "output")[:64]
