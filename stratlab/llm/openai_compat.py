"""OpenAI and OpenAI-compatible servers (Ollama, vLLM, llama.cpp) through the official SDK.

Structured output uses chat completions with ``response_format={"type": "json_schema",
..., "strict": False}``: strict mode rejects schemas with defaults and open objects, and
several compatible servers implement only the non-strict form. The answer comes back as
text; parsing and validation are the caller's job, so a malformed answer is a normal
response here. The SDK's own retries are off because Temporal owns retries; SDK
exceptions become ``LlmRequestError`` or ``LlmTransientError``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from stratlab.config import Settings
from stratlab.llm.base import LlmError, LlmRequestError, LlmTransientError
from stratlab.llm.pricing import estimate_tokens, output_token_cap
from stratlab.models.llm import LlmRequest, LlmResponse

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers need no key, but the SDK refuses to build a client without one.
_PLACEHOLDER_KEY = "not-needed"
_NON_RETRYABLE_STATUS = frozenset({400, 401, 403, 404, 413, 422})
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")

TokenParam = Literal["max_tokens", "max_completion_tokens"]


class OpenAICompatibleProvider:
    """Chat completions against api.openai.com or any server at ``openai_base_url``."""

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
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=model, messages=messages, **options
            )
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, self._settings.llm_timeout_seconds) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return _to_response(completion, request, model, latency_ms)

    async def aclose(self) -> None:
        await self._client.close()


def _to_response(
    completion: Any, request: LlmRequest, model: str, latency_ms: float
) -> LlmResponse:
    if not completion.choices:
        raise LlmTransientError("openai-compatible server returned no choices")
    message = completion.choices[0].message
    # A refusal has no content; returning it as text lets parsing report it as malformed.
    text = message.content or getattr(message, "refusal", None) or ""
    usage = completion.usage
    if usage is not None:
        input_tokens, output_tokens, estimated = usage.prompt_tokens, usage.completion_tokens, False
    else:
        # Some compatible servers omit usage; estimate so cost and budgets stay honest.
        input_tokens = estimate_tokens(request.system) + estimate_tokens(request.prompt)
        output_tokens, estimated = estimate_tokens(text), True
    return LlmResponse(
        text=text,
        provider=OpenAICompatibleProvider.name,
        model=completion.model or model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        tokens_estimated=estimated,
    )


def map_openai_error(exc: openai.OpenAIError, timeout_seconds: float) -> LlmError:
    """Classify an SDK exception as retryable or not, with a one-line message."""
    if isinstance(exc, openai.APITimeoutError):
        return LlmTransientError(f"openai-compatible request timed out after {timeout_seconds:g}s")
    if isinstance(exc, openai.APIConnectionError):
        return LlmTransientError(f"openai-compatible connection error: {_one_line(exc)}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"openai-compatible server returned {status}: {_one_line(exc)}"
        if status in _NON_RETRYABLE_STATUS or (
            400 <= status < 500 and status not in (408, 409, 429)
        ):
            return LlmRequestError(message, status_code=status)
        return LlmTransientError(
            message, status_code=status, retry_after=retry_after_seconds(exc.response.headers)
        )
    return LlmRequestError(f"openai-compatible client error: {_one_line(exc)}")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's retry hint: ``retry-after-ms``, then ``retry-after`` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _schema_name(name: str) -> str:
    """OpenAI requires ^[a-zA-Z0-9_-]{1,64}$ for the schema name."""
    return (_SCHEMA_NAME.sub("_", name) or "output")[:64]


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]
