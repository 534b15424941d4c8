"""A research session as the store records it, and retries that must not duplicate rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from stratlab.models.llm import LlmCallRecord
from stratlab.models.records import EquityCurve
from stratlab.models.research import (
    Assessment,
    BacktestMetrics,
    GateCheck,
    GateResult,
    IterationSummary,
    ResearchCycleInput,
    ResearchCycleResult,
    StrategySpec,
    TrainingReport,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.db import Pool
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def spec(name: str = "sma-cross") -> StrategySpec:
    return StrategySpec(name=name, kind="rules", symbol="sp500", entry="fast > slow")


def call(action_id: str, *, session_id: str | None = "s1", cost: float = 0.01) -> LlmCallRecord:
    return LlmCallRecord(
        action_id=action_id,
        session_id=session_id,
        role="designer",
        prompt_id="p-designer",
        provider="offline",
        model="offline-deterministic",
        input_tokens=300,
        output_tokens=200,
        cost_usd=cost,
        latency_ms=12.5,
        latency_simulated=True,
        iteration=1,
    )


def gate(passed: bool, sharpe: float) -> GateResult:
    check = GateCheck(name="sharpe", value=sharpe, threshold=-0.5, op=">=", passed=passed)
    return GateResult(gate="backtest", passed=passed, checks=[check])


async def start_session(
    repo: SessionRepo, session_id: str = "s1", started_at: datetime = T0
) -> None:
    await repo.create(
        session_id=session_id,
        workflow_id=f"research-{session_id}",
        run_id="run-1",
        symbol="sp500",
        trigger="schedule",
        started_at=started_at,
        input=ResearchCycleInput(symbol="sp500", max_iterations=2),
        designer_prompt_id="p-designer",
        assessor_prompt_id="p-assessor",
    )


async def record_iteration(pool: Pool) -> tuple[BacktestMetrics, EquityCurve, Assessment]:
    """Everything one successful iteration of session s1 writes, in the cycle's order."""
    sessions, research, actions = SessionRepo(pool), ResearchRepo(pool), ActionRepo(pool)
    await sessions.record_phase("s1", 1, "design", started_at=T0, detail={"prompt": "p"})
    await actions.record(call("a1", cost=0.02))
    await research.insert_strategy("st1", spec(), session_id="s1", iteration=1)
    await sessions.record_phase(
        "s1", 1, "design", started_at=T0 + timedelta(seconds=5), status="ok",
        finished_at=T0 + timedelta(seconds=3), detail={"strategy_id": "st1"},
    )  # fmt: skip
    await research.upsert_training_run("tr1", strategy_id="st1", session_id="s1", status="running")
    await research.upsert_training_run(
        "tr1", strategy_id="st1", session_id="s1", status="completed",
        report=TrainingReport(kind="rules", grid_size=9, best_params={"fast": 10.0}),
        gate=gate(True, 0.9), best_params={"fast": 10.0}, finished_at=T0 + timedelta(seconds=30),
    )  # fmt: skip
    metrics = BacktestMetrics(sharpe=1.2, total_return=0.3, trades=14, win_rate=0.55)
    equity = EquityCurve(ts=[T0, T0 + timedelta(days=1)], equity=[1.0, 1.01], benchmark=[1, 1])
    await research.insert_backtest(
        "bt1", strategy_id="st1", training_run_id="tr1", session_id="s1",
        metrics=metrics, gate=gate(True, 1.2), params={"fast": 10}, equity=equity,
    )  # fmt: skip
    verdict = Assessment(verdict="accept", summary="robust out of sample")
    await research.insert_assessment(
        "as1", strategy_id="st1", assessment=verdict, session_id="s1", iteration=1,
        backtest_id="bt1",
    )  # fmt: skip
    await actions.record(call("a2", cost=0.03))
    return metrics, equity, verdict


