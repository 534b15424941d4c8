"""Reachability probes for ``stratlab doctor``: each answers a ``Probe`` within a timeout
and never raises. Texts are one line and never hold a response body; the caller still
scrubs secrets before showing them."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Imported up front, not inside a probe: an SDK import takes a second or more and would
# count against the probe's timeout (and stall the probes running beside it).
import httpx
import psycopg
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from temporalio.client import Client

from stratlab.config import Settings
from stratlab.llm.roles import endpoint_of

OFFLINE_TEXT = "built in, deterministic stand-in"
_STATUS_HINTS = {
    401: "the key was rejected",
    403: "the key may not do this",
    404: "not found: is the base URL right?",
    429: "rate limited",
}
_PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers need no key


@dataclass(frozen=True)
class Probe:
    ok: bool
    text: str


async def timed(call: Callable[[], Awaitable[str | None]], timeout: float) -> Probe:
    """Run ``call``; ``ok (N ms)`` plus what it returned, or the one-line error."""
    started = time.perf_counter()
    try:
        extra = await asyncio.wait_for(call(), timeout)
    except TimeoutError:
        return Probe(False, f"no answer within {timeout:g}s")
    except Exception as err:
        return Probe(False, describe_error(err))
    millis = (time.perf_counter() - started) * 1000
    return Probe(True, f"ok ({millis:.0f} ms){f', {extra}' if extra else ''}")


def describe_error(err: BaseException) -> str:
    """A short, one-line description: an HTTP status when there is one, else the error
    and its root cause (``Connection refused``), never a response body."""
    status = getattr(err, "status_code", None)
    response = getattr(err, "response", None)
    if not isinstance(status, int) and response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(status, int):
        hint = _STATUS_HINTS.get(status)
        return f"HTTP {status}" + (f" ({hint})" if hint else "")
    root: BaseException = err
    while (nested := _cause(root)) is not None:
        root = nested
    text = " ".join((str(root) or type(root).__name__).split())
    return f"{type(err).__name__}: {text}"[:200]


def _cause(err: BaseException) -> BaseException | None:
    if err.__cause__ is not None:
        return err.__cause__
    return None if err.__suppress_context__ else err.__context__


def safe_url(url: str) -> str:
    """The URL without user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def probe_provider(provider: str, settings: Settings, timeout: float) -> Probe:
    """List the provider's models through its SDK (the cheapest authenticated call)."""
    if provider == "offline":
        return Probe(True, OFFLINE_TEXT)
    base_url = endpoint_of(provider, settings)
    if provider == "openai":
        if not settings.openai_api_key and not settings.openai_base_url:
            return Probe(False, "not tried: no OPENAI_API_KEY or OPENAI_BASE_URL")
        return await timed(lambda: _openai_models(settings, base_url, timeout), timeout)
    if provider == "anthropic":
        if not settings.anthropic_api_key:
            return Probe(False, "not tried: no ANTHROPIC_API_KEY")
        return await timed(lambda: _anthropic_models(settings, base_url, timeout), timeout)
    return Probe(False, f"unknown provider {provider!r}")


async def _openai_models(settings: Settings, base_url: str | None, timeout: float) -> str:
    client = AsyncOpenAI(
        api_key=settings.openai_api_key or _PLACEHOLDER_KEY,
        base_url=base_url,
        max_retries=0,
        timeout=timeout,
    )
    async with client:
        page = await client.models.list()
        return _count(page.data)


async def _anthropic_models(settings: Settings, base_url: str | None, timeout: float) -> str:
    client = AsyncAnthropic(
        api_key=settings.anthropic_api_key, base_url=base_url, max_retries=0, timeout=timeout
    )
    async with client:
        page = await client.models.list(limit=100)
        return _count(page.data)


def _count(models: list[Any]) -> str:
    return f"{len(models)} model{'' if len(models) == 1 else 's'}"


async def probe_http_get(url: str, timeout: float) -> Probe:
    """GET ``url``; a 2xx answer is ok."""

    async def get() -> None:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            (await client.get(url)).raise_for_status()

    return await timed(get, timeout)


async def probe_tcp(host: str, port: int, timeout: float) -> Probe:
    """Open and close a TCP connection."""

    async def connect() -> None:
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()

    return await timed(connect, timeout)


async def probe_temporal(address: str, namespace: str, timeout: float) -> Probe:
    """Connect a Temporal client (the SDK asks the frontend for its system info)."""

    async def connect() -> None:
        try:
            await Client.connect(address, namespace=namespace)
        except RuntimeError as err:
            # The SDK's message is a Rust debug dump; its last "message" is the reason.
            reasons = re.findall(r'message: "([^"]+)"', str(err))
            raise ConnectionError(reasons[-1] if reasons else str(err)) from None

    return await timed(connect, timeout)


async def probe_postgres(url: str, timeout: float) -> Probe:
    async def query() -> str:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(timeout)))
        async with conn:
            row = await (await conn.execute("SELECT current_setting('server_version')")).fetchone()
        return f"server {row[0]}" if row else ""

    return await timed(query, timeout)
