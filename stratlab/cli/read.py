"""Bodies of the CLI commands that read or steer the lab (no LLM call in any of them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from stratlab.cli._common import (
    CliError,
    console,
    fmt_num,
    fmt_time,
    fmt_usd,
    outcome_text,
    print_json,
    store,
    temporal,
)
from stratlab.cli.session_view import load_session, render_session
from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled, read_ohlcv_file
from stratlab.market.quality import stale_open_notes, stale_open_share, stale_open_stretches
from stratlab.models.research import CycleStatus, ResearchCycleInput
from stratlab.runtime import StackError
from stratlab.store.budget import BudgetRepo
from stratlab.store.market import MarketRepo
from stratlab.store.sessions import SessionRepo

SCOPES = ("research", "optimizer")


async def _live_status(cfg: Settings, workflow_ids: list[str]) -> dict[str, CycleStatus]:
    """The workflow's own ``status`` query, when Temporal is reachable (free: no LLM)."""
    if not workflow_ids:
        return {}
    try:
        client = await temporal(cfg)
    except StackError:
        return {}
    found: dict[str, CycleStatus] = {}
    for wid in workflow_ids:
        try:
            status = await client.get_workflow_handle(wid).query("status", result_type=CycleStatus)
        except Exception:  # finished, unknown to this server, or not started yet
            continue
        if status is not None:
            found[wid] = status
    return found


async def _budget_days(cfg: Settings, repo: BudgetRepo) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    days = []
    for scope in SCOPES:
        cap = cfg.budget_cap(scope) - cfg.budget_buffer_usd
        day = await repo.day_status(scope, today, default_cap=cap)
        days.append({**day.model_dump(mode="json"), "buffer_usd": cfg.budget_buffer_usd})
    return days


def _budget_table(days: list[dict[str, Any]], title: str = "Budget today (UTC)") -> Table:
    table = Table(title=title)
    for col in ("scope", "day", "cap", "spent", "reserved", "remaining"):
        table.add_column(col)
    for d in days:
        table.add_row(
            d["scope"],
            d["day"],
            fmt_usd(d["cap_usd"]),
            fmt_usd(d["spent_usd"]),
            fmt_usd(d["reserved_usd"]),
            fmt_usd(d["remaining_usd"]),
        )
    return table


async def status(cfg: Settings, *, as_json: bool) -> None:
    async with store(cfg) as db:
        sessions = SessionRepo(db)
        running = await sessions.running()
        recent = await sessions.recent(5)
        days = await _budget_days(cfg, BudgetRepo(db))
    live = await _live_status(cfg, [s.workflow_id for s in running])
    if as_json:
        print_json(
            {
                "running": [
                    {**s.model_dump(mode="json"), "live": live.get(s.workflow_id)} for s in running
                ],
                "recent": recent,
                "budget": days,
            }
        )
        return
    table = Table(title="Current cycles")
    for col in ("session", "symbol", "phase", "iteration", "started", "last sharpe"):
        table.add_column(col)
    for s in running:
        st = live.get(s.workflow_id)
        table.add_row(
            s.session_id,
            s.symbol,
            st.phase if st else "?",
            str(st.iteration) if st else "?",
            fmt_time(s.started_at),
            fmt_num(st.last_sharpe) if st else "—",
        )
    if not running:
        table.add_row("[dim]none running[/dim]", "", "", "", "", "")
    console.print(table)
    console.print(_history_table(recent, title="Recent outcomes"))
    console.print(_budget_table(days))


def _history_table(sessions: list[Any], *, title: str) -> Table:
    table = Table(title=title)
    table.add_column("session", no_wrap=True)
    for col in ("started", "symbol", "outcome", "iterations", "tokens", "cost"):
        table.add_column(col, overflow="fold")
    for s in sessions:
        iterations = len(s.result.iterations) if s.result else 0
        table.add_row(
            s.session_id,
            fmt_time(s.started_at),
            s.symbol,
            outcome_text(s.outcome),
            str(iterations),
            f"{s.tokens:,}",
            fmt_usd(s.cost_usd),
        )
    return table


async def history(cfg: Settings, *, limit: int, as_json: bool) -> None:
    async with store(cfg) as db:
        recent = await SessionRepo(db).recent(limit)
    if as_json:
        print_json(recent)
        return
    if not recent:
        console.print("no sessions yet: `stratlab trigger` or `make demo` starts one")
        return
    console.print(_history_table(recent, title=f"Last {len(recent)} sessions"))


async def session(cfg: Settings, session_id: str, *, plot: Path | None, as_json: bool) -> None:
    async with store(cfg) as db:
        detail = await load_session(db, session_id)
    if detail is None:
        raise CliError(f"no session {session_id!r}; `stratlab history` lists them")
    if plot is not None:
        from stratlab.cli.plots import plot_session

        written = plot_session(detail, plot)
        if written is None:
            raise CliError(f"session {session_id} has no backtest to plot")
    if as_json:
        print_json(detail.as_dict())
        return
    render_session(detail, cfg)
    if plot is not None:
        console.print(f"plot written to {plot}")


