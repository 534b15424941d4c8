"""The optional response cache (``STRATLAB_LLM_CACHE=1``): an identical call is answered
from Postgres instead of the provider, at no cost.

Identical means the same provider, endpoint, model, system text, prompt, output schema (name and
JSON schema), temperature and output-token cap: ``cache_key`` hashes exactly those. A
hit is the stored answer with ``cached=True``, so ``BudgetedLlm`` charges nothing and the
call's ``agent_actions`` row says it was cached; tokens and latency stay those of the
first answer, so a re-run experiment measures the same objectives it measured before.
Only complete answers (``stop_reason == "end"``) are stored: a truncated or refused
answer is worth asking again. A malformed but complete answer is stored too, which is
what makes a re-run reproducible; its repair request differs and is not a hit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

import structlog

from stratlab.config import Settings
from stratlab.llm.base import LlmProvider
from stratlab.llm.pricing import output_token_cap
from stratlab.llm.roles import endpoint_of
from stratlab.llm.routing import RoutingProvider
from stratlab.models.llm import LlmRequest, LlmResponse

log = structlog.get_logger(__name__)

KEY_VERSION = 2
"""Part of every key: bump it when the key's recipe changes, and old rows stop matching."""


class ResponseStore(Protocol):
    """Where cached answers live (``stratlab.store.llm_cache.LlmCacheRepo``)."""

    async def get(self, cache_key: str) -> LlmResponse | None: ...

    async def put(self, cache_key: str, role: str, response: LlmResponse) -> None: ...


def cache_key(
    request: LlmRequest,
    *,
    provider: str,
    model: str,
    output_cap: int,
    endpoint: str | None = None,
) -> str:
    """sha256 hex of the canonical JSON of everything that shapes the answer. The
    endpoint is part of it: one model name on two OpenAI-compatible servers (two Ollama
    hosts with different weights, say) is two different models."""
    parts = {
        "v": KEY_VERSION,
        "provider": provider,
        "endpoint": endpoint,
        "model": model,
        "system": request.system,
        "prompt": request.prompt,
        "schema_name": request.schema_name,
        "json_schema": request.json_schema,
        "temperature": request.temperature,
        "max_output_tokens": output_cap,
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedProvider:
    """Wraps a provider (a ``RoutingProvider`` too) with the response cache."""

    def __init__(self, inner: LlmProvider, store: ResponseStore, settings: Settings) -> None:
        self._inner = inner
        self._store = store
        self._settings = settings
        self.name = inner.name

    def model_for(self, request: LlmRequest) -> str:
        return self._inner.model_for(request)

    def key_for(self, request: LlmRequest) -> str:
        # A router names the provider that will really answer this role.
        if isinstance(self._inner, RoutingProvider):
            provider = self._inner.provider_name_for(request)
        else:
            provider = self._inner.name
        return cache_key(
            request,
            provider=provider,
            model=self._inner.model_for(request),
            output_cap=output_token_cap(request, self._settings),
            endpoint=endpoint_of(provider, self._settings),
        )

    async def complete(self, request: LlmRequest) -> LlmResponse:
        key = self.key_for(request)
        stored = await self._get(key, request)
        if stored is not None:
            return stored.model_copy(update={"cached": True})
        response = await self._inner.complete(request)
        if response.stop_reason == "end" and not response.cached:
            await self._put(key, request, response)
        return response

    # The cache is an optimisation: a store that fails is a miss, never a failed call
    # (and a billed answer in hand is never lost for want of its cache row).
    async def _get(self, key: str, request: LlmRequest) -> LlmResponse | None:
        try:
            return await self._store.get(key)
        except Exception as err:
            log.warning("llm cache read failed", role=request.role, error=_describe(err))
            return None

    async def _put(self, key: str, request: LlmRequest, response: LlmResponse) -> None:
        try:
            await self._store.put(key, request.role, response)
        except Exception as err:
            log.warning("llm cache write failed", role=request.role, error=_describe(err))


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
