"""The response cache: its key, and what the wrapper stores and replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from stratlab.config import Settings
from stratlab.llm.base import LlmTransientError
from stratlab.llm.cache import CachedProvider, cache_key
from stratlab.llm.factory import build_provider
from stratlab.llm.offline import OfflineProvider
from stratlab.models.llm import LlmRequest, LlmResponse, StopReason
from tests.fixtures.offline_requests import designer_request

BASE = LlmRequest(
    role="designer",
    system="You design strategies.",
    prompt="Design one for sp500.",
    schema_name="StrategySpec",
    json_schema={"type": "object", "properties": {"a": {"type": "string"}}},
    temperature=0.2,
)
KEY_ARGS: dict[str, Any] = {"provider": "openai", "model": "gpt-4o", "output_cap": 2048}


def test_the_key_is_stable_and_canonical() -> None:
    key = cache_key(BASE, **KEY_ARGS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert cache_key(BASE.model_copy(), **KEY_ARGS) == key
    reordered = BASE.model_copy(
        update={"json_schema": {"properties": {"a": {"type": "string"}}, "type": "object"}}
    )
    assert cache_key(reordered, **KEY_ARGS) == key
    # The role and the request's own model field are not the call: the resolved model is.
    assert cache_key(BASE.model_copy(update={"role": "assessor"}), **KEY_ARGS) == key


@pytest.mark.parametrize(
    "change",
    [
        {"system": "You design strategies!"},
        {"prompt": "Design one for nasdaq."},
        {"schema_name": "Assessment"},
        {"json_schema": {"type": "object"}},
        {"temperature": 0.3},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_key_changes_with_each_part_of_the_request(change: dict[str, Any]) -> None:
    assert cache_key(BASE.model_copy(update=change), **KEY_ARGS) != cache_key(BASE, **KEY_ARGS)


@pytest.mark.parametrize(
    "change",
    [
        {"provider": "anthropic"},
        {"model": "gpt-4o-mini"},
        {"output_cap": 1024},
        {"endpoint": "http://gpu-box:11434/v1"},
    ],
)
def test_the_key_changes_with_provider_endpoint_model_and_cap(change: dict[str, Any]) -> None:
    assert cache_key(BASE, **{**KEY_ARGS, **change}) != cache_key(BASE, **KEY_ARGS)


@dataclass
class MemoryStore:
    """The ResponseStore protocol over a dict (the Postgres repo has its own test)."""

    rows: dict[str, LlmResponse] = field(default_factory=dict)
    broken: bool = False

    async def get(self, cache_key: str) -> LlmResponse | None:
        if self.broken:
            raise ConnectionError("database went away")
        return self.rows.get(cache_key)

    async def put(self, cache_key: str, role: str, response: LlmResponse) -> None:
        if self.broken:
            raise ConnectionError("database went away")
        self.rows.setdefault(cache_key, response)


@dataclass
class CountingProvider:
    """Answers with a fixed stop reason and counts the calls that reached it."""

    stop_reason: StopReason = "end"
    calls: int = 0
    name: str = "counting"

    def model_for(self, request: LlmRequest) -> str:
        return request.model or "counting-1"

    async def complete(self, request: LlmRequest) -> LlmResponse:
        self.calls += 1
        return LlmResponse(
            text=f"answer {self.calls}",
            provider=self.name,
            model=self.model_for(request),
            input_tokens=10,
            output_tokens=5,
            latency_ms=123.0,
            stop_reason=self.stop_reason,
        )


async def test_a_hit_replays_the_stored_answer_marked_cached() -> None:
    settings = Settings()
    store = MemoryStore()
    cached = CachedProvider(OfflineProvider(settings), store, settings)
    first = await cached.complete(designer_request())
    again = await cached.complete(designer_request())
    assert not first.cached and again.cached
    assert again.model_copy(update={"cached": False}) == first  # tokens, latency, text
    assert len(store.rows) == 1
    other = await cached.complete(designer_request(symbol="nasdaq"))
    assert not other.cached and len(store.rows) == 2
    assert cached.name == "offline" and cached.model_for(designer_request()) == first.model


async def test_two_servers_of_one_provider_do_not_share_answers() -> None:
    store = MemoryStore()
    laptop = CountingProvider(name="openai")
    gpu_box = CountingProvider(name="openai")
    here = CachedProvider(laptop, store, Settings(openai_base_url="http://127.0.0.1:11434/v1"))
    there = CachedProvider(gpu_box, store, Settings(openai_base_url="http://gpu-box:11434/v1"))
    await here.complete(BASE)
    answer = await there.complete(BASE)
    assert not answer.cached and laptop.calls == gpu_box.calls == 1 and len(store.rows) == 2
    assert (await there.complete(BASE)).cached and gpu_box.calls == 1


@pytest.mark.parametrize("stop_reason", ["max_tokens", "refusal"])
async def test_an_answer_that_stopped_early_is_not_stored(stop_reason: StopReason) -> None:
    inner, store = CountingProvider(stop_reason=stop_reason), MemoryStore()
    cached = CachedProvider(inner, store, Settings())
    await cached.complete(BASE)
    second = await cached.complete(BASE)
    assert inner.calls == 2 and not second.cached and store.rows == {}


async def test_a_provider_error_is_not_stored_and_passes_through() -> None:
    class Failing(CountingProvider):
        async def complete(self, request: LlmRequest) -> LlmResponse:
            raise LlmTransientError("rate limited", status_code=429)

    store = MemoryStore()
    with pytest.raises(LlmTransientError):
        await CachedProvider(Failing(), store, Settings()).complete(BASE)
    assert store.rows == {}


async def test_a_broken_store_is_a_miss_not_a_failed_call() -> None:
    inner, store = CountingProvider(), MemoryStore(broken=True)
    answer = await CachedProvider(inner, store, Settings()).complete(BASE)
    assert answer.text == "answer 1" and not answer.cached and inner.calls == 1


async def test_the_output_cap_in_the_key_is_the_one_sent() -> None:
    inner, store = CountingProvider(), MemoryStore()
    small = CachedProvider(inner, store, Settings(max_output_tokens=512))
    large = CachedProvider(inner, store, Settings(max_output_tokens=4096))
    await small.complete(BASE)
    assert not (await large.complete(BASE)).cached  # 2048 requested: capped at 512 vs 2048
    assert (await small.complete(BASE)).cached
    assert inner.calls == 2


async def test_behind_a_router_the_key_names_the_provider_that_answers() -> None:
    settings = Settings(role_models="designer=offline", openai_base_url="http://127.0.0.1:9/v1")
    router = build_provider(settings)  # default openai (a base URL is set), designer offline
    cached = CachedProvider(router, MemoryStore(), settings)
    assert router.name == "offline+openai"
    request = designer_request()
    assert cached.key_for(request) == cache_key(
        request, provider="offline", model="offline-deterministic-v1", output_cap=2048
    )
    assert (await cached.complete(request)).provider == "offline"
    assert (await cached.complete(request)).cached
