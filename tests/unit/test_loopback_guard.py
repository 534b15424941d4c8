"""The suite's loopback guard refuses what would leave the machine and lets loopback through."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.fixtures import loopback_only


def test_a_public_address_is_refused_before_any_packet_leaves() -> None:
    before = len(loopback_only.attempts)
    with socket.socket() as sock, pytest.raises(loopback_only.OutboundConnectionError):
        sock.connect(("8.8.8.8", 53))
    assert loopback_only.attempts[before:] == ["8.8.8.8"]


def test_dns_of_a_public_name_is_refused() -> None:
    with pytest.raises(loopback_only.OutboundConnectionError):
        socket.getaddrinfo("api.anthropic.com", 443)


async def test_an_sdk_style_async_client_is_stopped_by_the_guard() -> None:
    before = len(loopback_only.attempts)
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("https://api.openai.com/v1/models")
    # Refused by the guard, not merely by a machine without a route.
    assert "api.openai.com" in loopback_only.attempts[before:]


async def test_loopback_still_works() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _reader, writer = await asyncio.open_connection("localhost", port)
        writer.close()
    finally:
        server.close()
    assert loopback_only.is_loopback("::1") and not loopback_only.is_loopback("10.0.0.1")
