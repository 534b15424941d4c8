"""Every table the CLI prints reads at 80 columns: rendered to an 80-column console, no line
is longer, nothing is cut with an ellipsis, and the ids, outcomes and times a person
types into the next command come out whole on one line. Rows hold the widest values the
lab makes (uuid ids, the longest outcome, five-figure amounts)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from stratlab.cli._common import short_ids
from stratlab.cli.generations_view import verdict_tally, verdicts_table
from stratlab.cli.lab_schedules import LabSchedule
from stratlab.cli.overview import (
    budget_table,
    cycles_table,
    generations_running_table,
    history_table,
    paper_running_table,
)
from stratlab.cli.paper_view import PaperStrategyRow, paper_table
from stratlab.cli.read import data_table
from stratlab.cli.schedules import schedules_table
from stratlab.cli.session_view import SessionDetail, _calls_table, _gate_table, _phases_table
from stratlab.cli.skills import skills_table
from stratlab.cli.trials import _ledger_table
from stratlab.models.optimization import OffspringVerdict
from stratlab.models.records import ActionRecord, PhaseRecord, SessionRecord, SkillRecord
from stratlab.models.research import (
    BacktestMetrics,
    CycleStatus,
    GateCheck,
    GateResult,
    StrategySpec,
    TrialLedger,
)
from stratlab.store.trading import PaperStrategyRecord

WIDTH = 80
NOW = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)
SESSION_IDS = [
    "0b3c5e7a-1111-4000-8000-000000000001",
    "0b3c5e7a-2222-4000-8000-000000000002",  # shares 8 characters with the first
    "9f1d2c3b-3333-4000-8000-000000000003",
]


def render(table: Table) -> list[str]:
    out = Console(width=WIDTH, file=io.StringIO(), record=True, color_system=None)
    out.print(table)
    return out.export_text().splitlines()


def assert_reads_at_80(lines: list[str], *whole: str) -> None:
    too_long = [line for line in lines if len(line) > WIDTH]
    assert not too_long, "\n".join(lines)
    assert not any("…" in line for line in lines), "a cell was cut:\n" + "\n".join(lines)
    for text in whole:
        assert any(text in line for line in lines), f"{text!r} not whole:\n" + "\n".join(lines)


def session(i: int, **fields: Any) -> SessionRecord:
    base = {
        "session_id": SESSION_IDS[i],
        "workflow_id": f"research-{SESSION_IDS[i]}",
        "trigger": "regression",
        "symbol": "noise-a",
        "status": "finished",
        "outcome": "failed_backtest_gate",
        "started_at": NOW - timedelta(hours=i),
        "tokens": 1_234_567,
        "cost_usd": 12.3456,
    }
    return SessionRecord.model_validate({**base, **fields})


def test_short_ids_are_unique_prefixes_of_at_least_eight() -> None:
    short = short_ids(SESSION_IDS)
    assert short[SESSION_IDS[2]] == "9f1d2c3b"
    assert short[SESSION_IDS[0]] == "0b3c5e7a-1" and short[SESSION_IDS[1]] == "0b3c5e7a-2"
    assert len(set(short.values())) == 3
    assert all(full.startswith(s) for full, s in short.items())


def test_history_and_status_tables() -> None:
    sessions = [session(0), session(1, outcome=None, status="running"), session(2)]
    short = short_ids(SESSION_IDS)
    lines = render(history_table(sessions, title="Last 3 sessions"))
    assert_reads_at_80(
        lines, *short.values(), "failed_backtest_gate", "03-01 23:59", "regression", "noise-a"
    )
    live = {
        sessions[0].workflow_id: CycleStatus(
            session_id=SESSION_IDS[0],
            phase="backtest",
            iteration=3,
            symbol="noise-a",
            started_at=NOW,
            last_sharpe=-12.34,
        ),
        sessions[1].workflow_id: "terminated",
    }
    assert_reads_at_80(
        render(cycles_table(sessions, live)), *short.values(), "backtest", "terminated", "noise-a"
    )
    generations = [
        {
            "workflow_id": "optimize-designer-123",
            "started": NOW,
            "progress": {"phase": "evaluating", "planned_evaluations": 1200},
        }
    ]
    assert_reads_at_80(
        render(generations_running_table(generations)),
        "optimize-designer-123",
        "1200 planned",
        "03-01 23:59",
    )
    paper = [
        PaperStrategyRecord(
            strategy_id="sp500-nasdaq-2015-10-01",
            name="x",
            symbols=["sp500", "nasdaq"],
            status="paused",
            initial_capital=100_000,
            created_at=NOW,
            updated_at=NOW,
        )
    ]
    assert_reads_at_80(render(paper_running_table(paper)), "sp500-nasdaq-2015-10-01", "paused")


def test_budget_and_schedule_tables() -> None:
    days = [
        {"scope": scope, "day": "2025-03-01", "configured_cap_usd": 12345.0, "buffer_usd": 0.1,
         "spent_usd": 12344.9, "reserved_usd": 123.4567, "remaining_usd": 0.0}
        for scope in ("research", "optimizer")
    ]  # fmt: skip
    assert_reads_at_80(render(budget_table(days)), "$12345.0000", "$123.4567", "optimizer")
    schedules = [
        LabSchedule(id="stratlab-research-trigger", kind="research", paused=True, note="lunch",
                    when="every 5m", workflow="ResearchCycleWorkflow", task_queue="q",
                    next_run=NOW, runs=12345),
        LabSchedule(id="stratlab-nightly-optimization-designer", kind="nightly", paused=False,
                    note="", when="daily 02:00 UTC", workflow="OptimizationGenerationWorkflow",
                    task_queue="q", hour=2, next_run=NOW, runs=3),
    ]  # fmt: skip
    assert_reads_at_80(
        render(schedules_table(schedules)),
        "research-trigger",
        "nightly-optimization-designer",
        "paused",
        "daily 02:00 UTC",
        "03-01 23:59",
    )


def test_skills_and_paper_lists() -> None:
    spec = StrategySpec(name="s", symbol="noise-a", entry="close > 0", exit="close < 0")
    metrics = BacktestMetrics(total_return=-0.9876, max_drawdown=0.9876, trades=12345)
    skills = [
        SkillRecord(
            skill_id=sid, strategy_id=f"st-{sid}", symbol="noise-a", kind="rules",
            name="a rather long strategy name that has to wrap inside its own cell",
            spec=spec, metrics=metrics, score=-12.34, tags=["noise-a", "rules", "trend"],
        )
        for sid in SESSION_IDS
    ]  # fmt: skip
    short = short_ids(SESSION_IDS)
    assert_reads_at_80(render(skills_table(skills)), *short.values(), "-98.8%", "12345")

    rows = [
        PaperStrategyRow(
            strategy_id="sp500-nasdaq-2015-10-01-long", status=status,
            symbols=["sp500", "nasdaq", "noise-a"], total_value=1_234_567.89, pnl_pct=-0.1234,
            last_bar_ts=NOW,
        )
        for status in ("running", "error")
    ]  # fmt: skip
    assert_reads_at_80(
        render(paper_table(rows)), "sp500-nasdaq-2015-10-01-long", "-12.3%", "2025-03-01", "error"
    )


def test_data_and_trials_tables() -> None:
    rows = [
        {
            "symbol": "btc-daily-imported",
            "source": "/home/someone/data/very/long/path/to/btc-daily-2015-2024.parquet",
            "description": "3650 bars, imported",
            "stale_open_share": 0.75,
            "stale_open_stretches": [{"share": 0.98, "start": "1999-01-04", "end": "2006-12-29"}],
        }
    ]
    assert_reads_at_80(render(data_table(rows)), "btc-daily-imported", "98% 1999-01..2006-12")
    ledgers = [
        TrialLedger(universe="noise-a|1999-01-04|2014-12-31", symbol="noise-a", fits=12345,
                    n=1_234_567, n_effective=123_456.7, last_at=NOW)
    ]  # fmt: skip
    assert_reads_at_80(render(_ledger_table(ledgers)), "noise-a", "1,234,567", "2025-03-01")


def test_session_tables() -> None:
    detail = SessionDetail(
        session=session(0),
        phases=[
            PhaseRecord(session_id=SESSION_IDS[0], iteration=10, phase="recording",
                        started_at=NOW, finished_at=NOW + timedelta(seconds=123.4),
                        status="failed", detail={"reason": "x" * 200})
        ],
        strategies=[], training_runs=[], backtests=[], assessments=[],
        actions=[
            ActionRecord(action_id="a", role="designer", provider="openai",
                         model="a-very-long-model-name-from-a-provider-2025-03-01",
                         input_tokens=123_456, output_tokens=12_345, cost_usd=12.3456,
                         latency_ms=123_456, latency_simulated=True,
                         outcome="budget_exhausted", iteration=10, created_at=NOW)
        ],
    )  # fmt: skip
    assert_reads_at_80(render(_phases_table(detail)), "recording", "failed", "23:59:00")
    assert_reads_at_80(render(_calls_table(detail)), "budget_exhausted", "$12.3456", "123456+12345")
    gate = GateResult(
        gate="backtest",
        passed=False,
        checks=[
            GateCheck(name="min_validation_trades", value=1234.5678, threshold=-1.5, op=">=",
                      passed=False, detail="a detail that is long enough to need wrapping " * 3)
        ],
    )  # fmt: skip
    assert_reads_at_80(render(_gate_table(gate, "backtest gate")), "min_validation_trades", "FAIL")


@pytest.mark.parametrize("width", [80, 120])
def test_the_check_catches_a_cut_cell(width: int) -> None:
    """The assertion above is not vacuous: a table too wide for 80 columns fails it."""
    table = Table()
    for i in range(6):
        table.add_column(f"column {i}", no_wrap=True)
    table.add_row(*(SESSION_IDS[0] for _ in range(6)))
    out = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    out.print(table)
    with pytest.raises(AssertionError):
        assert_reads_at_80(out.export_text().splitlines(), SESSION_IDS[0])


def test_trigger_wait_prints_the_cycles_figures() -> None:
    """`trigger --wait` ends with the chosen iteration's walk-forward figures and cost."""
    from stratlab.cli.control import result_lines
    from stratlab.models.research import IterationSummary, ResearchCycleResult

    metrics = BacktestMetrics(sharpe=1.234, total_return=0.5, benchmark_return=0.25,
                              max_drawdown=0.1, trades=42)  # fmt: skip
    result = ResearchCycleResult(
        session_id=SESSION_IDS[0], outcome="success", best_strategy_id="s2", tokens=12_345,
        cost_usd=0.0123,
        iterations=[
            IterationSummary(iteration=1, strategy_id="s1", outcome="failed_backtest_gate"),
            IterationSummary(iteration=2, strategy_id="s2", strategy_name="sma cross",
                             kind="rules", outcome="success", metrics=metrics),
        ],
    )  # fmt: skip
    text = "\n".join(result_lines(result))
    assert "sma cross (rules), iteration 2 of 2: success" in text
    assert "sharpe 1.23, return +50.0% (buy-and-hold +25.0%)" in text
    assert "max drawdown -10.0%, 42 trades" in text
    assert "12,345 tokens, $0.0123" in text


def test_why_offspring_are_not_candidates() -> None:
    """Each offspring that is not a candidate, its id whole and its reason wrapped in its
    own cell; a child the checks turned away shows its operator."""
    control = "sp500-post-gfc-recovery-risk-adjusted"
    verdicts = [
        OffspringVerdict(prompt_id=SESSION_IDS[0], operator="crossover+rephrase", cause="dominated",
                         reason="not on the Pareto front: dominated by prod on score, tokens and "
                         f"latency; fails control task {control} (score 0.020 vs prod 0.800, "
                         "and 3 more)"),
        OffspringVerdict(prompt_id=SESSION_IDS[2], candidate=True, cause="candidate",
                         reason="on the Pareto front, beats prod"),
        OffspringVerdict(operator="llm_mutation", cause="failed_checks",
                         reason="failed the checks: template: sandbox violation"),
    ]  # fmt: skip
    lines = render(verdicts_table(verdicts, "Why offspring are not candidates"))
    assert_reads_at_80(lines, SESSION_IDS[0][:8], "(llm_mutation)", control)
    assert not any(SESSION_IDS[2][:8] in line for line in lines)  # a candidate is not listed
    assert verdict_tally(verdicts) == "3: 1 candidate, 1 dominated, 1 failed the checks"
