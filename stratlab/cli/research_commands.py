"""Commands that start and steer research: ``trigger`` a cycle, ``evaluate`` your own
strategy, ``pause`` and ``resume`` the research trigger. ``stratlab.cli.main`` registers
them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.cli._common import CliError, JsonOpt, run, settings


def trigger(
    symbol: Annotated[str, typer.Option(help="data set")] = "sp500",
    kind: Annotated[
        str | None, typer.Option(help="rules | ml | code (default: the designer picks)")
    ] = None,
    max_iterations: Annotated[int, typer.Option(min=1, max=10)] = 3,
    blind: Annotated[
        bool,
        typer.Option(
            "--blind",
            help="hide the symbol, dates and price levels from the designer",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="wait for the outcome")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a research cycle now."""
    if kind not in (None, "rules", "ml", "code"):
        raise CliError(f"unknown kind {kind!r}; kinds are: rules, ml, code")
    from stratlab.cli.control import trigger as start_cycle

    run(
        start_cycle(
            settings(), symbol, kind, max_iterations, blind=blind, wait=wait, as_json=as_json
        )
    )


def evaluate(
    spec: Annotated[
        Path,
        typer.Argument(help="a StrategySpec JSON file (rules, ml or code)", show_default=False),
    ],
    symbol: Annotated[
        str | None, typer.Option(help="data set (default: the spec's own symbol)")
    ] = None,
    period_start: Annotated[
        str | None, typer.Option(help="first day of the data window, YYYY-MM-DD")
    ] = None,
    period_end: Annotated[
        str | None, typer.Option(help="last day of the data window, YYYY-MM-DD")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run your own strategy through the lab's pipeline: fit walk-forward, look-ahead
    probe, seed gates, statistical gate (counted in the trial ledger), holdout. No LLM."""
    from stratlab.cli.evaluate import evaluate as run_evaluate
    from stratlab.cli.evaluate import parse_period

    period = parse_period(period_start, period_end)
    run(run_evaluate(settings(), spec, symbol=symbol, period=period, as_json=as_json))


def pause(reason: Annotated[str, typer.Option(help="note shown in the UI")] = "paused") -> None:
    """Pause the research trigger schedule."""
    from stratlab.cli.control import set_paused

    run(set_paused(settings(), paused=True, note=reason))


def resume(reason: Annotated[str, typer.Option(help="note shown in the UI")] = "resumed") -> None:
    """Resume the research trigger schedule."""
    from stratlab.cli.control import set_paused

    run(set_paused(settings(), paused=False, note=reason))
