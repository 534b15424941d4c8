"""Bodies of the CLI commands that read or steer the lab (no LLM call in any of them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import (
    CliError,
    console,
    fmt_num,
    fmt_pct,
    fmt_usd,
    narrow_table,
    outcome_text,
    print_json,
    print_link,
    store,
    temporal,
)
from stratlab.cli.ids import resolve_session
from stratlab.cli.session_view import load_session, render_session
from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled, read_ohlcv_file
from stratlab.market.quality import stale_open_notes, stale_open_share, stale_open_stretches
from stratlab.models.research import ResearchCycleInput, ResearchCycleResult
from stratlab.runtime import StackError
from stratlab.store.db import Pool
from stratlab.store.market import DatasetExistsError, MarketRepo


async def session(cfg: Settings, ref: str, *, plot: Path | None, as_json: bool) -> None:
    async with store(cfg) as db:
        session_id = (await resolve_session(db, ref)).session_id
        detail = await load_session(db, session_id)
    if detail is None:  # removed between the two reads
        raise CliError(f"no session {ref!r}; `stratlab history` lists them")
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
    from stratlab.cli.control import set_schedule_paused

    client = await temporal(cfg)
    await set_schedule_paused(client, paused=paused, note=note)
    console.print(f"research trigger {'paused' if paused else 'resumed'}")


async def import_data(cfg: Settings, file: Path, symbol: str, *, replace: bool = False) -> None:
    """Import a CSV or Parquet file as ``symbol``. A bundled symbol's name is refused; an
    earlier import is replaced only with ``replace`` and while no workflow reads it."""
    if not symbol or not symbol.replace("-", "").replace("_", "").isalnum():
        raise CliError(f"symbol {symbol!r} must be letters, digits, '-' or '_'")
    bundled = {b.lower(): b for b in BUNDLED_SYMBOLS}
    if symbol.lower() in bundled:
        raise CliError(
            f"{symbol} is the name of a bundled data set and cannot be replaced; "
            f"import under another name, e.g. --symbol {symbol.lower()}-mine"
        )
    if not file.exists():
        raise CliError(f"no such file: {file}")
    async with store(cfg) as db:
        market = MarketRepo(db)
        existing = await market.get_dataset(symbol)
        if existing is not None and not replace:
            raise CliError(
                f"{symbol} is already imported ({existing.rows:,} bars from {existing.source}); "
                f"pass --replace to replace it, or `stratlab data remove {symbol}` first"
            )
        if existing is not None:
            await refuse_if_in_use(cfg, db, symbol, doing="replace")
        frame = await asyncio.to_thread(read_ohlcv_file, file)
        try:
            await market.replace_bars(symbol, frame, source=str(file), replace=replace)
        except DatasetExistsError:  # imported by someone else since the check above
            raise CliError(f"{symbol} was imported meanwhile; --replace replaces it") from None
    verb = "replaced" if existing is not None else "imported"
    console.print(
        f"{verb} {len(frame):,} bars for {symbol} "
        f"({frame.index[0]:%Y-%m-%d} → {frame.index[-1]:%Y-%m-%d})",
        highlight=False,
    )


async def remove_data(cfg: Settings, symbol: str, *, as_json: bool) -> None:
    """Delete an imported data set, unless a running workflow still reads it."""
    async with store(cfg) as db:
        market = MarketRepo(db)
        existing = await market.get_dataset(symbol)
        if existing is None:
            if symbol in BUNDLED_SYMBOLS:
                raise CliError(f"{symbol} is a bundled data set: there is no import to remove")
            raise CliError(f"no imported data set {symbol!r}; `stratlab data list` shows them")
        await refuse_if_in_use(cfg, db, symbol, doing="remove")
        removed = await market.delete_dataset(symbol)
    if removed is None:  # removed by someone else meanwhile
        raise CliError(f"no imported data set {symbol!r}; `stratlab data list` shows them")
    if as_json:
        print_json({"removed": removed})
        return
    console.print(
        f"removed {symbol}: {removed.rows:,} bars imported from {removed.source}",
        highlight=False,
    )
    if symbol in BUNDLED_SYMBOLS:
        console.print(f"cycles on {symbol} use the bundled data set again", highlight=False)


async def refuse_if_in_use(cfg: Settings, db: Pool, symbol: str, *, doing: str) -> None:
    """``CliError`` naming the running workflows that read ``symbol``."""
    users = await workflows_using(cfg, db, symbol)
    if users:
        more = f" and {len(users) - 2} more" if len(users) > 2 else ""
        raise CliError(
            f"cannot {doing} {symbol}: {len(users)} running workflow(s) use it "
            f"({', '.join(users[:2])}{more}); let them finish or stop them first"
        )


async def workflows_using(cfg: Settings, db: Pool, symbol: str) -> list[str]:
    """Ids of the running workflows that read ``symbol``: research sessions and paper
    strategies the store lists as running (unless Temporal says they ended), and running
    workflows of this lab that Temporal's visibility tags with the symbol. With Temporal
    unreachable, the store's word stands."""
    listed = [u["workflow_id"] for u in await MarketRepo(db).users(symbol)]
    try:
        client = await temporal(cfg)
    except StackError:
        return listed
    running: list[str] = []
    for wid in listed:
        try:
            described = await client.get_workflow_handle(wid).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue  # a row left behind by a workflow this server never ran
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            running.append(wid)
    query = (
        f"ExecutionStatus = 'Running' AND StratlabSymbol = '{symbol}' "
        f"AND TaskQueue = '{cfg.task_queue('orchestrator')}'"
    )
    async for execution in client.list_workflows(query):
        if execution.id not in running:
            running.append(execution.id)
    return running


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
            if d.symbol in BUNDLED_SYMBOLS:  # an import made before bundled names were refused
                description += (
                    f"; cycles on {d.symbol} use it instead of the bundled set "
                    f"(`stratlab data remove {d.symbol}` undoes that)"
                )
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
    table = narrow_table("Data sets")
    table.add_column("symbol", no_wrap=True)
    table.add_column("source", overflow="fold", ratio=1)
    table.add_column("description", overflow="fold", ratio=2)
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
