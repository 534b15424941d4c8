"""Per-provider limits inside one llm worker: concurrent requests and requests per second.

The llm pool's Temporal options (``STRATLAB_LLM_CONCURRENCY``, ``STRATLAB_LLM_RATE``)
bound the pool as a whole; with per-role routing one worker may talk to several
providers, each with its own rate limits. ``STRATLAB_PROVIDER_LIMITS`` bounds each one:
``anthropic=4/2,openai=8/5`` means at most 4 Anthropic requests in flight and 2 started
per second, and 8 and 5 for OpenAI. A provider without an entry is unlimited here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from stratlab.llm.base import LlmProvider
from stratlab.models.llm import LlmRequest, LlmResponse


@dataclass(frozen=True)
class ProviderLimit:
    concurrency: int
    per_second: float | None = None


def parse_limits(text: str | None) -> dict[str, ProviderLimit]:
    """``name=concurrency[/per_second]`` entries, comma-separated; ValueError names a bad one."""
    limits: dict[str, ProviderLimit] = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, spec = entry.partition("=")
        concurrency, _, rate = spec.partition("/")
        try:
            limit = ProviderLimit(int(concurrency), float(rate) if rate else None)
        except ValueError:
            limit = None
        if (
            not sep
            or not name.strip()
            or limit is None
            or limit.concurrency < 1
            or (limit.per_second is not None and limit.per_second <= 0)
        ):
            raise ValueError(
                f"STRATLAB_PROVIDER_LIMITS entry {entry!r} is not name=concurrency[/per_second] "
                "with concurrency >= 1 and a positive rate"
            )
        limits[name.strip().lower()] = limit
    return limits


class _Pacer:
    """Spaces request starts at least 1/per_second apart (a token bucket of size one)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class LimitedProvider:
    """A provider whose requests wait for a concurrency slot and their turn in the rate."""

    def __init__(self, inner: LlmProvider, limit: ProviderLimit) -> None:
        self._inner = inner
        self.name = inner.name
        self.limit = limit
        self._slots = asyncio.Semaphore(limit.concurrency)
        self._pacer = _Pacer(limit.per_second) if limit.per_second else None

    def model_for(self, request: LlmRequest) -> str:
        return self._inner.model_for(request)

    async def complete(self, request: LlmRequest) -> LlmResponse:
        async with self._slots:
            if self._pacer is not None:
                await self._pacer.wait()
            return await self._inner.complete(request)


def limited(provider: LlmProvider, limits: dict[str, ProviderLimit]) -> LlmProvider:
    """``provider`` behind its configured limit, or unchanged when it has none."""
    limit = limits.get(provider.name.lower())
    return LimitedProvider(provider, limit) if limit else provider
