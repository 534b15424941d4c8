"""Bodies of the read commands of ``stratlab paper``: what the paper strategies did, from
Postgres and the running workflow's ``summary`` query. This module holds ``paper list``
and what the other read modules share; ``paper status`` is in ``paper_status``, ``paper
equity`` and ``paper trades`` in ``paper_results``. Starting and steering the strategies
is in ``paper_control``. Untrusted text (LLM output, failure messages) goes through
``clean`` and is printed as plain ``Text``, never as rich markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pydantic
from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import (
    CliError,
    console,
    fmt_pct,
    narrow_table,
    print_json,
    store,
    temporal,
)
from stratlab.cli.ids import resolve_paper
from stratlab.config import Settings
from stratlab.models.paper import (
    PaperSummary,
)
from stratlab.models.trading import StrategySummary, UtcDatetime
from stratlab.runtime import StackError
from stratlab.store.db import Pool
from stratlab.store.trading import EquityPoint, PaperRepo, PaperStrategyRecord
from stratlab.temporal_names import (
    PAPER_SUMMARY,
    PAPER_WORKFLOW_ID,
)
from stratlab.trading.paper import PaperBook

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class PaperStrategyRow(StrategySummary):
    """A row of ``paper list``: the seed's StrategySummary plus what the table shows."""

    symbols: list[str] = pydantic.Field(default_factory=list)
    initial_capital: float | None = None
    total_value: float | None = None
    last_bar_ts: UtcDatetime | None = None
    workflow_id: str | None = None
    reason: str | None = pydantic.Field(None, description="why its workflow ended early")


# --- small helpers ------------------------------------------------------------------------


def clean(value: Any, limit: int | None = None) -> str:
    """Untrusted text on one line: control characters become spaces; ``limit`` truncates."""
    text = _CONTROL.sub(" ", "" if value is None else str(value)).strip()
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def qty(value: float | None) -> str:
    return "—" if value is None else f"{value:,.6g}"


def day(value: datetime | str | None) -> str:
    return "—" if value is None else str(value)[:10]


def run_mode(record: PaperStrategyRecord | None) -> str:
    """replay or live, from the run options stored with the strategy (when there)."""
    config = record.config if record else {}
    if "mode" in config:
        return str(config["mode"])
    if "replay_from" in config:
        return "replay" if config["replay_from"] else "live"
    return "—"


def workflow_id(strategy_id: str) -> str:
    return PAPER_WORKFLOW_ID.format(strategy_id=strategy_id)


async def stored_strategy(db: Pool, ref: str) -> PaperStrategyRecord:
    """A stored strategy by id or unique id prefix; ``CliError`` otherwise."""
    strategy_id = await resolve_paper(db, ref)
    found = None if strategy_id is None else await PaperRepo(db).get_strategy(strategy_id)
    if found is None:
        raise CliError(f"no paper strategy {ref!r}; `stratlab paper list` shows them")
    return found


async def stored_book(repo: PaperRepo, strategy_id: str) -> tuple[int, PaperBook] | None:
    """The strategy's last stored cycle and its book, or None before it has one."""
    loaded = await repo.load_book(strategy_id)
    return None if loaded is None else (loaded[0], PaperBook.from_state(loaded[1]))


async def paper_id(cfg: Settings, ref: str) -> str:
    """The strategy id ``ref`` names (an id or a unique prefix); ``ref`` itself when the
    store knows none, so a workflow started elsewhere is still found by its id."""
    async with store(cfg) as db:
        return await resolve_paper(db, ref) or ref


# --- start and signals ----------------------------------------------------------------------


async def live_summary(cfg: Settings, strategy_id: str) -> tuple[str | None, PaperSummary | None]:
    """The workflow's execution status ("not found" without one) and, while it runs, its
    ``summary`` query answer; ``(None, None)`` when Temporal cannot be asked."""
    try:
        handle = (await temporal(cfg)).get_workflow_handle(workflow_id(strategy_id))
        described = await handle.describe()
    except StackError:
        return None, None
    except RPCError as err:
        return ("not found" if err.status == RPCStatusCode.NOT_FOUND else None), None
    status = described.status.name.lower() if described.status else None
    if described.status != WorkflowExecutionStatus.RUNNING:
        return status, None
    try:
        answer = await handle.query(
            PAPER_SUMMARY, result_type=PaperSummary, rpc_timeout=timedelta(seconds=5)
        )
    except Exception:  # no worker polling, or the query is not there yet
        return status, None
    return status, answer


ENDED_EARLY = ("failed", "terminated", "timed_out", "canceled")
"""Workflow states of a strategy that did not stop by itself or by `paper stop`."""


async def failure_reason(client: Client, wid: str) -> str:
    """Why a workflow that ended early ended: its failure's innermost message."""
    from stratlab.cli.paper_control import root_cause

    try:
        await client.get_workflow_handle(wid).result()
    except WorkflowFailureError as err:
        return root_cause(err)
    except Exception as err:
        return clean(str(err) or type(err).__name__, 200)
    return "completed"


