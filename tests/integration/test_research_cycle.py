"""Full research cycles through a real Temporal server, real Postgres and real market data.

Each reachable outcome is driven by what a user could really do: loosen or tighten a
gate in the workflow input, cap the budget, or point the designer at a model server
that answers garbage. The assertions read the rows a user would look at.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratlab.models.research import CycleStatus
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import rows, save_history
from workflows.constants import SA_OUTCOME, SA_PHASE


async def test_success_writes_every_row_a_user_reads(lab: Any) -> None:
    handle = await lab.start_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=2,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    result = await handle.result()
    await save_history(handle, "research_success_rules")
    assert result.outcome == "success"
    assert result.best_strategy_id is not None
    assert 1 <= len(result.iterations) <= 2
    first = result.iterations[0]
    assert first.metrics is not None and first.metrics.bars > 500
    assert first.assessment is not None

    (session,) = await rows(
        lab, "SELECT * FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["outcome"] == "success" and session["finished_at"] is not None
    phases = {
        r["phase"]
        for r in await rows(
            lab, "SELECT phase FROM session_phases WHERE session_id = %(s)s", s=result.session_id
        )
    }
    assert {"budget", "design", "train", "backtest", "assess"} <= phases
    backtests = await rows(
        lab, "SELECT equity, metrics FROM backtests WHERE session_id = %(s)s", s=result.session_id
    )
    assert len(backtests) == len(result.iterations)
    equity = backtests[0]["equity"]
    assert len(equity["equity"]) == len(equity["ts"]) == len(equity["benchmark"]) > 500
    actions = await rows(
        lab, "SELECT * FROM agent_actions WHERE session_id = %(s)s", s=result.session_id
    )
    roles = sorted(a["role"] for a in actions)
    assert roles.count("designer") >= len(result.iterations)
    assert roles.count("assessor") == len(result.iterations)
    assert all(a["input_tokens"] > 0 and a["output_tokens"] > 0 for a in actions)
    spent = sum(float(a["cost_usd"]) for a in actions)
    assert spent > 0 and result.cost_usd == pytest.approx(spent, rel=1e-6)
    (budget,) = await rows(lab, "SELECT * FROM agent_budget WHERE scope = 'research'")
    assert float(budget["spent_usd"]) == pytest.approx(spent, rel=1e-6)
    assert float(budget["reserved_usd"]) == pytest.approx(0.0, abs=1e-9)

    status = await handle.query("status", result_type=CycleStatus)
    assert status.phase == "done" and status.outcome == "success"
    described = await handle.describe()
    assert described.typed_search_attributes.get(SA_OUTCOME) == "success"
    assert described.typed_search_attributes.get(SA_PHASE) == "done"


async def test_ml_cycle_trains_epochs_with_checkpoints(lab: Any) -> None:
    handle = await lab.start_cycle(
        symbol="nasdaq",
        kind="ml",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    result = await handle.result()
    await save_history(handle, "research_success_ml")
    assert result.outcome == "success", result
    (run,) = await rows(
        lab, "SELECT * FROM training_runs WHERE session_id = %(s)s", s=result.session_id
    )
    epochs = run["report"]["epochs"]
    assert run["status"] == "completed" and run["model"] is not None and len(epochs) >= 1
    checkpoints = await rows(
        lab,
        "SELECT epoch FROM training_checkpoints WHERE training_run_id = %(r)s ORDER BY epoch",
        r=run["training_run_id"],
    )
    assert [c["epoch"] for c in checkpoints] == [e["epoch"] for e in epochs]


async def test_training_gate_failure_stops_before_the_backtest(lab: Any) -> None:
    handle = await lab.start_cycle(
        symbol="sp500", kind="rules", training_gate={"min_validation_trades": 1_000_000}
    )
    result = await handle.result()
    await save_history(handle, "research_failed_training_gate")
    assert result.outcome == "failed_training_gate"
    gate = result.iterations[0].training_gate
    assert gate is not None and not gate.passed
    failed = {c.name: c for c in gate.failures()}
    assert failed["validation_trades"].threshold == 1_000_000
    assert (
        await rows(lab, "SELECT 1 FROM backtests WHERE session_id = %(s)s", s=result.session_id)
        == []
    )
    assert (
        await rows(
            lab,
            "SELECT 1 FROM agent_actions WHERE session_id = %(s)s AND role = 'assessor'",
            s=result.session_id,
        )
        == []
    )


async def test_backtest_gate_failure_is_recorded_with_its_thresholds(lab: Any) -> None:
    handle = await lab.start_cycle(
        symbol="nasdaq",
        kind="rules",
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate={"min_sharpe": 50.0},
    )
    result = await handle.result()
    await save_history(handle, "research_refined_after_gates")
    assert result.outcome == "failed_backtest_gate"
    # A failed gate is refined from: every round is designed, fitted and judged again.
    assert [i.outcome for i in result.iterations] == ["failed_backtest_gate"] * 3
    backtests = await rows(
        lab, "SELECT gate FROM backtests WHERE session_id = %(s)s", s=result.session_id
    )
    assert len(backtests) == 3
    for bt in backtests:
        sharpe_check = next(c for c in bt["gate"]["checks"] if c["name"] == "sharpe")
        assert sharpe_check["threshold"] == 50.0 and sharpe_check["passed"] is False
    designs = await _design_inputs(lab, result.session_id)
    assert [d["iteration"] for d in designs] == [1, 2, 3]
    assert designs[0]["feedback"] == ""
    assert "backtest gate: sharpe was" in designs[1]["feedback"]
    (session,) = await rows(
        lab, "SELECT outcome FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["outcome"] == "failed_backtest_gate"


async def _design_inputs(lab: Any, session_id: str) -> list[dict[str, Any]]:
    """The design activity's inputs, in order, as the workflow history recorded them."""
    handle = lab.client.get_workflow_handle(f"research-{session_id}")
    history = await handle.fetch_history()
    return [
        json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for event in history.events
        if event.activity_task_scheduled_event_attributes.activity_type.name == "design_strategy"
    ]