async def test_session_lifecycle_reads_like_a_user_expects(db_pool: Pool) -> None:
    sessions, research = SessionRepo(db_pool), ResearchRepo(db_pool)
    await start_session(sessions)

    [running] = await sessions.running()
    assert (running.session_id, running.status, running.outcome) == ("s1", "running", None)
    assert running.input["max_iterations"] == 2

    metrics, equity, verdict = await record_iteration(db_pool)
    result = ResearchCycleResult(
        session_id="s1",
        outcome="success",
        best_strategy_id="st1",
        iterations=[IterationSummary(iteration=1, strategy_id="st1", outcome="success")],
    )
    finished_at = T0 + timedelta(minutes=2)
    summary = await sessions.finish(
        "s1", outcome="success", best_strategy_id="st1", result=result, finished_at=finished_at
    )
    assert summary.iterations == 1
    assert (summary.llm_calls, summary.tokens) == (2, 1000)
    assert summary.cost_usd == pytest.approx(0.05)
    assert summary.duration_ms == pytest.approx(120_000)
    assert summary.best_sharpe == pytest.approx(1.2)

    done = await sessions.get("s1")
    assert done is not None
    assert (done.status, done.outcome, done.best_strategy_id) == ("finished", "success", "st1")
    assert (done.llm_calls, done.tokens, done.cost_usd) == (2, 1000, pytest.approx(0.05))
    assert done.result == result and done.finished_at == finished_at
    assert await sessions.running() == []
    assert [s.session_id for s in await sessions.recent(5)] == ["s1"]

    [phase] = await sessions.phases("s1")
    assert (phase.status, phase.started_at, phase.finished_at) == (
        "ok", T0, T0 + timedelta(seconds=3)
    )  # fmt: skip
    assert phase.detail == {"prompt": "p", "strategy_id": "st1"}

    run = await research.get_training_run("tr1")
    assert run is not None and run.status == "completed" and run.report is not None
    assert run.report.best_params == {"fast": 10.0} and run.gate and run.gate.passed
    backtest = await research.get_backtest("bt1")
    assert backtest is not None and backtest.metrics == metrics
    assert await research.load_equity("bt1") == equity
    [assessment] = await research.assessments_by_session("s1")
    assert assessment.assessment == verdict

    [past] = await sessions.recent_strategies("sp500")
    assert (past.name, past.kind, past.outcome, past.sharpe) == (
        "sma-cross", "rules", "success", pytest.approx(1.2)
    )  # fmt: skip


async def test_retried_writes_leave_one_row(db_pool: Pool) -> None:
    sessions, research, actions = SessionRepo(db_pool), ResearchRepo(db_pool), ActionRepo(db_pool)
    for _ in range(3):
        await start_session(sessions)
        await sessions.record_trigger(
            trigger_id="t1", kind="schedule", decision="started", session_id="s1"
        )
        assert await actions.record(call("a1")) in (True, False)
        await research.insert_strategy("st1", spec(), session_id="s1", iteration=1)
        await research.save_checkpoint("tr1", 1, b"state-1", {"loss": 0.7})
        await research.upsert_training_run("tr1", strategy_id="st1", status="running")
        await research.insert_backtest("bt1", strategy_id="st1", metrics=BacktestMetrics())
        await research.insert_assessment(
            "as1", strategy_id="st1", assessment=Assessment(verdict="refine", summary="x")
        )

    # A retried design that produced another spec still reports the stored one.
    stored = await research.insert_strategy("st1", spec("other"), session_id="s1", iteration=1)
    assert stored.name == "sma-cross"
    assert await actions.record(call("a1")) is False

    async with db_pool.connection() as conn:
        for table in (
            "agent_sessions", "agent_triggers", "agent_actions", "strategies",
            "training_checkpoints", "training_runs", "backtests", "assessments",
        ):  # fmt: skip
            query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
            row = await (await conn.execute(query)).fetchone()
            assert row is not None and row["n"] == 1, table
    assert (await actions.totals_by_session("s1")) == (500, pytest.approx(0.01))


