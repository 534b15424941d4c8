"""Operating the lab from ``stratlab`` as a Temporal user does: following a cycle started
with any workflow id, ids typed as prefixes, links from the one UI setting, history
filters, and a status that says when the stack is down."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from stratlab.models.research import ResearchCycleInput
from stratlab.store.sessions import SessionRepo
from tests.fixtures.cli import assert_one_line_error, run_cli
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from workflows.research import ResearchCycleWorkflow


async def test_a_cycle_with_a_custom_id_is_followed_by_id_or_prefix(
    lab: Any, temporal_client: Client
) -> None:
    tag = uuid.uuid4().hex[:8]
    session_id = str(uuid.uuid4())
    custom = f"mycycle-{tag}-first"
    handle = await temporal_client.start_workflow(
        ResearchCycleWorkflow.run,
        ResearchCycleInput(
            symbol="sp500", kind="rules", max_iterations=1, session_id=session_id,
            training_gate=OPEN_TRAINING_GATE, backtest_gate=OPEN_BACKTEST_GATE,
            statistical_gate=OPEN_STATISTICAL_GATE,
        ),
        id=custom,
        task_queue=lab.settings.task_queue("orchestrator"),
    )  # fmt: skip
    result = await asyncio.wait_for(handle.result(), timeout=240)
    assert result.outcome == "success"

    for ref in (custom, custom[:14], session_id, session_id[:8]):
        watched = await run_cli(lab, temporal_client, "watch", ref)
        assert watched.returncode == 0, (ref, watched.stderr)
        assert f"{custom} completed: success" in watched.stdout
        shown = await run_cli(lab, temporal_client, "session", ref, "--json")
        assert shown.returncode == 0, (ref, shown.stderr)
        assert json.loads(shown.stdout)["session"]["session_id"] == session_id

    # A second run whose id shares the prefix, never picked up (no worker on its queue):
    # Temporal knows it, the sessions table does not; the prefix now names two.
    other = await temporal_client.start_workflow(
        ResearchCycleWorkflow.run,
        ResearchCycleInput(symbol="sp500"),
        id=f"mycycle-{tag}-second",
        task_queue=f"nobody-polls-{tag}",
    )
    try:
        assert_one_line_error(
            await run_cli(lab, temporal_client, "watch", f"mycycle-{tag}"), "ambiguous"
        )
    finally:
        await other.terminate(reason="test over")
    assert_one_line_error(
        await run_cli(lab, temporal_client, "watch", f"nothing-{tag}"), "no cycle"
    )
    assert_one_line_error(await run_cli(lab, temporal_client, "session", "zzzz-nope"), "no session")

    # Links come from the UI setting, whole on their own line at 80 columns.
    run_id = handle.result_run_id
    for env, base in (
        ({"STRATLAB_TEMPORAL_UI_PORT": "9999"}, "http://localhost:9999"),
        ({"STRATLAB_TEMPORAL_UI_URL": "https://ui.example.test/"}, "https://ui.example.test"),
    ):
        page = await run_cli(
            lab, temporal_client, "session", session_id[:8], env={**env, "COLUMNS": "80"}
        )
        assert page.returncode == 0, page.stderr
        link = f"{base}/namespaces/default/workflows/{custom}/{run_id}/history"
        assert link in [line.strip() for line in page.stdout.splitlines()], page.stdout
        assert "8233" not in page.stdout

    bad_plot = await run_cli(lab, temporal_client, "session", session_id, "--plot", "eq.session")
    assert_one_line_error(bad_plot, "eq.session", ".png")

    skills = json.loads((await run_cli(lab, temporal_client, "skills", "list", "--json")).stdout)
    (skill,) = [s for s in skills if s["session_id"] == session_id]
    shown = await run_cli(lab, temporal_client, "skills", "show", skill["skill_id"][:8], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["skill_id"] == skill["skill_id"]
    table = await run_cli(lab, temporal_client, "skills", "list", env={"COLUMNS": "80"})
    assert skill["skill_id"][:8] in table.stdout and "…" not in table.stdout


async def test_history_filters_and_hides_the_optimizers_evaluations(
    lab: Any, temporal_client: Client
) -> None:
    repo = SessionRepo(lab.db)
    now = datetime.now(UTC)
    made: dict[str, str] = {}
    rows = [
        ("cli", "sp500", "success", now - timedelta(minutes=5)),
        ("schedule", "nasdaq", "failed_backtest_gate", now - timedelta(minutes=4)),
        ("schedule", "sp500", None, now - timedelta(days=3)),
        ("regression", "sp500", "failed_training_gate", now - timedelta(minutes=3)),
        ("regression", "sp500", "success", now - timedelta(minutes=2)),
        ("regression", "nasdaq", "success", now - timedelta(minutes=1)),
    ]
    for i, (trigger, symbol, outcome, started) in enumerate(rows):
        sid = f"{uuid.uuid4().hex[:8]}-{i}"
        made[sid] = trigger
        await repo.create(session_id=sid, workflow_id=f"research-{sid}", symbol=symbol,
                          trigger=trigger, started_at=started)  # fmt: skip
        if outcome is not None:
            await repo.finish(sid, outcome=outcome, finished_at=started)  # type: ignore[arg-type]

    async def history(*args: str) -> list[dict[str, Any]]:
        done = await run_cli(lab, temporal_client, "history", "--json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def triggers(found: list[dict[str, Any]]) -> list[str]:
        return [s["trigger"] for s in found]

    assert triggers(await history()) == ["schedule", "cli", "schedule"]
    assert triggers(await history("--trigger", "regression")) == ["regression"] * 3
    assert [s["symbol"] for s in await history("--symbol", "nasdaq")] == ["nasdaq"]
    assert triggers(await history("--outcome", "success")) == ["cli"]
    assert [s["outcome"] for s in await history("--outcome", "running")] == [None]
    assert len(await history("--since", "1h")) == 2
    assert len(await history("--since", (now - timedelta(days=4)).date().isoformat())) == 3
    assert_one_line_error(
        await run_cli(lab, temporal_client, "history", "--since", "yesterday"), "--since"
    )
    assert_one_line_error(
        await run_cli(lab, temporal_client, "history", "--outcome", "great"), "unknown outcome"
    )

    table = await run_cli(lab, temporal_client, "history", env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "3 optimizer evaluation(s) hidden" in table.stdout
    assert "failed_backtest_gate" in table.stdout and "trigger" in lines[1]
    filtered = await run_cli(lab, temporal_client, "history", "--symbol", "nasdaq")
    assert "1 optimizer evaluation(s) hidden" in filtered.stdout


async def test_status_says_what_runs_and_fails_when_the_stack_is_down(
    lab: Any, temporal_client: Client
) -> None:
    done = await run_cli(lab, temporal_client, "status", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert {"running", "generations", "paper", "schedules", "recent", "budget"} <= set(body)
    table = await run_cli(lab, temporal_client, "status", env={"COLUMNS": "80"})
    assert table.returncode == 0 and "Running cycles" in table.stdout, table.stderr
    assert all(len(line) <= 80 for line in table.stdout.splitlines())

    no_temporal = await run_cli(
        lab, temporal_client, "status", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )
    assert_one_line_error(no_temporal, "cannot reach Temporal")
    no_postgres = await run_cli(
        lab, temporal_client, "status",
        env={"DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/nothing"},
    )  # fmt: skip
    assert_one_line_error(no_postgres, "cannot reach Postgres", "127.0.0.1:1/nothing")
    assert "secret" not in no_postgres.stderr
