"""``stratlab dev``, ``stratlab demo`` and ``stratlab worker``: running the lab's processes.

The CLI is an entry point like ``workers/``: it may wire workflows, activities and the
store together. Everything it starts it also stops, on success, error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from stratlab.cli._common import console, print_link
from stratlab.config import Settings
from stratlab.llm.seeding import prepare_database
from stratlab.runtime import (
    LocalStack,
    ensure_search_attributes,
    numba_cache_env,
    wait_for_temporal,
)
from stratlab.store.db import Pool, make_pool
from stratlab.telemetry import configure_logging, get_logger
from stratlab.telemetry.instruments import Instruments
from stratlab.telemetry.langfuse import shutdown_langfuse
from stratlab.telemetry.process import ProcessTelemetry, start_telemetry
from stratlab.temporal_names import POOLS
from workers.pools import run_workers

log = get_logger("stratlab.worker")


@dataclass
class RunningLab:
    settings: Settings
    stack: LocalStack
    client: Client
    db: Pool
    instruments: Instruments | None = None


@asynccontextmanager
async def local_lab(
    cfg: Settings, *, quiet: bool = False, telemetry: ProcessTelemetry | None = None
) -> AsyncIterator[RunningLab]:
    """Postgres + Temporal (embedded unless configured), schema applied, attributes registered.
    ``telemetry``: the process's metrics runtime and tracing, used by the client it makes."""
    telemetry = telemetry or ProcessTelemetry()
    numba_cache_env(cfg)
    stack = LocalStack(cfg)
    with console.status("Starting Postgres and Temporal…", spinner="dots"):
        await asyncio.to_thread(stack.start)
    try:
        if not quiet:
            for note in [*stack.notes, *numba_note()]:
                console.print(f"  [dim]•[/dim] {note}")
        client = await wait_for_temporal(
            cfg,
            stack.temporal_address,
            runtime=telemetry.runtime,
            interceptors=telemetry.client_interceptors(),
        )
        await ensure_search_attributes(client)
        db = make_pool(stack.database_url, max_size=12)
        await db.open(wait=True, timeout=30)
        try:
            await prepare_database(db)
            yield RunningLab(cfg, stack, client, db, telemetry.instruments)
        finally:
            await db.close()
    finally:
        await asyncio.to_thread(stack.stop)


def numba_note() -> list[str]:
    """A line for a machine whose numba cache is empty: the first backtest of this
    process compiles vectorbt's kernels, which looks like a hang if nothing says so."""
    where = os.environ.get("NUMBA_CACHE_DIR")
    cache = Path(where) if where else None
    if cache is None or (cache.is_dir() and any(cache.rglob("*.nbi"))):
        return []
    return [
        "first run on this machine: the first backtest compiles numba kernels (about 25 s, "
        f"once; cached in {cache})"
    ]


@asynccontextmanager
async def running_workers(lab: RunningLab, pools: tuple[str, ...] = POOLS) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_workers(pools, lab.client, lab.db, lab.settings, stop, lab.instruments)
    )
    try:
        await asyncio.sleep(0)  # let the pollers start before work is submitted
        yield
    finally:
        stop.set()
        with suppress(asyncio.CancelledError):
            await task


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def dev(cfg: Settings, *, schedule: bool) -> None:
    configure_logging(cfg.model_copy(update={"log_level": "WARNING"}))
    telemetry = start_telemetry(cfg, pools=POOLS)
    try:
        async with local_lab(cfg, telemetry=telemetry) as lab, running_workers(lab):
            await _serve_dev(lab, schedule=schedule)
    finally:
        await shutdown_langfuse(cfg)
        telemetry.shutdown()


async def _serve_dev(lab: RunningLab, *, schedule: bool) -> None:
    from stratlab.cli.control import ensure_research_schedule

    cfg = lab.settings
    if schedule:
        created = await ensure_research_schedule(lab.client, cfg)
        state = "created" if created else "exists"
        console.print(f"  [dim]•[/dim] schedule stratlab-research-trigger {state} (every 5 min)")
    metrics = (
        f"  Metrics:      http://localhost:{cfg.metrics_port}/metrics\n" if cfg.metrics_port else ""
    )
    console.print(
        f"\n[bold green]stratlab is running[/bold green] — pools: {', '.join(POOLS)}\n"
        "  Temporal web UI:"
    )
    print_link(cfg.temporal_ui, indent="    ")
    console.print(
        f"{metrics}"
        f"  Start a cycle from another shell:\n"
        f"    stratlab trigger --symbol nasdaq\n"
        f"    temporal workflow start --type ResearchCycleWorkflow "
        f"--task-queue {cfg.task_queue('orchestrator')} --input '{{}}'\n"
        f"  Ctrl-C stops everything.\n"
    )
    stop = asyncio.Event()
    install_stop_signals(stop)
    await stop.wait()
    console.print("Stopping workers, Temporal and Postgres…")


async def worker(cfg: Settings, pools: tuple[str, ...]) -> None:
    """Pools against the configured services (what a deployment's container runs: one pool
    per container, or several in one process for a small deployment)."""
    from stratlab.cli._common import database_url
    from stratlab.runtime import connect_client

    configure_logging(cfg)
    numba_cache_env(cfg)
    telemetry = start_telemetry(cfg, pools=pools)
    try:
        url, _embedded = database_url(cfg)
        client = await connect_client(
            cfg, runtime=telemetry.runtime, interceptors=telemetry.client_interceptors()
        )
        await ensure_search_attributes(client)
        db = make_pool(url, max_size=12)
        await db.open(wait=True, timeout=30)
        # A no-op when `stratlab setup` applied this schema.sql; a clear error when the
        # database holds another one (an upgrade whose set-up has not run yet).
        await prepare_database(db)
        stop = asyncio.Event()
        install_stop_signals(stop)
        log.info(
            "worker started",
            pools=list(pools),
            metrics_port=cfg.metrics_port,
            tracing=telemetry.provider is not None,
        )
        try:
            await run_workers(pools, client, db, cfg, stop, telemetry.instruments)
        finally:
            await db.close()
    finally:
        await shutdown_langfuse(cfg)
        telemetry.shutdown()
