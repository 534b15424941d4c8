"""Shared plumbing of the CLI: settings, the database, Temporal, errors and JSON output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console
from temporalio.client import Client

from stratlab.config import Settings
from stratlab.runtime import LocalStack, connect_client
from stratlab.store.db import Pool, apply_schema, make_pool

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


@asynccontextmanager
async def store(cfg: Settings) -> AsyncIterator[Pool]:
    url, _stack = database_url(cfg)
    pool = make_pool(url, max_size=4)
    await pool.open(wait=True, timeout=15)
    try:
        await apply_schema(pool)
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
