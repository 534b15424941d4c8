"""Bodies of ``stratlab status``, ``history`` and ``budget``: what runs, what happened and
what it cost (no LLM call in any of them). Every table fits an 80-column terminal: ids
are short (any unique prefix works in the commands that take one), the rest is in
``--json``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus

from stratlab.cli._common import (
    CliError,
    console,
    fmt_num,
    fmt_usd,
    narrow_table,
    outcome_text,
    print_json,
    short_ids,
    store,
)
from stratlab.config import Settings
from stratlab.models.optimization import OptimizationProgress
from stratlab.models.records import SessionRecord
from stratlab.models.research import OUTCOMES as CYCLE_OUTCOMES
from stratlab.models.research import CycleStatus
from stratlab.store.budget import BudgetRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.trading import PaperRepo

SCOPES = ("research", "optimizer")
OPTIMIZER_TRIGGERS = ("regression",)
"""Triggers of the cycles the optimizer runs to measure prompts: `history` hides them
unless asked (`--trigger regression`), `status` counts them."""
OUTCOMES = ("running", *CYCLE_OUTCOMES)
"""What `history --outcome` filters on: a cycle's outcome, or running."""
LIVE_LIMIT = 20  # running cycles asked for their live status


def when(value: datetime | None) -> str:
    """A time in 11 characters, month to minute, UTC (--json has the whole timestamp)."""
    return "—" if value is None else value.astimezone(UTC).strftime("%m-%d %H:%M")


# --- status ----------------------------------------------------------------------------------


async def status(cfg: Settings, *, as_json: bool) -> None:
    """Everything that runs, from Temporal and Postgres; either being unreachable is an
    error (exit 1), not an empty table."""
    from stratlab.cli.lab_schedules import client_for, lab_schedules

    client = await client_for(cfg)
    async with store(cfg, timeout=5) as db:
        sessions = SessionRepo(db)
        running = await sessions.running()
        recent = await sessions.search(5, hidden=OPTIMIZER_TRIGGERS)
        days = await budget_days(cfg, BudgetRepo(db))
        paper = [
            s for s in await PaperRepo(db).list_strategies() if s.status in ("running", "paused")
        ]
    cycles = [s for s in running if s.trigger not in OPTIMIZER_TRIGGERS]
    evaluations = len(running) - len(cycles)
    live = await live_status(client, [s.workflow_id for s in cycles[:LIVE_LIMIT]])
    generations = await running_generations(cfg, client)
    schedules = await lab_schedules(cfg, client)
    if as_json:
        print_json(
            {
                "running": [
                    {**s.model_dump(mode="json"), "live": live.get(s.workflow_id)} for s in cycles
                ],
                "optimizer_evaluations_running": evaluations,
                "generations": generations,
                "paper": [p.model_dump(mode="json") for p in paper],
                "schedules": [s.as_json() for s in schedules],
                "recent": recent,
                "budget": days,
            }
        )
        return
    from stratlab.cli.schedules import schedules_table

    console.print(cycles_table(cycles, live))
    if evaluations:
        console.print(f"and {evaluations} cycle(s) the optimizer runs to measure prompts")
    if generations:
        console.print(generations_running_table(generations))
    if paper:
        console.print(paper_running_table(paper))
    console.print(schedules_table(schedules) if schedules else "no lab schedules")
    console.print(history_table(recent, title="Recent outcomes"))
    console.print(budget_table(days))


async def live_status(client: Client, workflow_ids: list[str]) -> dict[str, CycleStatus | str]:
    """Each cycle's ``status`` query answer (free: no LLM), or the state Temporal gives
    a workflow that cannot answer (a row left running by a terminated workflow)."""
    found: dict[str, CycleStatus | str] = {}
    for wid in workflow_ids:
        handle = client.get_workflow_handle(wid)
        try:
            answer = await handle.query("status", result_type=CycleStatus)
        except Exception:  # finished, unknown to this server, or not started yet
            try:
                described = await handle.describe()
            except Exception:
                found[wid] = "unknown to Temporal"
                continue
            state = described.status
            if state is not None and state != WorkflowExecutionStatus.RUNNING:
                found[wid] = state.name.lower()
            continue
        if answer is not None:
            found[wid] = answer
    return found