async def ended_early(cfg: Settings, rows: list[PaperStrategyRow]) -> list[PaperStrategyRow]:
    """``rows`` with the strategies whose workflow failed, was terminated or timed out
    marked ``error`` with the reason, plus such strategies that never got a row (their
    workflow failed before its first step); unchanged when Temporal cannot be asked."""
    try:
        client = await temporal(cfg)
    except StackError:
        return rows
    by_wid = {r.workflow_id or workflow_id(r.strategy_id or ""): r for r in rows}
    for wid, row in by_wid.items():
        if row.status not in ("running", "paused"):
            continue
        try:
            described = await client.get_workflow_handle(wid).describe()
        except RPCError:
            continue
        state = described.status.name.lower() if described.status else ""
        if state in ENDED_EARLY:
            row.status, row.reason = "error", f"{state}: {await failure_reason(client, wid)}"
    query = (
        f"WorkflowType = 'PaperTradingWorkflow' AND TaskQueue = "
        f"'{cfg.task_queue('orchestrator')}' AND ExecutionStatus IN "
        "('Failed', 'Terminated', 'TimedOut', 'Canceled')"
    )
    async for execution in client.list_workflows(query):
        if execution.id in by_wid:
            continue
        state = execution.status.name.lower() if execution.status else "failed"
        by_wid[execution.id] = PaperStrategyRow(
            strategy_id=execution.id.removeprefix("paper-"),
            status="error",
            workflow_id=execution.id,
            last_updated_ts=execution.close_time,
            reason=f"{state}: {await failure_reason(client, execution.id)}",
        )
    return list(by_wid.values())


def summary_text(s: PaperSummary) -> Text:
    text = Text.assemble(
        ("summary ", "bold"),
        f"{s.status} · {s.mode} · cycle {s.cycle} · last bar {day(s.last_bar_ts)} · ",
        f"value {money(s.total_value)} (P&L {money(s.pnl)}, {fmt_pct(s.pnl_pct)})",
        (" · halted", "red") if s.halted else "",
    )
    for label, value in (("waiting", s.waiting), ("finished", s.finished_reason)):
        if value:
            text.append(f"\n  {label}: {clean(value)}")
    for line in s.last_decision:
        text.append(f"\n  {clean(line, 160)}")
    return text


# --- list -----------------------------------------------------------------------------------


async def _row(
    repo: PaperRepo, s: PaperStrategyRecord, last: EquityPoint | None
) -> PaperStrategyRow:
    loaded = await stored_book(repo, s.strategy_id)
    view = None
    if loaded is not None:
        view = loaded[1].mark(loaded[1].last_prices, ts=last.ts if last else s.updated_at)
    compose = await repo.history(s.strategy_id, kinds=["compose"], limit=1)
    audit = compose[-1].payload if compose else {}
    value = last.total_value if last else (view.total_value if view else None)
    pnl = None if value is None else value - s.initial_capital
    return PaperStrategyRow(
        strategy_id=s.strategy_id,
        name=s.name,
        model_provider=audit.get("provider"),
        model_id=audit.get("model"),
        mode="virtual",
        status=s.status,
        pnl_abs=pnl,
        pnl_pct=None if pnl is None else pnl / s.initial_capital,
        realized_pnl=view.realized_pnl if view else None,
        unrealized_pnl=view.total_unrealized_pnl if view else None,
        last_updated_ts=s.updated_at,
        symbols=s.symbols,
        initial_capital=s.initial_capital,
        total_value=value,
        last_bar_ts=last.ts if last else None,
        workflow_id=s.workflow_id,
    )


async def list_strategies(cfg: Settings, *, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = PaperRepo(db)
        latest = await repo.latest_equity()
        rows = [
            await _row(repo, s, latest.get(s.strategy_id)) for s in await repo.list_strategies()
        ]
    rows = await ended_early(cfg, rows)
    rows.sort(key=lambda r: (r.pnl_pct is None, -(r.pnl_pct or 0.0), r.strategy_id or ""))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no paper strategies yet: stratlab paper start --symbols sp500 ...")
        return
    console.print(paper_table(rows))
    for r in rows:
        if r.reason:
            console.print(Text(f"{r.strategy_id}: {clean(r.reason, 160)}"), style="red")


def paper_table(rows: Sequence[PaperStrategyRow]) -> Table:
    """The leaderboard for 80 columns: whole ids (the next command needs them); the name,
    value and absolute P&L are in `paper status` and --json."""
    table = narrow_table("Paper strategies by P&L %")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("symbols", overflow="fold", min_width=7)
    table.add_column("P&L %", justify="right", no_wrap=True)
    table.add_column("last bar", no_wrap=True)
    for r in rows:
        table.add_row(
            Text(r.strategy_id or "?"),
            Text(r.status or "?", style="red" if r.status == "error" else ""),
            Text(",".join(r.symbols)),
            fmt_pct(r.pnl_pct),
            day(r.last_bar_ts),
        )
    return table
