"""``stratlab demo``: the whole lab once, end to end, then a table of what happened."""

from __future__ import annotations

import asyncio
import shutil
import time
from contextlib import suppress
from dataclasses import dataclass

from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from temporalio.client import WorkflowHandle

from stratlab.cli._common import console, fmt_num, fmt_pct, fmt_usd, outcome_text, print_link
from stratlab.cli.control import start_cycle
from stratlab.cli.stack import local_lab, running_workers
from stratlab.config import Settings
from stratlab.models.research import (
    CycleStatus,
    GateResult,
    ResearchCycleInput,
    ResearchCycleResult,
    StrategyKind,
)
from stratlab.telemetry import configure_logging

DEMO_CYCLES: tuple[tuple[str, StrategyKind | None], ...] = (
    ("sp500", "rules"),
    ("nasdaq", "rules"),
    ("sp500", "ml"),
    ("nasdaq", "code"),
)


def default_cycles() -> int:
    """All four demo cycles where bubblewrap can sandbox the code one, else the first three."""
    return len(DEMO_CYCLES) if shutil.which("bwrap") else len(DEMO_CYCLES) - 1


@dataclass
class DemoRun:
    symbol: str
    kind: str
    handle: WorkflowHandle
    started: float
    status: CycleStatus | None = None
    result: ResearchCycleResult | None = None
    error: str | None = None
    seconds: float = 0.0


async def demo(cfg: Settings, *, cycles: int) -> list[DemoRun]:
    log_file = (cfg.home / "demo.log").open("a")
    configure_logging(cfg.model_copy(update={"log_format": "json"}), stream=log_file)
    console.rule("[bold]stratlab demo")
    console.print(
        "The offline provider is a deterministic stand-in, not an AI: its designs are real "
        "specs measured by real backtests on real market data (S&P 500 and NASDAQ, 1999–2018)."
    )
    async with local_lab(cfg) as lab, running_workers(lab):
        runs = []
        for i in range(cycles):
            symbol, kind = DEMO_CYCLES[i % len(DEMO_CYCLES)]
            handle = await start_cycle(
                lab.client, cfg, ResearchCycleInput(symbol=symbol, kind=kind, trigger="demo")
            )
            runs.append(DemoRun(symbol, kind or "any", handle, time.perf_counter()))
        await _follow(runs)
    _print_results(runs, cfg)
    # Back to stderr before the file closes: pgserver still logs while it shuts down.
    configure_logging(cfg.model_copy(update={"log_level": "WARNING"}))
    log_file.close()
    return runs


async def _follow(runs: list[DemoRun]) -> None:
    async def wait(run: DemoRun) -> None:
        try:
            run.result = await run.handle.result()
        except Exception as err:  # a failed workflow is reported in the table, not raised
            run.error = str(err)
        run.seconds = time.perf_counter() - run.started

    waiters = [asyncio.create_task(wait(r)) for r in runs]
    with Live(_progress_table(runs), console=console, refresh_per_second=4) as live:
        while not all(w.done() for w in waiters):
            for run in runs:
                if run.result is None and run.error is None:
                    # The first workflow task may not have run yet: then there is no status.
                    with suppress(Exception):
                        run.status = await run.handle.query("status", result_type=CycleStatus)
            live.update(_progress_table(runs))
            await asyncio.sleep(0.25)
        live.update(_progress_table(runs))


def _progress_table(runs: list[DemoRun]) -> Table:
    table = Table(title="Research cycles", expand=False)
    for col in ("workflow", "symbol", "kind", "phase", "iteration", "last OOS sharpe"):
        table.add_column(col)
    for run in runs:
        st = run.status
        phase = "done" if run.result else ("error" if run.error else (st.phase if st else "queued"))
        table.add_row(
            run.handle.id,
            run.symbol,
            run.kind,
            phase,
            str(st.iteration) if st else "—",
            fmt_num(st.last_sharpe) if st else "—",
        )
    return table


def _gates_text(
    training: GateResult | None,
    backtest: GateResult | None,
    statistical: GateResult | None = None,
) -> str:
    parts = []
    labels = (("training", training), ("backtest", backtest), ("statistical", statistical))
    for label, gate in labels:
        if gate is None:
            continue
        failed = ", ".join(
            f"{c.name} {c.value:.3g} needs {c.op} {c.threshold:g}" for c in gate.failures()
        )
        parts.append(
            f"{label} [green]✓[/green]" if gate.passed else f"{label} [red]✗[/red] ({failed})"
        )
    return "  ".join(parts) or "—"


def _cycle_panel(run: DemoRun) -> Panel:
    """One cycle in a few short lines, readable in an 80-column terminal or a CI log."""
    res = run.result
    title = f"{run.symbol} · {run.kind}"
    if res is None:
        return Panel(f"[red]error[/red]: {run.error}", title=title, title_align="left")
    best = next((i for i in res.iterations if i.strategy_id == res.best_strategy_id), None)
    shown = best or (res.iterations[-1] if res.iterations else None)
    its = len(res.iterations)
    plural = "s" if its != 1 else ""
    converged = " (converged)" if res.converged else ""
    took = f"{run.seconds:.1f} s"
    lines = [f"{outcome_text(res.outcome)} after {its} iteration{plural} in {took}{converged}"]
    if shown is not None:
        lines.append(f"strategy  {shown.strategy_name} ({shown.kind})")
        gates = _gates_text(shown.training_gate, shown.backtest_gate, shown.statistical_gate)
        lines.append(f"gates     {gates}")
        if shown.statistical_gate is not None:
            lines.append(f"judged against N = {shown.trials:,} walk-forward records on this data")
        m = shown.metrics
        if m is not None:
            lines.append(
                f"walk-forward sharpe {fmt_num(m.sharpe)} · return {fmt_pct(m.total_return)} "
                f"(buy & hold {fmt_pct(m.benchmark_return)}) · max DD {fmt_pct(-m.max_drawdown)}"
                f" · win {m.win_rate:.0%} · {m.trades} trades"
            )
    if res.holdout is not None:
        h = res.holdout.metrics
        lines.append(
            f"holdout   sharpe {fmt_num(h.sharpe)} · return {fmt_pct(h.total_return)} "
            f"(buy & hold {fmt_pct(h.benchmark_return)}) · reported once, never fed back"
        )
    lines.append(f"LLM       {res.tokens:,} tokens · {fmt_usd(res.cost_usd)}")
    lines.append(f"session   stratlab session {res.session_id}")
    return Panel("\n".join(lines), title=title, title_align="left")


def _print_results(runs: list[DemoRun], cfg: Settings) -> None:
    console.print()
    console.rule("What happened")
    for run in runs:
        console.print(_cycle_panel(run))
        print_link(cfg.workflow_ui_link(run.handle.id))
    console.print(
        "A strategy is a discovery only if it beats what luck would produce given every "
        "design the lab tried on that data (the deflated Sharpe ratio against the trial "
        "ledger), walk-forward on the development period; the holdout is looked at once. "
        "On these markets most designs fail that test: that is the lab working, not broken.\n"
        "Costs are shadow prices of the offline provider, charged to the real daily budget.\n"
        "`make dev` (or .venv/bin/stratlab dev) keeps the stack up so the UI links open; "
        "the histories stay in .stratlab/temporal.db."
    )