async def running_generations(cfg: Settings, client: Client) -> list[dict[str, Any]]:
    """This lab's running optimizer generations with their ``progress`` answer."""
    query = (
        "WorkflowType = 'OptimizationGenerationWorkflow' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{cfg.task_queue('orchestrator')}'"
    )
    found: list[dict[str, Any]] = []
    async for execution in client.list_workflows(query):
        row: dict[str, Any] = {"workflow_id": execution.id, "started": execution.start_time}
        try:
            progress = await client.get_workflow_handle(execution.id).query(
                "progress", result_type=OptimizationProgress
            )
        except Exception:  # between runs of a continue-as-new chain, or not started yet
            progress = None
        row["progress"] = progress.model_dump(mode="json") if progress else None
        found.append(row)
    return found


def cycles_table(cycles: list[SessionRecord], live: dict[str, CycleStatus | str]) -> Table:
    table = narrow_table("Running cycles (times UTC)")
    table.add_column("session", no_wrap=True)
    table.add_column("symbol", overflow="fold", min_width=7)
    table.add_column("trigger", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    table.add_column("it", justify="right", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("sharpe", justify="right", no_wrap=True)
    short = short_ids([s.session_id for s in cycles])
    for s in cycles:
        st = live.get(s.workflow_id)
        answer = st if isinstance(st, CycleStatus) else None
        phase = answer.phase if answer else f"[dim]{st}[/dim]" if st else "?"
        table.add_row(
            short[s.session_id],
            Text(s.symbol),
            s.trigger,
            phase,
            str(answer.iteration) if answer else "?",
            when(s.started_at),
            fmt_num(answer.last_sharpe) if answer else "—",
        )
    if not cycles:
        table.add_row("[dim]none running[/dim]", "", "", "", "", "", "")
    return table


def generations_running_table(generations: list[dict[str, Any]]) -> Table:
    table = narrow_table("Optimizer generations running (times UTC)")
    table.add_column("workflow", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    table.add_column("evaluations", justify="right", no_wrap=True)
    table.add_column("started", no_wrap=True)
    for g in generations:
        progress = g.get("progress") or {}
        planned = progress.get("planned_evaluations")
        table.add_row(
            g["workflow_id"],
            progress.get("phase", "?"),
            f"{planned} planned" if planned else "—",
            when(g.get("started")),
        )
    return table


def paper_running_table(paper: list[Any]) -> Table:
    table = narrow_table("Paper strategies running or paused (times UTC)")
    table.add_column("strategy", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("symbols", overflow="fold", min_width=7)
    table.add_column("updated", no_wrap=True)
    for p in paper:
        table.add_row(Text(p.strategy_id), p.status, Text(",".join(p.symbols)), when(p.updated_at))
    return table


# --- history ---------------------------------------------------------------------------------


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """``--since``: a date (2025-03-01), a date and time, or an age (90m, 6h, 3d, 2w)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    age = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text.lower())
    if age:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[age.group(2)]
        return now - timedelta(**{unit: int(age.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since {text!r} is not a date (2025-03-01), a time (2025-03-01T12:00) or an "
            "age (90m, 6h, 3d, 2w)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def history_table(sessions: list[SessionRecord], *, title: str) -> Table:
    table = narrow_table(f"{title} (times UTC)")
    table.add_column("session", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("trigger", no_wrap=True)
    table.add_column("symbol", overflow="fold", min_width=7)
    table.add_column("outcome", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    short = short_ids([s.session_id for s in sessions])
    for s in sessions:
        table.add_row(
            short[s.session_id],
            when(s.started_at),
            s.trigger,
            Text(s.symbol),
            outcome_text(s.outcome),
            fmt_usd(s.cost_usd),
        )
    return table


async def history(
    cfg: Settings,
    *,
    limit: int,
    trigger: str | None,
    symbol: str | None,
    outcome: str | None,
    since: datetime | None,
    as_json: bool,
) -> None:
    if outcome is not None and outcome not in OUTCOMES:
        raise CliError(f"unknown outcome {outcome!r}; outcomes are: {', '.join(OUTCOMES)}")
    async with store(cfg) as db:
        repo = SessionRepo(db)
        found = await repo.search(
            limit,
            trigger=trigger,
            symbol=symbol,
            outcome=outcome,
            since=since,
            hidden=OPTIMIZER_TRIGGERS,
        )
        counts = await repo.count_by_trigger(symbol=symbol, outcome=outcome, since=since)
    hidden = 0 if trigger else sum(counts.get(t, 0) for t in OPTIMIZER_TRIGGERS)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print(
            "no sessions match" if counts else "no sessions yet: `stratlab trigger` starts one"
        )
    else:
        console.print(history_table(found, title=f"Last {len(found)} sessions, newest first"))
    if hidden:
        console.print(
            f"{hidden:,} optimizer evaluation(s) hidden: --trigger regression shows them",
            style="dim",
        )


# --- budget ----------------------------------------------------------------------------------


async def budget_days(cfg: Settings, repo: BudgetRepo) -> list[dict[str, Any]]:
    """Today's budget per scope. The store holds the usable cap (the configured cap less
    the buffer that is never spent); ``configured_cap_usd`` is the configured one."""
    today = datetime.now(UTC).date()
    days = []
    for scope in SCOPES:
        usable = cfg.budget_cap(scope) - cfg.budget_buffer_usd
        day = await repo.day_status(scope, today, default_cap=usable)
        days.append(
            {
                **day.model_dump(mode="json"),
                "buffer_usd": cfg.budget_buffer_usd,
                "configured_cap_usd": day.cap_usd + cfg.budget_buffer_usd,
            }
        )
    return days


def budget_table(days: list[dict[str, Any]], title: str | None = None) -> Table:
    day = days[0]["day"] if days else date.today().isoformat()
    table = narrow_table(title or f"Budget today ({day}, UTC)")
    table.add_column("scope", no_wrap=True)
    for col in ("cap", "buffer", "spent", "reserved", "remaining"):
        table.add_column(col, justify="right", no_wrap=True)
    for d in days:
        table.add_row(
            d["scope"],
            fmt_usd(d["configured_cap_usd"]),
            fmt_usd(d["buffer_usd"]),
            fmt_usd(d["spent_usd"]),
            fmt_usd(d["reserved_usd"]),
            fmt_usd(d["remaining_usd"]),
        )
    return table


async def budget(cfg: Settings, *, days: int, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = BudgetRepo(db)
        today = await budget_days(cfg, repo)
        past = {scope: await repo.history(scope, days) for scope in SCOPES}
    if as_json:
        print_json({"today": today, "history": past})
        return
    console.print(budget_table(today))
    console.print(
        "cap: the configured daily budget; the buffer is never spent; remaining: what new "
        "calls may still reserve",
        style="dim",
    )
    table = narrow_table(f"Daily spend, last {days} days")
    table.add_column("scope", no_wrap=True)
    table.add_column("day", no_wrap=True)
    for col in ("cap", "spent", "overrun"):
        table.add_column(col, justify="right", no_wrap=True)
    since = datetime.now(UTC).date() - timedelta(days=days)
    for scope, rows in past.items():
        for row in rows:
            if row.day >= since:
                table.add_row(
                    scope,
                    row.day.isoformat(),
                    fmt_usd(row.cap_usd + cfg.budget_buffer_usd),
                    fmt_usd(row.spent_usd),
                    fmt_usd(row.overrun_usd),
                )
    console.print(table)
