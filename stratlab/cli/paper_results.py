"""Bodies of ``stratlab paper equity`` (portfolio value against buy-and-hold, as a table,
JSON or a chart) and ``stratlab paper trades`` (the round trips of the book's fills)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table
from rich.text import Text

from stratlab.backtest.drawdown import max_drawdown
from stratlab.cli._common import CliError, console, fmt_pct, print_json, store
from stratlab.cli.paper_view import clean, day, money, qty, stored_book, stored_strategy
from stratlab.cli.plots import plot_equity_and_drawdown
from stratlab.config import Settings
from stratlab.models.trading import MetricPoint, PortfolioValueSeries
from stratlab.store.trading import EquityPoint, PaperRepo, PaperStrategyRecord
from stratlab.trading.digest import trades_from_fills

EQUITY_ROWS = 20


def _sample(points: Sequence[EquityPoint], n: int) -> list[EquityPoint]:
    if len(points) <= n:
        return list(points)
    picks = sorted({round(i * (len(points) - 1) / (n - 1)) for i in range(n)})
    return [points[i] for i in picks]


async def equity(cfg: Settings, ref: str, *, plot: Path | None, as_json: bool) -> None:
    async with store(cfg) as db:
        record = await stored_strategy(db, ref)
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
        strategy_id = (await stored_strategy(db, ref)).strategy_id
        loaded = await stored_book(PaperRepo(db), strategy_id)
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
