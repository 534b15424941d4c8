"""``stratlab data``: market data sets imported, listed and removed (the bodies are in
``data_import`` and ``read``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.cli import read
from stratlab.cli._common import JsonOpt, run, settings

data_app = typer.Typer(help="Market data sets: import, list and remove.", no_args_is_help=True)


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with date + OHLCV columns")],
    symbol: Annotated[
        str, typer.Option(help="name to use in cycles, e.g. btc-daily (not a bundled name)")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="replace your earlier import of this symbol")
    ] = False,
) -> None:
    """Import OHLCV bars as a new symbol; --replace replaces your earlier import of it."""
    from stratlab.cli.data_import import import_data

    run(import_data(settings(), file, symbol, replace=replace))


@data_app.command("remove")
def data_remove(
    symbol: Annotated[str, typer.Argument(help="an imported symbol (see `stratlab data list`)")],
    as_json: JsonOpt = False,
) -> None:
    """Delete an imported data set (refused while a running workflow reads it)."""
    from stratlab.cli.data_import import remove_data

    run(remove_data(settings(), symbol, as_json=as_json))


@data_app.command("list")
def data_list(as_json: JsonOpt = False) -> None:
    """Bundled and imported data sets."""
    run(read.list_data(settings(), as_json=as_json))