async def budget(cfg: Settings, *, days: int, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = BudgetRepo(db)
        today = await _budget_days(cfg, repo)
        past = {scope: await repo.history(scope, days) for scope in SCOPES}
    if as_json:
        print_json({"today": today, "history": past})
        return
    console.print(_budget_table(today))
    table = Table(title=f"Daily spend, last {days} days")
    for col in ("scope", "day", "cap", "spent"):
        table.add_column(col)
    since = datetime.now(UTC).date() - timedelta(days=days)
    for scope, rows in past.items():
        for row in rows:
            if row.day >= since:
                table.add_row(
                    scope, row.day.isoformat(), fmt_usd(row.cap_usd), fmt_usd(row.spent_usd)
                )
    console.print(table)


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
    from stratlab.cli.control import start_cycle
    from stratlab.research.data import known_symbols

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
    if wait:
        with console.status(f"waiting for {handle.id}…"):
            result = await handle.result()
        info["result"] = result.model_dump(mode="json")
    if as_json:
        print_json(info)
        return
    console.print(f"started {handle.id}{' (blind)' if blind else ''}\n  {info['ui']}")
    if wait:
        console.print(
            f"outcome: {outcome_text(result.outcome)}  (stratlab session {result.session_id})"
        )


async def set_paused(cfg: Settings, *, paused: bool, note: str) -> None:
    from stratlab.cli.control import set_schedule_paused

    client = await temporal(cfg)
    await set_schedule_paused(client, paused=paused, note=note)
    console.print(f"research trigger {'paused' if paused else 'resumed'}")


async def import_data(cfg: Settings, file: Path, symbol: str) -> None:
    if not file.exists():
        raise CliError(f"no such file: {file}")
    if not symbol or not symbol.replace("-", "").replace("_", "").isalnum():
        raise CliError(f"symbol {symbol!r} must be letters, digits, '-' or '_'")
    frame = read_ohlcv_file(file)
    async with store(cfg) as db:
        await MarketRepo(db).replace_bars(symbol, frame, source=str(file))
    console.print(
        f"imported {len(frame):,} bars for {symbol} "
        f"({frame.index[0]:%Y-%m-%d} → {frame.index[-1]:%Y-%m-%d})"
    )


async def list_data(cfg: Settings, *, as_json: bool) -> None:
    rows = [
        await asyncio.to_thread(_bundled_row, symbol, description)
        for symbol, description in BUNDLED_SYMBOLS.items()
    ]
    async with store(cfg) as db:
        market = MarketRepo(db)
        for d in await market.list_datasets():
            frame = await market.load_bars(d.symbol)
            description = f"{d.rows} bars, imported"
            rows.append(
                await asyncio.to_thread(_dataset_row, d.symbol, d.source, description, frame)
            )
    if as_json:
        print_json(rows)
        return
    console.print(data_table(rows))


def _bundled_row(symbol: str, description: str) -> dict[str, Any]:
    return _dataset_row(symbol, "bundled (arch)", description, load_bundled(symbol))


def _dataset_row(
    symbol: str, source: str, description: str, frame: pd.DataFrame | None
) -> dict[str, Any]:
    """A ``data list`` row: what the set is, and how often its open is the last close
    (``stale_open_share`` None when there are no bars to judge)."""
    row: dict[str, Any] = {"symbol": symbol, "source": source, "description": description}
    if frame is None or len(frame) < 2:
        return row | {"stale_open_share": None, "stale_open_stretches": [], "notes": []}
    return row | {
        "stale_open_share": stale_open_share(frame),
        "stale_open_stretches": [s.as_json() for s in stale_open_stretches(frame)],
        "notes": stale_open_notes(frame),
    }


def data_table(rows: list[dict[str, Any]]) -> Table:
    """The ``data list`` table. "stale opens" is the share of all bars whose open equals
    the previous close, then one line per stretch where most of them do."""
    table = Table(title="Data sets")
    for col in ("symbol", "source", "description"):
        table.add_column(col)
    table.add_column("stale opens", no_wrap=True)
    for r in rows:
        lines = [_share_text(r["stale_open_share"])]
        lines += [
            f"{s['share']:.0%} {s['start'][:7]}..{s['end'][:7]}" for s in r["stale_open_stretches"]
        ]
        table.add_row(r["symbol"], r["source"], r["description"], "\n".join(lines))
    return table


def _share_text(share: float | None) -> str:
    if share is None:
        return "n/a"
    return "<1% of bars" if 0 < share < 0.005 else f"{share:.0%} of bars"
