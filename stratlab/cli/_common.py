"""Shared plumbing of the CLI: settings, the database, Temporal, errors and JSON output."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from stratlab.config import Settings
from stratlab.llm.seeding import prepare_database
from stratlab.runtime import LocalStack, connect_client
from stratlab.store.db import Pool, make_pool

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
"""The ``--json`` flag every listing command takes: one definition, one help text."""

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


class CliError(Exception):
    """An error for the user: printed as one line, exit code 1."""


def settings() -> Settings:
    return Settings.from_env()


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def database_url(cfg: Settings) -> tuple[str, LocalStack | None]:
    """DATABASE_URL, or the embedded Postgres under $STRATLAB_HOME (started if needed)."""
    if cfg.database_url:
        return cfg.database_url, None
    stack = LocalStack(cfg)
    stack.settings.home.mkdir(parents=True, exist_ok=True)
    stack._start_postgres()
    return stack.database_url, stack


class DatabaseUnreachable(CliError):
    """Postgres did not answer: one line naming where it was looked for."""


def database_where(url: str) -> str:
    """host:port/dbname of a database URL, never its password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "DATABASE_URL"
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


@asynccontextmanager
async def store(cfg: Settings, *, timeout: float = 15) -> AsyncIterator[Pool]:
    url, _stack = database_url(cfg)
    pool = make_pool(url, max_size=4)
    # The pool logs each failed attempt; unconfigured logging would print them all to
    # stderr above the one line this command owes its user.
    quiet = logging.getLogger("psycopg.pool")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    try:
        await pool.open(wait=True, timeout=timeout)
    except psycopg.OperationalError as err:
        await pool.close()
        raise DatabaseUnreachable(
            f"cannot reach Postgres at {database_where(url)} within {timeout:g} s; "
            "start the lab (`stratlab dev`) or check DATABASE_URL"
        ) from err
    try:
        await prepare_database(pool)
        yield pool
    finally:
        await pool.close()


async def temporal(cfg: Settings) -> Client:
    return await connect_client(cfg)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2) + "\n")


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_usd(value: float | Decimal | None) -> str:
    return "—" if value is None else f"${float(value):.4f}"


def fmt_time(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


OUTCOME_STYLE = {
    "success": "green",
    "skipped_budget": "yellow",
}


def outcome_text(outcome: str | None) -> str:
    if outcome is None:
        return "[cyan]running[/cyan]"
    style = OUTCOME_STYLE.get(outcome, "red")
    return f"[{style}]{outcome}[/{style}]"


def narrow_table(title: str) -> Table:
    """A table for 80 columns: no side borders, two spaces between columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


# --- links, ids and plots ------------------------------------------------------------------

SHORT_ID = 8  # a uuid's first 8 hex digits: 4 billion values, unique in any lab's tables


def print_link(url: str, *, out: Console | None = None, indent: str = "  ") -> None:
    """A web-UI link whole on its own line: never wrapped, folded or cut, so it can be
    clicked or copied at any terminal width (the terminal may still show it on two rows)."""
    (out or console).print(Text(f"{indent}{url}"), soft_wrap=True, crop=False, highlight=False)


def short_ids(ids: list[str], *, least: int = SHORT_ID) -> dict[str, str]:
    """Each id shortened to the shortest prefix of at least ``least`` characters that no
    other id in ``ids`` shares, so a table's ids fit and any of them can be typed back."""
    unique = list(dict.fromkeys(ids))
    short: dict[str, str] = {}
    for ident in unique:
        n = min(least, len(ident))
        while n < len(ident) and any(o != ident and o.startswith(ident[:n]) for o in unique):
            n += 1
        short[ident] = ident[:n]
    return short


def check_plot_path(path: Path | None) -> None:
    """``--plot FILE``: a ``CliError`` now, before any work, for a file type matplotlib
    cannot write (it would fail with a traceback after the data was read)."""
    if path is None:
        return
    formats = plot_formats()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        got = f"a .{suffix} file" if suffix else "a file without an extension"
        raise CliError(f"--plot {path}: cannot write {got}; use one of .{', .'.join(formats)}")
    if path.exists() and path.is_dir():
        raise CliError(f"--plot {path} is a directory: give a file name such as plot.png")


def plot_formats() -> list[str]:
    """The file types matplotlib's Agg canvas writes, png first."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    supported = FigureCanvasAgg.get_supported_filetypes()
    return sorted(supported, key=lambda f: (f != "png", f))
