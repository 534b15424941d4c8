"""Starting research cycles and steering the research trigger schedule: the bodies of
``stratlab trigger``, ``pause`` and ``resume``, and the helpers that ``demo``, ``dev``,
``setup`` and ``schedule research`` start a cycle or create the schedule with."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import (
    CliError,
    console,
    fmt_num,
    fmt_pct,
    fmt_usd,
    outcome_text,
    print_json,
    print_link,
    store,
    temporal,
)
from stratlab.cli.schedule_labels import research_schedule_input, research_schedule_labels
from stratlab.config import Settings
from stratlab.models.optimizer_slice import research_refusal
from stratlab.models.research import ResearchCycleInput, ResearchCycleResult
from stratlab.store.market import MarketRepo
from stratlab.temporal_names import (
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
    RESEARCH_WORKFLOW_ID,
)
from workflows.labels import research_labels
from workflows.research import ResearchCycleWorkflow


async def start_cycle(
    client: Client, cfg: Settings, cycle: ResearchCycleInput
) -> WorkflowHandle[ResearchCycleWorkflow, ResearchCycleResult]:
    """Start a cycle with its business-key workflow id ``research-<session>``."""
    session_id = cycle.session_id or str(uuid.uuid4())
    cycle = cycle.model_copy(update={"session_id": session_id})
    return await client.start_workflow(
        ResearchCycleWorkflow.run,
        cycle,
        id=RESEARCH_WORKFLOW_ID.format(session_id=session_id),
        task_queue=cfg.task_queue("orchestrator"),
        **research_labels(cycle),
    )


async def ensure_research_schedule(
    client: Client, cfg: Settings, *, every: timedelta | None = None
) -> bool:
    """Create the research trigger (every 5 minutes unless ``every``, overlap Skip) if
    missing; True when it was created."""
    every = every or RESEARCH_SCHEDULE_INTERVAL
    cycle = research_schedule_input()
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ResearchCycleWorkflow.run,
            cycle,
            id="research-scheduled",
            task_queue=cfg.task_queue("orchestrator"),
            # The UI says what a scheduled cycle is, as for one started by hand.
            **research_schedule_labels(cycle, every),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RESEARCH_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


async def set_schedule_paused(client: Client, *, paused: bool, note: str) -> None:
    handle = client.get_schedule_handle(RESEARCH_SCHEDULE_ID)
    try:
        if paused:
            await handle.pause(note=note)
        else:
            await handle.unpause(note=note)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"schedule {RESEARCH_SCHEDULE_ID} does not exist; "
                "`stratlab schedule research` creates it (so do `stratlab dev` and `setup`)"
            ) from err
        raise


async def trigger(
    cfg: Settings,
    symbol: str,
    kind: str | None,
    max_iterations: int,
    *,
    blind: bool = False,
    wait: bool,
    as_json: bool,
) -> None:
    from stratlab.research.data import known_symbols

    # The optimizer's own data is refused here, before anything is reached.
    if refusal := research_refusal(symbol, "cli"):
        raise CliError(refusal)
    async with store(cfg) as db:
        symbols = await known_symbols(MarketRepo(db))
    if symbol not in symbols:
        raise CliError(f"unknown symbol {symbol!r}; known: {', '.join(symbols)}")
    client = await temporal(cfg)
    cycle = ResearchCycleInput(
        symbol=symbol,
        kind=kind,  # type: ignore[arg-type]  # checked by the command
        max_iterations=max_iterations,
        trigger="cli",
        blind=blind,
    )
    handle = await start_cycle(client, cfg, cycle)
    info: dict[str, Any] = {
        "workflow_id": handle.id,
        "ui": cfg.workflow_ui_link(handle.id),
        "blind": blind,
    }
    if not as_json:
        console.print(f"started {handle.id}{' (blind)' if blind else ''}", highlight=False)
        print_link(info["ui"])
    if not wait:
        if as_json:
            print_json(info)
        return
    try:
        with console.status(f"waiting for {handle.id}…"):
            result = await handle.result()
    except WorkflowFailureError as err:
        from stratlab.cli.paper_control import root_cause

        raise CliError(f"{handle.id} failed: {root_cause(err)}") from err
    info["result"] = result.model_dump(mode="json")
    if as_json:
        print_json(info)
        return
    console.print(f"outcome: {outcome_text(result.outcome)}")
    for line in result_lines(result):
        console.print(line, highlight=False, markup=False)
    console.print(f"details: stratlab session {result.session_id}", highlight=False)


def result_lines(result: ResearchCycleResult) -> list[str]:
    """A finished cycle's figures: the chosen (or last) iteration's walk-forward metrics
    and gates, the holdout, and what it cost."""
    lines = []
    best = next((i for i in result.iterations if i.strategy_id == result.best_strategy_id), None)
    shown = best or (result.iterations[-1] if result.iterations else None)
    if shown is not None:
        lines.append(
            f"strategy: {shown.strategy_name or '—'} ({shown.kind or '?'}), iteration "
            f"{shown.iteration} of {len(result.iterations)}: {shown.outcome}"
        )
        m = shown.metrics
        if m is not None:
            lines.append(
                f"walk-forward: sharpe {fmt_num(m.sharpe)}, return {fmt_pct(m.total_return)} "
                f"(buy-and-hold {fmt_pct(m.benchmark_return)}), max drawdown "
                f"{fmt_pct(-m.max_drawdown)}, {m.trades} trades"
            )
        if shown.error:
            lines.append(f"error: {shown.error.splitlines()[0] if shown.error else ''}")
    if result.holdout is not None:
        h = result.holdout.metrics
        lines.append(
            f"holdout (reported once): sharpe {fmt_num(h.sharpe)}, return "
            f"{fmt_pct(h.total_return)} (buy-and-hold {fmt_pct(h.benchmark_return)})"
        )
    lines.append(f"LLM: {result.tokens:,} tokens, {fmt_usd(result.cost_usd)}")
    return lines


async def set_paused(cfg: Settings, *, paused: bool, note: str) -> None:
    client = await temporal(cfg)
    await set_schedule_paused(client, paused=paused, note=note)
    console.print(f"research trigger {'paused' if paused else 'resumed'}")