@pytest.fixture
def lab_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.mark.parametrize("lab_overrides", [{"research_daily_budget_usd": 0.10}], indirect=True)
async def test_exhausted_budget_skips_without_spending_a_token(lab: Any) -> None:
    handle = await lab.start_cycle(symbol="sp500")
    result = await handle.result()
    await save_history(handle, "research_skipped_budget")
    assert result.outcome == "skipped_budget" and result.iterations == []
    assert result.tokens == 0
    assert await rows(lab, "SELECT 1 FROM agent_actions") == []
    (trigger,) = await rows(
        lab, "SELECT decision FROM agent_triggers WHERE session_id = %(s)s", s=result.session_id
    )
    assert trigger["decision"] == "skipped_budget"


async def test_without_the_statistical_gate_a_success_joins_no_skill_library(lab: Any) -> None:
    result = await lab.run_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate={"enabled": False},
    )
    assert result.outcome == "success"
    assert result.iterations[0].statistical_gate is None
    assert await rows(lab, "SELECT * FROM skills") == []


async def test_a_cycle_counts_its_trials_and_shows_its_statistical_checks(lab: Any) -> None:
    # the seed gates opened, so the statistical gate (at its defaults) always runs
    result = await lab.run_cycle(
        symbol="nasdaq",
        kind="rules",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
    )
    first = result.iterations[0]
    ledger = await rows(lab, "SELECT * FROM trials")
    assert len(ledger) == 1 and ledger[0]["source"] == "cycle"
    assert ledger[0]["trial_id"] == first.training_run_id
    gate = first.statistical_gate
    assert gate is not None
    assert [c.name for c in gate.checks] == [
        "min_trades",
        "deflated_sharpe",
        "pbo",
        "sharpe_plausible",
    ]
    assert ledger[0]["n_trials"] > 0
    assert first.trials == 1  # the N it was judged against: this universe's one fit
    assert result.outcome == ("success" if gate.passed else "failed_backtest_gate")
    assert (result.holdout is not None) == gate.passed
    assert first.training_gate is not None
    assert "lookahead" in [c.name for c in first.training_gate.checks]
