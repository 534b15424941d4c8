"""``stratlab paper``: start, steer and read the paper-trading strategies (one
``PaperTradingWorkflow`` each). The command bodies are in ``paper_control`` (start and
signals), ``paper_view`` (list), ``paper_status`` and ``paper_results`` (equity, trades)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.cli import paper_control, paper_results, paper_status, paper_view
from stratlab.cli._common import JsonOpt, check_plot_path, run, settings
from stratlab.temporal_names import PAPER_PAUSE, PAPER_RESUME, PAPER_STOP

paper_app = typer.Typer(
    help="Paper trading: an LLM composer trades a paper book on replayed or live bars.",
    no_args_is_help=True,
)
StrategyArg = Annotated[
    str, typer.Argument(help="strategy id or a unique prefix (see `stratlab paper list`)")
]


@paper_app.command("start")
def start(
    symbols: Annotated[str, typer.Option(help="comma-separated data sets, e.g. sp500,nasdaq")],
    strategy_id: Annotated[
        str | None, typer.Option("--id", help="strategy id (default: from name or symbols)")
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    prompt_id: Annotated[
        str | None, typer.Option(help="composer prompt id or 6+ char prefix (default: prod)")
    ] = None,
    skill: Annotated[
        str | None, typer.Option(help="a skill whose signal the composer sees")
    ] = None,
    interval: Annotated[str, typer.Option(help="bar interval of the data")] = "1d",
    replay_from: Annotated[
        str | None, typer.Option(help="replay history from this date (default: live feed)")
    ] = None,
    replay_to: Annotated[str | None, typer.Option(help="last replayed date")] = None,
    speed: Annotated[str, typer.Option(help="replay: wall time per bar, e.g. 1s, 250ms, 0")] = "1s",
    poll: Annotated[str, typer.Option(help="live: how often the feed is polled")] = "60s",
    feed: Annotated[
        list[str] | None, typer.Option(help="live: SYMBOL=FILE, a CSV/Parquet that grows")
    ] = None,
    initial_capital: Annotated[float, typer.Option(help="starting cash")] = 100_000.0,
    allow_short: Annotated[bool, typer.Option(help="let the composer go short")] = False,
    max_position: Annotated[
        float, typer.Option(help="cap on |position| * price per instrument")
    ] = 50_000.0,
    fees_bps: Annotated[float, typer.Option(help="fees, basis points of traded value")] = 5.0,
    slippage_bps: Annotated[float, typer.Option(help="slippage, basis points")] = 5.0,
    max_cycles: Annotated[int | None, typer.Option(help="stop after this many decisions")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the end and print the summary")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a paper strategy (a PaperTradingWorkflow) on replayed or live bars."""
    inp = paper_control.build_input(
        symbols=symbols,
        strategy_id=strategy_id,
        name=name,
        prompt_id=prompt_id,
        skill_id=skill,
        interval=interval,
        replay_from=replay_from,
        replay_to=replay_to,
        speed=speed,
        poll=poll,
        feed=feed or [],
        initial_capital=initial_capital,
        allow_short=allow_short,
        max_position=max_position,
        fees_bps=fees_bps,
        slippage_bps=slippage_bps,
        max_cycles=max_cycles,
    )
    run(paper_control.start(settings(), inp, wait=wait, as_json=as_json))


@paper_app.command("list")
def list_strategies(as_json: JsonOpt = False) -> None:
    """The paper strategies by P&L %: status, symbols, value, P&L and last bar."""
    run(paper_view.list_strategies(settings(), as_json=as_json))


@paper_app.command("status")
def status(strategy_id: StrategyArg, as_json: JsonOpt = False) -> None:
    """One strategy: its portfolio, its last decisions and guardrail changes, its workflow."""
    run(paper_status.status(settings(), strategy_id, as_json=as_json))


@paper_app.command("pause")
def pause(strategy_id: StrategyArg, as_json: JsonOpt = False) -> None:
    """Pause a running strategy: no decisions until resumed."""
    run(paper_control.signal(settings(), strategy_id, PAPER_PAUSE, reason=None, as_json=as_json))


@paper_app.command("resume")
def resume(strategy_id: StrategyArg, as_json: JsonOpt = False) -> None:
    """Resume a paused strategy."""
    run(paper_control.signal(settings(), strategy_id, PAPER_RESUME, reason=None, as_json=as_json))


@paper_app.command("stop")
def stop(
    strategy_id: StrategyArg,
    reason: Annotated[
        str, typer.Option(help="why (kept with the result)")
    ] = "stopped from the CLI",
    as_json: JsonOpt = False,
) -> None:
    """Stop a strategy for good: its workflow ends with its final summary."""
    run(paper_control.signal(settings(), strategy_id, PAPER_STOP, reason=reason, as_json=as_json))


@paper_app.command("equity")
def equity(
    strategy_id: StrategyArg,
    plot: Annotated[
        Path | None,
        typer.Option(help="write portfolio value vs buy-and-hold to FILE.png (or .svg, .pdf)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Portfolio value against buy-and-hold: sampled points and final figures."""
    check_plot_path(plot)
    run(paper_results.equity(settings(), strategy_id, plot=plot, as_json=as_json))


@paper_app.command("trades")
def trades(strategy_id: StrategyArg, as_json: JsonOpt = False) -> None:
    """Round trips from the book's fills, open ones included."""
    run(paper_results.trades(settings(), strategy_id, as_json=as_json))
