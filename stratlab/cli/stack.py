"""``stratlab dev``, ``stratlab demo`` and ``stratlab worker``: running the lab's processes.

The CLI is an entry point like ``workers/``: it may wire workflows, activities and the
store together. Everything it starts it also stops, on success, error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from temporalio.client import Client

from stratlab.cli._common import console
from stratlab.config import Settings
from stratlab.runtime import (
    LocalStack,
    ensure_search_attributes,
    numba_cache_env,
    wait_for_temporal,
)
from stratlab.store.db import Pool, apply_schema, make_pool
from stratlab.telemetry import configure_logging
from workers.pools import run_workers
from workflows.constants import POOLS


@dataclass
class RunningLab:
    settings: Settings
    stack: LocalStack
    client: Client
    db: Pool


@asynccontextmanager
async def local_lab(cfg: Settings, *, quiet: bool = False) -> AsyncIterator[RunningLab]:
    """Postgres + Temporal (embedded unless configured), schema applied, attributes registered."""
    numba_cache_env(cfg)
    stack = LocalStack(cfg)
    with console.status("Starting Postgres and Temporal…", spinner="dots"):
        await asyncio.to_thread(stack.start)
    try:
        if not quiet:
            for note in stack.notes:
                console.print(f"  [dim]•[/dim] {note}")
        client = await wait_for_temporal(cfg, stack.temporal_address)
        await ensure_search_attributes(client)
        db = make_pool(stack.database_url, max_size=12)
        await db.open(wait=True, timeout=30)
        try:
            await apply_schema(db)
            yield RunningLab(cfg, stack, client, db)
        finally:
            await db.close()
    finally:
        await asyncio.to_thread(stack.stop)


@asynccontextmanager
async def running_workers(lab: RunningLab, pools: tuple[str, ...] = POOLS) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(pools, lab.client, lab.db, lab.settings, stop))
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
    from stratlab.cli.control import ensure_research_schedule

    configure_logging(cfg.model_copy(update={"log_level": "WARNING"}))
    async with local_lab(cfg) as lab, running_workers(lab):
        if schedule:
            created = await ensure_research_schedule(lab.client, cfg)
            state = "created" if created else "exists"
            console.print(
                f"  [dim]•[/dim] schedule stratlab-research-trigger {state} (every 5 min)"
            )
        console.print(
            f"\n[bold green]stratlab is running[/bold green] — pools: {', '.join(POOLS)}\n"
            f"  Temporal UI:  {cfg.temporal_ui_url}\n"
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


async def worker(cfg: Settings, pool: str) -> None:
    """One pool against the configured services (what a deployment's container runs)."""
    from stratlab.cli._common import database_url
    from stratlab.runtime import connect_client

    configure_logging(cfg)
    numba_cache_env(cfg)
    url, _embedded = database_url(cfg)
    client = await connect_client(cfg)
    await ensure_search_attributes(client)
    db = make_pool(url, max_size=12)
    await db.open(wait=True, timeout=30)
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        await run_workers((pool,), client, db, cfg, stop)
    finally:
        await db.close()
