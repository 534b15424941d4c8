"""``stratlab data import|remove`` as a user runs them: a bundled data set cannot be
replaced, an import is replaced only when asked, and an import a running workflow reads
cannot be removed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import ResearchCycleInput
from stratlab.store.market import MarketRepo
from stratlab.store.sessions import SessionRepo
from tests.fixtures.cli import assert_one_line_error, run_cli
from workflows.research import ResearchCycleWorkflow


def _csv(path: Path, bars: int, seed: int) -> Path:
    frame = synthetic_ohlcv(bars=bars, seed=seed).rename_axis("Date").rename(columns=str.title)
    frame.to_csv(path)
    return path


async def test_importing_onto_a_bundled_name_is_refused_and_changes_nothing(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    before = json.loads((await run_cli(lab, temporal_client, "data", "list", "--json")).stdout)
    for name in ("sp500", "NASDAQ", "noise-a"):
        done = await run_cli(
            lab, temporal_client, "data", "import", str(_csv(tmp_path / "a.csv", 300, 1)),
            "--symbol", name, "--replace",
        )  # fmt: skip
        assert_one_line_error(done, name, "bundled")
    assert await MarketRepo(lab.db).list_datasets() == []
    after = json.loads((await run_cli(lab, temporal_client, "data", "list", "--json")).stdout)
    assert after == before
    removed = await run_cli(lab, temporal_client, "data", "remove", "sp500")
    assert_one_line_error(removed, "bundled", "no import")


async def test_replacing_needs_replace_and_remove_deletes_the_import(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    market = MarketRepo(lab.db)
    first = _csv(tmp_path / "first.csv", 300, 1)
    second = _csv(tmp_path / "second.csv", 400, 2)
    done = await run_cli(lab, temporal_client, "data", "import", str(first), "--symbol", "mine")
    assert done.returncode == 0 and "imported 300 bars for mine" in done.stdout, done.stderr
    again = await run_cli(lab, temporal_client, "data", "import", str(second), "--symbol", "mine")
    assert_one_line_error(again, "already imported", "--replace")
    stored = await market.get_dataset("mine")
    assert stored is not None and stored.rows == 300 and stored.source == str(first)

    replaced = await run_cli(
        lab, temporal_client, "data", "import", str(second), "--symbol", "mine", "--replace"
    )
    assert replaced.returncode == 0 and "replaced 400 bars" in replaced.stdout, replaced.stderr
    stored = await market.get_dataset("mine")
    assert stored is not None and stored.rows == 400

    removed = await run_cli(lab, temporal_client, "data", "remove", "mine", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"]["symbol"] == "mine"
    assert await market.get_dataset("mine") is None and await market.load_bars("mine") is None
    listed = json.loads((await run_cli(lab, temporal_client, "data", "list", "--json")).stdout)
    assert "mine" not in {d["symbol"] for d in listed}
    assert_one_line_error(
        await run_cli(lab, temporal_client, "data", "remove", "mine"), "no imported data set"
    )


async def test_remove_is_refused_while_a_running_workflow_reads_the_symbol(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "busy.csv", 300, 3)
    done = await run_cli(lab, temporal_client, "data", "import", str(path), "--symbol", "busy")
    assert done.returncode == 0, done.stderr
    # A cycle on "busy" that stays running: its queue has no worker, so it never ends
    # by itself; its session row says what it reads, as a started cycle's row does.
    session_id = str(uuid.uuid4())
    handle = await temporal_client.start_workflow(
        ResearchCycleWorkflow.run,
        ResearchCycleInput(symbol="busy", session_id=session_id),
        id=f"research-{session_id}",
        task_queue=f"nobody-polls-{uuid.uuid4().hex}",
    )
    sessions = SessionRepo(lab.db)
    await sessions.create(
        session_id=session_id, workflow_id=handle.id, symbol="busy", started_at=datetime.now(UTC)
    )
    # A row left "running" by a workflow Temporal never ran does not block anything.
    await sessions.create(
        session_id=str(uuid.uuid4()), workflow_id="research-gone", symbol="busy",
        started_at=datetime.now(UTC),
    )  # fmt: skip
    try:
        refused = await run_cli(lab, temporal_client, "data", "remove", "busy")
        assert_one_line_error(refused, "cannot remove busy", handle.id)
        replace = await run_cli(
            lab, temporal_client, "data", "import", str(path), "--symbol", "busy", "--replace"
        )
        assert_one_line_error(replace, "cannot replace busy", handle.id)
        assert await MarketRepo(lab.db).get_dataset("busy") is not None
    finally:
        await handle.terminate(reason="test over")
    removed = await run_cli(lab, temporal_client, "data", "remove", "busy")
    assert removed.returncode == 0 and "removed busy" in removed.stdout, removed.stderr
    assert await MarketRepo(lab.db).get_dataset("busy") is None
