"""``stratlab trials``: the trial ledger, the N every verdict is judged against."""

from __future__ import annotations

from rich.table import Table

from stratlab.cli._common import console, fmt_time, print_json, store
from stratlab.config import Settings
from stratlab.models.research import TrialLedger
from stratlab.store.trials import IntegrityRepo


def _ledger_table(ledgers: list[TrialLedger]) -> Table:
    # Fits 80 columns: the exact period and the Sharpe variance are in --json.
    table = Table(title="Trial ledger: every fit that touched a research universe")
    table.add_column("symbol", overflow="fold", max_width=18)
    table.add_column("development", no_wrap=True)
    table.add_column("fits", justify="right", no_wrap=True)
    table.add_column("N", justify="right", no_wrap=True)
    table.add_column("N eff", justify="right", no_wrap=True)
    table.add_column("last fit", no_wrap=True)
    for ledger in ledgers:
        _, first, last = [*ledger.universe.split("|"), "?", "?"][:3]
        table.add_row(
            ledger.symbol,
            f"{first[:7]} → {last[:7]}",
            f"{ledger.fits:,}",
            f"{ledger.n:,}",
            f"{ledger.n_effective:,.0f}",
            fmt_time(ledger.last_at)[:10],
        )
    return table


async def trials(cfg: Settings, *, symbol: str | None, as_json: bool) -> None:
    async with store(cfg) as db:
        ledgers = await IntegrityRepo(db).ledgers(symbol=symbol)
    if as_json:
        print_json(ledgers)
        return
    if not ledgers:
        scope = f" of {symbol}" if symbol else ""
        console.print(f"no trials{scope} yet: every fit of a research cycle adds its grid here")
        return
    console.print(_ledger_table(ledgers))
    console.print(
        "N counts every grid combination of every fit (cycles, optimizer, user "
        "evaluations); N eff discounts correlated combinations. The statistical gate "
        "deflates a Sharpe ratio by the best that N eff trials would reach by luck."
    )
