"""PaperTradingWorkflow end to end on the real Temporal server and Postgres.

A year of the bundled S&P 500 and NASDAQ data is replayed bar by bar with the offline
composer; the test then checks what a user would: one decision per common bar, every
fill at the open of the bar after its signal, the book equal to the sum of its fills,
the equity series, and a workflow history that continued as new and replays.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from stratlab.market.datasets import load_bundled
from stratlab.models.paper import PaperSummary
from stratlab.models.trading import GuardrailConfig
from stratlab.store.prompts import PromptRepo
from stratlab.store.trading import PaperRepo
from tests.fixtures.paper import execution_fills, start_paper
from tests.fixtures.temporal import rows, save_history
from workflows.paper import PaperTradingWorkflow


def common_bars(symbols: list[str], start: str, end: str) -> pd.DatetimeIndex:
    index: pd.DatetimeIndex | None = None
    for symbol in symbols:
        own = pd.DatetimeIndex(load_bundled(symbol).index)
        index = own if index is None else index.intersection(own)
    assert index is not None
    return index[(index >= pd.Timestamp(start)) & (index < pd.Timestamp(end))]


async def test_a_replayed_year_trades_every_bar_and_replays(
    lab: Any, temporal_client: Client
) -> None:
    symbols = ["sp500", "nasdaq"]
    handle = await start_paper(
        lab,
        "year-2016",
        symbols=symbols,
        replay_from="2016-01-01",
        replay_to="2016-12-31",
        cycles_per_run=30,
        guardrails=GuardrailConfig(max_position_notional=60_000, cooldown_bars=2),
    )
    result = await asyncio.wait_for(handle.result(), timeout=600)
    bars = common_bars(symbols, "2016-01-01", "2017-01-01")

    assert result.status == "stopped"
    assert result.finished_reason == "replay finished: no bar left"
    assert result.cycle == len(bars) > 240
    assert result.runs == math.ceil(len(bars) / 30)  # continued as new every 30 cycles

    repo = PaperRepo(lab.db)
    kinds = Counter(r.kind for r in await repo.history("year-2016"))
    # The last decision's instructions would fill at a bar after the replay: never filled.
    assert kinds == {
        "features": len(bars),
        "compose": len(bars),
        "instructions": len(bars),
        "execution": len(bars) - 1,
    }
    decisions = [r.ts for r in await repo.history("year-2016", kinds=["features"])]
    assert [pd.Timestamp(t).tz_convert(None) for t in decisions] == list(bars)

    fills = await execution_fills(lab, "year-2016")
    assert fills, "the offline trend rule trades in 2016"
    assert len({f.instruction_id for f in fills}) == len(fills)
    frames = {s: load_bundled(s) for s in symbols}
    for fill in fills:
        assert fill.signal_ts is not None and fill.ts > fill.signal_ts
        bar = frames[fill.symbol].loc[pd.Timestamp(fill.ts).tz_convert(None)]
        slip = 1 + (5 / 10_000 if fill.side == "buy" else -5 / 10_000)
        assert fill.price == bar["open"] * slip
        assert fill.quantity * fill.price <= 60_000 * 1.01 + 1e-6  # the position cap

    _, book = await repo.load_book("year-2016") or (0, None)
    assert book is not None
    for symbol in symbols:
        signed = sum(
            f.quantity if f.side == "buy" else -f.quantity for f in fills if f.symbol == symbol
        )
        assert book.position(symbol) == signed
    assert set(book.fills) == {f.instruction_id for f in fills}

    equity = await repo.equity("year-2016")
    assert len(equity) == len(bars)
    assert equity[-1].total_value == result.total_value
    assert equity[0].benchmark == 100_000.0
    unrealised = sum(
        p.quantity * (frames[s].loc[bars[-1], "close"] - p.avg_price)
        for s, p in book.positions.items()
    )
    assert math.isclose(
        book.initial_cash + book.realized_pnl + unrealised, result.total_value or 0, rel_tol=1e-9
    )
    calls = await rows(
        lab, "SELECT count(*) AS n, sum(cost_usd) AS usd FROM agent_actions WHERE role = 'composer'"
    )
    assert calls[0]["n"] == len(bars) and float(calls[0]["usd"]) > 0  # charged, once per bar

    first = temporal_client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id or handle.result_run_id
    )
    history = await first.fetch_history()
    assert sum(1 for _ in history.events) < 30 * 30  # 30 cycles of a run, not the year
    await Replayer(
        workflows=[PaperTradingWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)
    await save_history(first, "paper_trading_replay")
    assert datetime.now(UTC) > result.last_bar_ts  # type: ignore[operator]


async def summary_when(
    handle: WorkflowHandle[Any, Any], check: Any, timeout: float = 60
) -> PaperSummary:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        summary = await handle.query("summary", result_type=PaperSummary)
        if check(summary):
            return summary
        assert asyncio.get_running_loop().time() < deadline, summary
        await asyncio.sleep(0.1)


async def test_live_feed_decides_on_each_new_bar_of_a_growing_file(
    lab: Any, tmp_path: Path
) -> None:
    bars = load_bundled("sp500")
    feed = tmp_path / "sp500-feed.csv"
    bars.loc[:"2016-07-29"].to_csv(feed, index_label="date")
    handle = await start_paper(
        lab, "live-feed", symbols=["sp500"], feed={"sp500": str(feed)}, poll_seconds=0.2
    )
    first = await summary_when(handle, lambda s: s.cycle == 1 and s.waiting)
    assert pd.Timestamp(first.last_bar_ts).tz_convert(None) == pd.Timestamp("2016-07-29")
    assert "no new bar" in first.waiting

    bars.loc[:"2016-08-01"].to_csv(feed, index_label="date")  # the feed grows by one bar
    second = await summary_when(handle, lambda s: s.cycle == 2)
    assert pd.Timestamp(second.last_bar_ts).tz_convert(None) == pd.Timestamp("2016-08-01")
    (fill,) = await execution_fills(lab, "live-feed")  # the uptrend's buy of 2016-07-29
    assert fill.side == "buy" and pd.Timestamp(fill.ts).tz_convert(None) == pd.Timestamp(
        "2016-08-01"
    )
    assert fill.price == bars.loc["2016-08-01", "open"] * (1 + 5 / 10_000)  # the new bar's open

    await handle.signal("stop", "test over")
    result = await asyncio.wait_for(handle.result(), timeout=60)
    await save_history(handle, "paper_trading_live")
    assert result.status == "stopped" and result.finished_reason == "test over"
    row = await PaperRepo(lab.db).get_strategy("live-feed")
    assert row is not None and row.status == "stopped"


async def test_a_composer_that_keeps_failing_leaves_the_bar_to_the_fallback(lab: Any) -> None:
    broken = await PromptRepo(lab.db).insert(
        prompt_id="00000000-0000-4000-8000-0000000c0de5",
        role="composer",
        version="1.0.1-broken",
        system="You compose.",
        content="Time: {{ ts }}\n{{ no_such_field }}\n",
        parent_ids=[],
    )
    handle = await start_paper(
        lab,
        "broken-composer",
        symbols=["sp500"],
        prompt_id=broken.id,
        replay_from="2016-07-25",
        replay_to="2016-07-29",
    )
    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.finished_reason == "replay finished: no bar left" and result.cycle == 5
    assert any(line.startswith("fallback: composer unavailable") for line in result.last_decision)
    repo = PaperRepo(lab.db)
    composed = await repo.history("broken-composer", kinds=["compose"])
    assert len(composed) == 5
    for record in composed:
        assert record.payload["plan"] is None
        assert "undefined variable" in record.payload["error"]
    decided = await repo.history("broken-composer", kinds=["instructions"])
    assert all(r.payload["fallback"] and not r.payload["instructions"] for r in decided)
