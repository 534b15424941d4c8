"""The ``stratlab`` CLI as a user runs it: a real process against the test's Temporal and
Postgres. User errors are one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from stratlab.cli.control import ensure_research_schedule
from stratlab.market.synthetic import synthetic_ohlcv
from tests.fixtures.cli import assert_one_line_error, run_cli
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE


async def test_reading_a_finished_session(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    result = await lab.run_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    history = await run_cli(lab, temporal_client, "history", "--json")
    assert history.returncode == 0, history.stderr
    assert [s["session_id"] for s in json.loads(history.stdout)] == [result.session_id]

    detail = await run_cli(lab, temporal_client, "session", result.session_id, "--json")
    body = json.loads(detail.stdout)
    assert body["session"]["outcome"] == "success"
    assert {p["phase"] for p in body["phases"]} >= {"design", "train", "backtest", "assess"}
    assert body["backtests"][0]["gate"]["checks"]
    statistical = body["backtests"][0]["statistical_gate"]
    status = {c["name"]: c["status"] for c in statistical["checks"]}
    assert status["deflated_sharpe"] == "passed"  # its threshold opened to 0
    assert set(status.values()) <= {"passed", "not_run"}
    assert body["backtests"][0]["trials"] == 1  # judged against the universe's one fit
    assert body["holdout"]["strategy_id"] == result.best_strategy_id
    assert {c["role"] for c in body["llm_calls"]} == {"designer", "assessor"}

    plot = tmp_path / "equity.png"
    shown = await run_cli(lab, temporal_client, "session", result.session_id, "--plot", str(plot))
    assert shown.returncode == 0, shown.stderr
    assert "training gate" in shown.stdout and "backtest gate" in shown.stdout
    assert "statistical gate (N = " in shown.stdout and "final holdout" in shown.stdout
    assert "walk-forward:" in shown.stdout and "look-ahead probe:" in shown.stdout

    ledger = await run_cli(lab, temporal_client, "trials", "--json")
    (universe,) = json.loads(ledger.stdout)
    assert universe["symbol"] == "sp500" and universe["fits"] == 1
    assert universe["n"] == body["training_runs"][0]["report"]["grid_size"]
    table = await run_cli(lab, temporal_client, "trials", "--symbol", "sp500")
    assert table.returncode == 0 and "sp500" in table.stdout, table.stderr
    empty = await run_cli(lab, temporal_client, "trials", "--symbol", "nasdaq")
    assert empty.returncode == 0 and "no trials of nasdaq yet" in empty.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000

    status = await run_cli(lab, temporal_client, "status", "--json")
    spent = {b["scope"]: b["spent_usd"] for b in json.loads(status.stdout)["budget"]}
    assert spent["research"] == pytest.approx(result.cost_usd, rel=1e-6)


async def test_user_errors_are_one_line(lab: Any, temporal_client: Client, tmp_path: Path) -> None:
    assert_one_line_error(
        await run_cli(lab, temporal_client, "session", "no-such-session"), "no-such-session"
    )
    assert_one_line_error(await run_cli(lab, temporal_client, "history", "--limit", "0"))
    assert_one_line_error(await run_cli(lab, temporal_client, "worker", "gpu"), "gpu")
    assert_one_line_error(
        await run_cli(lab, temporal_client, "trigger", "--symbol", "dogecoin"), "dogecoin"
    )
    assert_one_line_error(await run_cli(lab, temporal_client, "trigger", "--kind", "magic"))
    assert_one_line_error(await run_cli(lab, temporal_client, "pause"), "schedule")


async def test_data_import_good_and_corrupt(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    good = tmp_path / "mine.csv"
    synthetic_ohlcv(bars=600, seed=3).rename_axis("Date").rename(columns=str.title).to_csv(good)
    done = await run_cli(lab, temporal_client, "data", "import", str(good), "--symbol", "mine")
    assert done.returncode == 0, done.stderr
    listed = json.loads((await run_cli(lab, temporal_client, "data", "list", "--json")).stdout)
    by_symbol = {d["symbol"]: d for d in listed}
    assert {"sp500", "nasdaq", "mine"} <= set(by_symbol)
    # the bundled sp500 opens are the previous close from 1999 into 2006; the import's are not
    assert by_symbol["sp500"]["stale_open_stretches"][0]["start"].startswith("1999-01")
    assert "fills at the next open are close fills" in by_symbol["sp500"]["notes"][0]
    assert by_symbol["mine"]["stale_open_share"] == 0.0
    table = await run_cli(lab, temporal_client, "data", "list")
    assert table.returncode == 0 and "stale opens" in table.stdout, table.stderr
    result = await lab.run_cycle(
        symbol="mine",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    assert result.outcome == "success"
    metrics = result.iterations[0].metrics
    # the walk-forward record: the last 60% of the 480-bar development period (the first
    # 80% of the 600 imported bars); the holdout is the last 120 bars
    assert metrics is not None and metrics.bars == 288
    assert result.holdout is not None and result.holdout.metrics.bars == 120

    corrupt = tmp_path / "corrupt.csv"
    corrupt.write_bytes(b"Date,Open,High\n\x00\xff\xfe garbage\n2020-01-01,1,2\n")
    assert_one_line_error(
        await run_cli(lab, temporal_client, "data", "import", str(corrupt), "--symbol", "bad")
    )
    missing = await run_cli(lab, temporal_client, "data", "import", "nope.csv", "--symbol", "x")
    assert_one_line_error(missing, "nope.csv")


async def test_pause_and_resume_the_trigger_schedule(lab: Any, temporal_client: Client) -> None:
    created = await ensure_research_schedule(temporal_client, lab.settings)
    handle = temporal_client.get_schedule_handle("stratlab-research-trigger")
    try:
        assert created or (await handle.describe()) is not None
        assert (await run_cli(lab, temporal_client, "pause", "--reason", "lunch")).returncode == 0
        described = await handle.describe()
        assert described.schedule.state.paused and described.schedule.state.note == "lunch"
        assert (await run_cli(lab, temporal_client, "resume")).returncode == 0
        assert not (await handle.describe()).schedule.state.paused
    finally:
        await handle.delete()
