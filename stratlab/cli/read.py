"""Bodies of read-only CLI commands: ``stratlab session`` and ``data list`` (no LLM call,
nothing changed). Commands that change state live where their name says: ``control``
(trigger, pause, resume) and ``data_import`` (data import, data remove)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from stratlab.cli._common import CliError, console, narrow_table, print_json, store
from stratlab.cli.ids import resolve_session
from stratlab.cli.session_view import load_session, render_session
from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled
from stratlab.market.quality import stale_open_notes, stale_open_share, stale_open_stretches
from stratlab.store.market import MarketRepo


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
