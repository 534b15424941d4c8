"""Bodies of the read commands of ``stratlab paper``: what the paper strategies did, from
Postgres and the running workflow's ``summary`` query, and a strategy's equity plotted
against buy-and-hold. Starting and steering them is in ``paper_control``.

Plans, rationales and guardrail details come from LLM output: they are printed as plain
``Text`` with control characters removed, never as rich markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from stratlab.backtest.drawdown import max_drawdown
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
from stratlab.cli.plots import plot_equity_and_drawdown
from stratlab.config import Settings
from stratlab.models.paper import (
    PaperSummary,
)
from stratlab.models.trading import (
    HistoryRecord,
    MetricPoint,
    PortfolioValueSeries,
    PortfolioView,
    StrategySummary,
    UtcDatetime,
)
from stratlab.runtime import StackError
from stratlab.store.db import Pool
from stratlab.store.trading import EquityPoint, PaperRepo, PaperStrategyRecord
from stratlab.temporal_names import (
    PAPER_SUMMARY,
    PAPER_WORKFLOW_ID,
)
from stratlab.trading.digest import trades_from_fills

DECISIONS_SHOWN = 5
RATIONALE_CHARS = 80
EQUITY_ROWS = 20
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


async def _strategy(db: Pool, ref: str) -> PaperStrategyRecord:
    """A stored strategy by id or unique id prefix; ``CliError`` otherwise."""
    strategy_id = await resolve_paper(db, ref)
    found = None if strategy_id is None else await PaperRepo(db).get_strategy(strategy_id)
    if found is None:
        raise CliError(f"no paper strategy {ref!r}; `stratlab paper list` shows them")
    return found


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
    loaded = await repo.load_book(s.strategy_id)
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


# --- status ---------------------------------------------------------------------------------


def decisions(records: Sequence[HistoryRecord]) -> list[dict[str, Any]]:
    """History records grouped per cycle (compose id) by decision bar, oldest first. A
    cycle's execution record carries the later fill bar's ts, so a cycle seen only
    through it (cut off by the query's limit) is left out."""
    cycles: dict[str, dict[str, Any]] = {}
    for record in records:
        cycle = cycles.setdefault(record.reference_id, {"compose_id": record.reference_id})
        cycle[record.kind] = record.payload
        if record.kind != "execution":
            cycle.setdefault("ts", record.ts)
    return sorted((c for c in cycles.values() if "ts" in c), key=lambda c: c["ts"])


def _plan_lines(compose: dict[str, Any]) -> list[str]:
    plan = compose.get("plan") or {}
    lines = []
    for item in plan.get("items") or []:
        symbol = (item.get("instrument") or {}).get("symbol")
        conf = item.get("confidence")
        why = clean(item.get("rationale"), RATIONALE_CHARS)
        lines.append(
            f"{clean(symbol, 20)} {clean(item.get('action'), 8)} → {qty(item.get('target_qty'))}"
            f" ({'—' if conf is None else f'{conf:.2f}'}) {why}"
        )
    if compose.get("error"):
        lines.append(f"error: {clean(compose['error'], RATIONALE_CHARS)}")
    return lines or ["no plan"]


def _decision_cells(cycle: dict[str, Any]) -> tuple[Text, ...]:
    bars = (cycle.get("features") or {}).get("bar") or {}
    ts = next((b.get("ts") for b in bars.values() if isinstance(b, dict)), None) or cycle["ts"]
    closes = [f"{clean(s, 20)} {money(b.get('close'))}" for s, b in bars.items()]
    decided = cycle.get("instructions") or {}
    rails = [
        f"{clean(g.get('rule'))} {clean(g.get('outcome'))} {clean(g.get('symbol'), 20)}: "
        f"{qty(g.get('requested'))} → {qty(g.get('result'))} {clean(g.get('detail'), 60)}"
        for g in decided.get("guardrails") or []
    ]
    if decided.get("fallback"):
        rails.append("fallback decided")
    fills = [
        f"{clean(f.get('side'))} {qty(f.get('quantity'))} {clean(f.get('symbol'), 20)} "
        f"@ {money(f.get('price'))}"
        for f in (cycle.get("execution") or {}).get("fills") or []
    ]
    return (
        Text("\n".join([day(ts), *closes])),
        Text("\n".join(_plan_lines(cycle.get("compose") or {}))),
        Text("\n".join(rails) or "—"),
        Text("\n".join(fills) or ("—" if "execution" in cycle else "pending: next bar's open")),
    )


def _portfolio(view: PortfolioView) -> list[Table | Text | str]:
    table = Table(title="Portfolio", title_justify="left")
    for col in ("symbol", "qty", "avg price", "mark", "unrealised P&L", "P&L %"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for symbol, p in view.positions.items():
        table.add_row(Text(symbol), qty(p.quantity), money(p.avg_price), money(p.mark_price),
                      money(p.unrealized_pnl), fmt_pct(p.pnl_pct))  # fmt: skip
    totals = Text(
        f"cash {money(view.cash)} · total value {money(view.total_value)} · realised P&L "
        f"{money(view.realized_pnl)} · fees {money(view.fees_paid)}"
    )
    if view.halted:
        totals.append(" · HALTED by the drawdown limit: only reducing orders pass", "red")
    return [table if view.positions else "no open positions", totals]


def _decisions_table(cycles: Sequence[dict[str, Any]]) -> Table:
    title = f"Last {len(cycles)} decisions" if len(cycles) > 1 else "Last decision"
    table = Table(title=title, title_justify="left")
    for col in ("bar", "plan (symbol action → target (confidence) rationale)", "guardrails",
                "fills"):  # fmt: skip
        table.add_column(col)
    for cycle in cycles:
        table.add_row(*_decision_cells(cycle))
    return table


def _header(strategy_id: str, record: PaperStrategyRecord | None, wf_status: str | None,
            mode: str) -> Text:  # fmt: skip
    head = Text.assemble(("paper strategy ", "bold"), (strategy_id, "bold cyan"))
    if record is not None:
        prompt = record.prompt_id or (f"skill {record.skill_id}" if record.skill_id else "prod")
        head.append(f"  {clean(record.name, 60)}\nstatus {record.status} · mode {mode} · ")
        head.append(f"symbols {', '.join(record.symbols)} · prompt {prompt} · ")
        head.append(f"capital {money(record.initial_capital)}")
    head.append(f"\nworkflow {workflow_id(strategy_id)}: {wf_status or 'Temporal not reachable'}")
    return head


async def status(cfg: Settings, ref: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        strategy_id = await resolve_paper(db, ref) or ref
        repo = PaperRepo(db)
        record = await repo.get_strategy(strategy_id)
        loaded = await repo.load_book(strategy_id)
        history = await repo.history(strategy_id, limit=(DECISIONS_SHOWN + 1) * 4)
        equity = await repo.equity(strategy_id)
    wf_status, summary = await live_summary(cfg, strategy_id)
    reason = None
    if wf_status in ENDED_EARLY:
        reason = await failure_reason(await temporal(cfg), workflow_id(strategy_id))
    if record is None and wf_status in (None, "not found"):
        raise CliError(f"no paper strategy {strategy_id!r}; `stratlab paper list` shows them")
    cycles = decisions(history)[-DECISIONS_SHOWN:]
    ts = equity[-1].ts if equity else datetime.now(UTC)
    view = loaded[1].mark(loaded[1].last_prices, ts=ts) if loaded else None
    if as_json:
        print_json({"strategy": record,
                    "workflow": {"status": wf_status, "summary": summary, "reason": reason},
                    "cycle": loaded[0] if loaded else None, "portfolio": view,
                    "decisions": cycles})  # fmt: skip
        return
    mode = summary.mode if summary else run_mode(record)
    console.print(_header(strategy_id, record, wf_status, mode))
    if reason is not None:
        console.print(Text(f"{wf_status}: {clean(reason, 300)}"), style="red")
    if summary is not None:
        console.print(summary_text(summary))
    if view is None:
        console.print("no book yet: the first cycle has not been applied")
    else:
        console.print(*_portfolio(view), sep="\n")
    if cycles:
        console.print(_decisions_table(cycles))


# --- equity and trades ----------------------------------------------------------------------


def _sample(points: Sequence[EquityPoint], n: int) -> list[EquityPoint]:
    if len(points) <= n:
        return list(points)
    picks = sorted({round(i * (len(points) - 1) / (n - 1)) for i in range(n)})
    return [points[i] for i in picks]


async def equity(cfg: Settings, ref: str, *, plot: Path | None, as_json: bool) -> None:
    async with store(cfg) as db:
        record = await _strategy(db, ref)
        strategy_id = record.strategy_id
        points = await PaperRepo(db).equity(strategy_id)
    capital = record.initial_capital
    final = points[-1] if points else None
    figures = {
        "initial_capital": capital,
        "final_value": final.total_value if final else None,
        "total_return": final.total_value / capital - 1.0 if final else None,
        "benchmark_return": final.benchmark / capital - 1.0
        if final and final.benchmark is not None
        else None,
        "max_drawdown": max_drawdown([p.total_value for p in points], capital) if points else None,
    }
    if plot is not None:
        if not points:
            raise CliError(f"paper strategy {strategy_id} has no equity points to plot yet")
        plot_equity(record, points, plot)
    if as_json:
        series = PortfolioValueSeries(
            strategy_id=strategy_id,
            points=[MetricPoint(ts=p.ts, value=p.total_value) for p in points],
        )
        bench = [MetricPoint(ts=p.ts, value=p.benchmark) for p in points if p.benchmark is not None]
        print_json({**series.model_dump(mode="json"), "benchmark": bench, **figures})
        return
    if not points:
        console.print(f"no equity points yet for {strategy_id}")
        return
    table = Table(title=f"{strategy_id}: portfolio value vs buy-and-hold", title_justify="left")
    for col in ("bar", "value", "return", "cash", "buy-and-hold", "b&h return"):
        table.add_column(col, justify="left" if col == "bar" else "right")
    for p in _sample(points, EQUITY_ROWS):
        bench_ret = None if p.benchmark is None else p.benchmark / capital - 1.0
        table.add_row(
            day(p.ts),
            money(p.total_value),
            fmt_pct(p.total_value / capital - 1.0),
            money(p.cash),
            money(p.benchmark),
            fmt_pct(bench_ret),
        )
    console.print(table)
    console.print(
        f"{len(points)} bars · final {money(figures['final_value'])} "
        f"({fmt_pct(figures['total_return'])}) · buy-and-hold "
        f"{fmt_pct(figures['benchmark_return'])} · max drawdown {fmt_pct(figures['max_drawdown'])}",
        highlight=False,
    )
    if plot is not None:
        console.print(f"plot written to {plot}", highlight=False, markup=False)


def plot_equity(record: PaperStrategyRecord, points: Sequence[EquityPoint], path: Path) -> Path:
    """Portfolio value and buy-and-hold (top) and the strategy's drawdown (bottom)."""
    values = [p.total_value for p in points]
    benchmarked = [p for p in points if p.benchmark is not None]
    ret = values[-1] / record.initial_capital - 1.0
    return plot_equity_and_drawdown(
        path,
        [p.ts for p in points],
        values,
        label=clean(record.name, 60),
        title=f"paper {record.strategy_id} ({', '.join(record.symbols)}): return {ret:+.1%}",
        benchmark=([p.ts for p in benchmarked], [float(p.benchmark or 0.0) for p in benchmarked]),
        initial=record.initial_capital,
    )


async def trades(cfg: Settings, ref: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        strategy_id = (await _strategy(db, ref)).strategy_id
        loaded = await PaperRepo(db).load_book(strategy_id)
        points = await PaperRepo(db).equity(strategy_id)
    book = loaded[1] if loaded else None
    found = trades_from_fills(list(book.fills.values()), include_open=True) if book else []
    if as_json:
        print_json([{**t.model_dump(mode="json"), "open": t.exit_ts is None} for t in found])
        return
    if not found:
        console.print(f"no trades yet for {strategy_id}")
        return
    now = points[-1].ts if points else None
    view = book.mark(book.last_prices, ts=now or datetime.now(UTC)) if book else None
    table = Table(title=f"{strategy_id}: round trips", title_justify="left")
    for col in (
        "entry",
        "exit",
        "symbol",
        "side",
        "qty",
        "entry price",
        "exit price",
        "P&L",
        "P&L %",
        "days",
    ):
        table.add_column(
            col, justify="right" if col not in ("entry", "exit", "symbol", "side") else "left"
        )
    for t in found:
        symbol = t.instrument.symbol
        pnl, pct, end = t.realized_pnl, t.realized_pnl_pct, t.exit_ts
        if end is None:  # open: marked at the last price, fees of the entry included
            pos = view.positions.get(symbol) if view else None
            pnl = None if pos is None or pos.unrealized_pnl is None else pos.unrealized_pnl - t.fees
            pct, end = (pos.pnl_pct if pos else None), now
        days = (end - t.entry_ts).total_seconds() / 86400 if end and t.entry_ts else None
        table.add_row(
            day(t.entry_ts),
            day(t.exit_ts) if t.exit_ts else "[yellow]open[/yellow]",
            Text(symbol),
            t.type,
            qty(t.quantity),
            money(t.entry_price),
            money(t.exit_price),
            money(pnl),
            fmt_pct(pct),
            "—" if days is None else f"{days:.0f}",
        )
    console.print(table)
    closed = [t.realized_pnl or 0.0 for t in found if t.exit_ts is not None]
    console.print(
        f"{len(closed)} closed ({sum(p > 0 for p in closed)} won), "
        f"{len(found) - len(closed)} open · realised {money(sum(closed))}",
        highlight=False,
    )
