"""Commands that read what the lab did: ``status``, ``history``, ``session``, ``watch``,
``trials`` and ``budget``. ``stratlab.cli.main`` registers them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.cli import read
from stratlab.cli._common import JsonOpt, check_plot_path, run, settings


def status(as_json: JsonOpt = False) -> None:
    """What runs: cycles, optimizer generations, paper strategies and schedules; recent
    outcomes and today's budget (no LLM call, no tokens). Exit 1 if Temporal or Postgres
    cannot be reached."""
    from stratlab.cli.overview import status as show_status

    run(show_status(settings(), as_json=as_json))


def history(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    trigger: Annotated[
        str | None,
        typer.Option(help="only this trigger: schedule, cli, manual, demo, user, regression"),
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="only this data set")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="only this outcome, e.g. success, failed_backtest_gate")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="started since a date (2025-03-01) or an age (6h, 3d)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Research sessions, newest first. The optimizer's evaluations (trigger regression)
    are hidden unless --trigger regression asks for them; a footer counts them."""
    from stratlab.cli.overview import history as show_history
    from stratlab.cli.overview import parse_since

    run(
        show_history(
            settings(),
            limit=limit,
            trigger=trigger,
            symbol=symbol,
            outcome=outcome,
            since=parse_since(since),
            as_json=as_json,
        )
    )


def session(
    session_id: Annotated[
        str, typer.Argument(help="session id, its workflow id, or a unique prefix of either")
    ],
    plot: Annotated[
        Path | None,
        typer.Option(help="write equity vs buy-and-hold and drawdown to FILE.png (or .svg, .pdf)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything about one session: phases, gates, spec, training, backtest, assessment, calls."""
    check_plot_path(plot)
    run(read.session(settings(), session_id, plot=plot, as_json=as_json))


def watch(
    session_id: Annotated[
        str,
        typer.Argument(
            help="session id, workflow id (research-<id>, evaluate-<id> or a custom one) "
            "or a unique prefix of either"
        ),
    ],
) -> None:
    """Follow a running cycle or evaluation live: phase, iteration, last metric, last error."""
    from stratlab.cli.watch import watch as run_watch

    run(run_watch(settings(), session_id))


def trials(
    symbol: Annotated[str | None, typer.Option(help="only this symbol's universes")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The trial ledger: how many strategies the lab tried per symbol and data window."""
    from stratlab.cli.trials import trials as show_trials

    run(show_trials(settings(), symbol=symbol, as_json=as_json))


def budget(
    days: Annotated[int, typer.Option(min=1, max=365)] = 7, as_json: JsonOpt = False
) -> None:
    """Today's budget per scope (cap, buffer, spent, reserved) and the recent daily spend."""
    from stratlab.cli.overview import budget as show_budget

    run(show_budget(settings(), days=days, as_json=as_json))
