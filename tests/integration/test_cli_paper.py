"""``stratlab paper ...`` as a user runs it: real processes against the test's Temporal
server, its workers (the real PaperTradingWorkflow, offline composer) and Postgres."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from temporalio.client import Client

from stratlab.market.datasets import load_bundled
from stratlab.models.paper import PaperSummary
from stratlab.store.trading import PaperRepo
from tests.fixtures.cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Poll ``probe`` until ``ok`` holds (20 s at most); the last value otherwise fails."""
    value = await probe()
    for _ in range(100):
        if ok(value):
            return value
        await asyncio.sleep(0.2)
        value = await probe()
    raise AssertionError(f"never satisfied; last value: {value!r}")


def cli_json(done: Any) -> Any:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


async def test_a_replayed_half_year_from_start_to_trades(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    started = cli_json(
        await run_cli(
            lab, temporal_client,
            "paper", "start", "--symbols", "sp500", "--replay-from", "2015-10-01",
            "--replay-to", "2016-03-31", "--speed", "0", "--id", "cli-test", "--wait", "--json",
        )
    )  # fmt: skip
    assert started["workflow_id"] == "paper-cli-test"
    result = PaperSummary.model_validate(started["result"])
    index = pd.DatetimeIndex(load_bundled("sp500").index)
    bars = index[(index >= pd.Timestamp("2015-10-01")) & (index <= pd.Timestamp("2016-03-31"))]
    assert result.status == "stopped" and "replay finished" in result.finished_reason
    assert result.cycle == len(bars) > 120  # one decision per bar
    assert result.total_value is not None

    listed = cli_json(await run_cli(lab, temporal_client, "paper", "list", "--json"))
    (row,) = listed
    assert (row["strategy_id"], row["status"], row["symbols"]) == ("cli-test", "stopped", ["sp500"])
    assert row["total_value"] == pytest.approx(result.total_value)
    assert row["pnl_pct"] == pytest.approx(result.pnl_pct)

    status = cli_json(await run_cli(lab, temporal_client, "paper", "status", "cli-test", "--json"))
    assert status["strategy"]["status"] == "stopped"
    assert status["workflow"]["status"] == "completed"
    assert status["cycle"] == result.cycle
    assert status["portfolio"]["total_value"] == pytest.approx(result.total_value)
    decisions = status["decisions"]
    assert len(decisions) == 5 and [d["ts"] for d in decisions] == sorted(
        d["ts"] for d in decisions
    )
    assert all({"features", "compose", "instructions"} <= d.keys() for d in decisions)
    shown = await run_cli(lab, temporal_client, "paper", "status", "cli-test")
    assert shown.returncode == 0, shown.stderr
    assert "Portfolio" in shown.stdout and "Last 5 decisions" in shown.stdout

    plot = tmp_path / "paper.png"
    drawn = await run_cli(lab, temporal_client, "paper", "equity", "cli-test", "--plot", str(plot))
    assert drawn.returncode == 0, drawn.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    equity = cli_json(await run_cli(lab, temporal_client, "paper", "equity", "cli-test", "--json"))
    stamps = [p["ts"] for p in equity["points"]]
    assert stamps == sorted(set(stamps)) and len(stamps) >= result.cycle - 1
    assert equity["points"][-1]["value"] == pytest.approx(result.total_value)
    assert len(equity["benchmark"]) == len(stamps)
    assert equity["total_return"] == pytest.approx(result.pnl_pct)

    loaded = await PaperRepo(lab.db).load_book("cli-test")
    assert loaded is not None
    book = loaded[1]
    trades = cli_json(await run_cli(lab, temporal_client, "paper", "trades", "cli-test", "--json"))
    # The offline composer buys the autumn 2015 uptrend, sells in the January 2016 fall and
    # buys again in March: one closed round trip and one open one to show.
    assert any(t["open"] for t in trades) and not all(t["open"] for t in trades), trades
    # Every fill is in exactly one trade (a flip's fee is split by quantity): the fees add up.
    assert sum(t["fees"] for t in trades) == pytest.approx(book.fees_paid)
    fill_times = {f.ts.isoformat().replace("+00:00", "Z") for f in book.fills.values()}
    assert {t["entry_ts"] for t in trades} <= fill_times
    assert {t["exit_ts"] for t in trades if not t["open"]} <= fill_times
    open_symbols = sorted(t["instrument"]["symbol"] for t in trades if t["open"])
    assert open_symbols == sorted(book.positions)
    assert all(t["exit_ts"] is None for t in trades if t["open"])
    table = await run_cli(lab, temporal_client, "paper", "trades", "cli-test")
    assert table.returncode == 0, table.stderr
    assert "open" in table.stdout and "1 closed" in table.stdout


async def test_pause_resume_and_stop_a_running_strategy(lab: Any, temporal_client: Client) -> None:
    started = await run_cli(
        lab, temporal_client,
        "paper", "start", "--symbols", "sp500,nasdaq", "--replay-from", "2016-01-04",
        "--speed", "5s", "--id", "cli-live",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "paper-cli-live" in started.stdout and "stratlab paper status cli-live" in started.stdout
    handle = temporal_client.get_workflow_handle("paper-cli-live", result_type=PaperSummary)
    repo = PaperRepo(lab.db)

    async def summary() -> PaperSummary:
        return await handle.query("summary", result_type=PaperSummary)

    async def db_status() -> str | None:
        found = await repo.get_strategy("cli-live")
        return None if found is None else found.status

    await eventually(summary, lambda s: s.cycle >= 1)
    again = await run_cli(lab, temporal_client, "paper", "start", "--symbols", "sp500",
                          "--id", "cli-live")  # fmt: skip
    assert_one_line_error(again, "cli-live", "already running")

    paused = await run_cli(lab, temporal_client, "paper", "pause", "cli-live")
    assert paused.returncode == 0, paused.stderr
    assert "pause" in paused.stdout and "paper-cli-live" in paused.stdout
    await eventually(summary, lambda s: s.status == "paused")
    # Once the row says paused the loop waits: a cycle in flight at the signal has ended.
    assert await eventually(db_status, lambda s: s == "paused") == "paused"
    held = await summary()
    status = cli_json(await run_cli(lab, temporal_client, "paper", "status", "cli-live", "--json"))
    assert status["workflow"]["status"] == "running"
    assert status["workflow"]["summary"]["status"] == "paused"
    assert (await summary()).cycle == held.cycle  # no decision while paused

    resumed = await run_cli(lab, temporal_client, "paper", "resume", "cli-live")
    assert resumed.returncode == 0, resumed.stderr
    await eventually(summary, lambda s: s.status == "running")
    assert await eventually(db_status, lambda s: s == "running") == "running"

    stopped = await run_cli(lab, temporal_client, "paper", "stop", "cli-live", "--reason", "enough")
    assert stopped.returncode == 0, stopped.stderr
    result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.status == "stopped" and result.finished_reason == "enough"
    assert await db_status() == "stopped"
    late = await run_cli(lab, temporal_client, "paper", "pause", "cli-live")
    assert_one_line_error(late, "cli-live", "not running")


async def test_paper_user_errors_are_one_line(lab: Any, temporal_client: Client) -> None:
    for command in ("status", "pause", "resume", "stop", "equity", "trades"):
        done = await run_cli(lab, temporal_client, "paper", command, "no-such-strategy")
        assert_one_line_error(done, "no-such-strategy")
    both = await run_cli(lab, temporal_client, "paper", "start", "--symbols", "sp500",
                         "--prompt-id", "abc123", "--skill", "s1")  # fmt: skip
    assert_one_line_error(both, "--prompt-id", "--skill")
    speed = await run_cli(lab, temporal_client, "paper", "start", "--symbols", "sp500",
                          "--replay-from", "2016-01-04", "--speed", "fast")  # fmt: skip
    assert_one_line_error(speed, "--speed", "fast")
    symbol = await run_cli(lab, temporal_client, "paper", "start", "--symbols", "dogecoin")
    assert_one_line_error(symbol, "dogecoin")
    bad_id = await run_cli(lab, temporal_client, "paper", "start", "--symbols", "sp500",
                           "--id", "Not An Id")  # fmt: skip
    assert_one_line_error(bad_id, "Not An Id")
    assert await PaperRepo(lab.db).list_strategies() == []  # nothing was started