async def test_finishing_again_records_the_final_state(db_pool: Pool) -> None:
    sessions = SessionRepo(db_pool)
    await start_session(sessions)
    await sessions.finish("s1", outcome="failed_design", finished_at=T0 + timedelta(seconds=1))
    metrics = await sessions.finish(
        "s1", outcome="skipped_budget", finished_at=T0 + timedelta(seconds=2)
    )
    assert (metrics.outcome, metrics.iterations, metrics.best_sharpe) == ("skipped_budget", 0, None)
    session = await sessions.get("s1")
    assert session is not None and session.outcome == "skipped_budget"
    with pytest.raises(LookupError, match="no research session 'ghost'"):
        await sessions.finish("ghost", outcome="success", finished_at=T0)


async def test_unknown_outcomes_and_ids_are_refused(db_pool: Pool) -> None:
    sessions, research = SessionRepo(db_pool), ResearchRepo(db_pool)
    await start_session(sessions)
    assert await sessions.get("missing") is None
    assert await research.get_strategy("missing") is None
    assert await research.load_equity("missing") is None
    assert await research.latest_checkpoint("missing") is None
    with pytest.raises(psycopg.errors.CheckViolation):
        await sessions.finish("s1", outcome="great", finished_at=T0)  # type: ignore[arg-type]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await research.insert_backtest("bt", strategy_id="nope", metrics=BacktestMetrics())


async def test_checkpoints_resume_from_the_latest_epoch(db_pool: Pool) -> None:
    research = ResearchRepo(db_pool)
    for epoch in (1, 2, 3):
        await research.save_checkpoint("tr1", epoch, f"state-{epoch}".encode(), {"loss": 1 / epoch})
    await research.save_checkpoint("tr1", 3, b"state-3-rerun", {"loss": 0.3})
    epoch, state, metrics = await research.latest_checkpoint("tr1") or (0, b"", {})
    assert (epoch, state, metrics) == (3, b"state-3-rerun", {"loss": 0.3})

    await research.insert_strategy("st1", spec())
    await research.upsert_training_run("tr1", strategy_id="st1", status="running", model=b"m")
    await research.upsert_training_run("tr1", strategy_id="st1", status="completed")
    assert await research.load_model("tr1") == b"m"  # kept: the final upsert had no model
    run = await research.get_training_run("tr1")
    assert run is not None and run.has_model and run.status == "completed"


async def test_recent_sessions_and_triggers_are_newest_first(db_pool: Pool) -> None:
    sessions = SessionRepo(db_pool)
    for i in range(3):
        await start_session(sessions, f"s{i}", started_at=T0 + timedelta(minutes=i))
    await sessions.record_trigger(trigger_id="t0", kind="schedule", decision="started")
    await sessions.record_trigger(
        trigger_id="t1", kind="schedule", decision="skipped_budget", reason="budget exhausted",
        created_at=datetime.now(UTC) + timedelta(seconds=1),
    )  # fmt: skip
    assert [s.session_id for s in await sessions.recent(2)] == ["s2", "s1"]
    assert [s.session_id for s in await sessions.recent(5, symbol="nasdaq")] == []
    assert [t.trigger_id for t in await sessions.recent_triggers()] == ["t1", "t0"]


async def test_actions_by_session_and_experiment(db_pool: Pool) -> None:
    actions = ActionRepo(db_pool)
    await actions.record(call("a1"))
    await actions.record(call("e1", session_id=None).model_copy(update={"experiment_id": "x1"}))
    [by_session] = await actions.by_session("s1")
    assert by_session.model_dump(exclude={"created_at"}) == call("a1").model_dump()
    [by_experiment] = await actions.by_experiment("x1")
    assert by_experiment.action_id == "e1"
    assert await actions.totals_by_experiment("x1") == (500, pytest.approx(0.01))
    assert await actions.totals_by_session("none") == (0, 0.0)
