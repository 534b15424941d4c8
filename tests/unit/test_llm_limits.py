"""Per-provider limits: how many requests run at once and how fast they start."""

from __future__ import annotations

import asyncio
import time

import pytest

from stratlab.llm.limits import LimitedProvider, ProviderLimit, limited, parse_limits
from stratlab.models.llm import LlmRequest, LlmResponse


class SlowProvider:
    name = "anthropic"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.in_flight = 0
        self.peak = 0
        self.starts: list[float] = []

    def model_for(self, request: LlmRequest) -> str:
        return "m"

    async def complete(self, request: LlmRequest) -> LlmResponse:
        self.starts.append(time.monotonic())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.seconds)
        self.in_flight -= 1
        return LlmResponse(
            text="{}", provider=self.name, model="m", input_tokens=1, output_tokens=1, latency_ms=1
        )


REQUEST = LlmRequest(
    role="designer", system="s", prompt="p", schema_name="X", json_schema={"type": "object"}
)


def test_parse_limits_reads_entries_and_names_a_bad_one() -> None:
    assert parse_limits("anthropic=4/2, OpenAI=8") == {
        "anthropic": ProviderLimit(4, 2.0),
        "openai": ProviderLimit(8, None),
    }
    assert parse_limits(None) == {} and parse_limits(" ") == {}
    for bad in ("anthropic", "anthropic=0", "anthropic=x/2", "openai=2/0", "=3"):
        with pytest.raises(ValueError, match="STRATLAB_PROVIDER_LIMITS"):
            parse_limits(bad)


async def test_concurrency_never_exceeds_the_limit() -> None:
    inner = SlowProvider(0.05)
    provider = LimitedProvider(inner, ProviderLimit(concurrency=2))
    await asyncio.gather(*(provider.complete(REQUEST) for _ in range(7)))
    assert inner.peak == 2 and len(inner.starts) == 7


async def test_rate_spaces_request_starts() -> None:
    inner = SlowProvider(0.0)
    provider = LimitedProvider(inner, ProviderLimit(concurrency=10, per_second=20))
    await asyncio.gather(*(provider.complete(REQUEST) for _ in range(5)))
    # 20/s: the k-th start comes at least k x 50 ms after the first. Judged from the first
    # start, not between neighbours: on a loaded machine one sleeper may wake late and the
    # next on time, which shortens that one gap without breaking the rate (a hair of
    # slack for clocks whose sleep wakes early).
    offsets = [start - inner.starts[0] for start in inner.starts]
    assert len(offsets) == 5
    assert all(offset >= k * 0.05 - 0.003 for k, offset in enumerate(offsets)), offsets


def test_a_provider_without_an_entry_is_left_alone() -> None:
    inner = SlowProvider(0.0)
    assert limited(inner, {"openai": ProviderLimit(1)}) is inner
    wrapped = limited(inner, {"anthropic": ProviderLimit(1)})
    assert isinstance(wrapped, LimitedProvider) and wrapped.name == "anthropic"


def test_build_provider_puts_each_provider_behind_its_limit() -> None:
    from stratlab.config import Settings
    from stratlab.llm.factory import build_provider

    provider = build_provider(Settings(llm_provider="offline", provider_limits="offline=3/50"))
    assert isinstance(provider, LimitedProvider) and provider.limit == ProviderLimit(3, 50.0)
    with pytest.raises(ValueError, match="STRATLAB_PROVIDER_LIMITS"):
        build_provider(Settings(llm_provider="offline", provider_limits="offline=none"))
