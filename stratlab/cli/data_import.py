"""Bodies of ``stratlab data import`` and ``data remove``: the commands that change the
imported data sets (a bundled one is never replaced; an import in use by a running workflow
is neither replaced nor removed). Listing them is read only: ``read.list_data``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError, console, print_json, store, temporal
from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, read_ohlcv_file
from stratlab.runtime import StackError
from stratlab.store.db import Pool
from stratlab.store.market import DatasetExistsError, MarketRepo


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
