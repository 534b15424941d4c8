"""The cycle's decisions (refine, converge, stop, choose the outcome) with scripted activities.

The workflow runs on the real Temporal server; its activities are replaced by name with
scripted ones, so every branch is reachable on purpose, including outcomes a healthy
stack rarely produces (failed_training, failed_backtest, failed_assessment).
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from stratlab.models.research import ResearchCycleInput, ResearchCycleResult
from tests.fixtures.scripted_activities import Script, business_error, scripted_activities
from workflows.constants import task_queue_for
from workflows.research import ResearchCycleWorkflow


async def run(client: Client, script: Script, **fields: Any) -> ResearchCycleResult:
    prefix = f"logic{uuid.uuid4().hex[:8]}-"
    acts = scripted_activities(script)
    workers = [
        Worker(
            client,
            task_queue=task_queue_for(pool, prefix),
            workflows=[ResearchCycleWorkflow] if pool == "orchestrator" else [],
            activities=acts[pool],
        )
        for pool in ("orchestrator", "llm", "compute")
    ]
    async with workers[0], workers[1], workers[2]:
        return await client.execute_workflow(
            ResearchCycleWorkflow.run,
            ResearchCycleInput(**fields),
            id=f"research-logic-{uuid.uuid4()}",
            task_queue=task_queue_for("orchestrator", prefix),
        )


async def test_refines_while_asked_and_keeps_the_best_round(temporal_client: Client) -> None:
    script = Script(sharpes=[0.2, 0.4, 0.6])
    result = await run(temporal_client, script, max_iterations=3)
    assert result.outcome == "success" and len(result.iterations) == 3
    assert result.best_strategy_id == result.iterations[2].strategy_id
    assert not result.converged
    assert script.feedback_seen[0] == ""
    assert "try harder 1" in script.feedback_seen[1] and "sharpe 0.20" in script.feedback_seen[1]
    assert "analyst note 1" in script.feedback_seen[1]  # the analyst's findings are fed back
    assert result.tokens == 42  # the finish activity's totals are what the workflow returns


async def test_stops_when_the_score_stops_improving(temporal_client: Client) -> None:
    script = Script(sharpes=[0.5, 0.52, 0.9])
    result = await run(temporal_client, script, max_iterations=3, convergence_threshold=0.05)
    assert len(result.iterations) == 2 and result.converged
    assert result.best_strategy_id == result.iterations[1].strategy_id


async def test_accept_ends_refinement(temporal_client: Client) -> None:
    script = Script(verdicts=["accept", "refine", "refine"])
    result = await run(temporal_client, script, max_iterations=3)
    assert len(result.iterations) == 1 and result.outcome == "success"


async def test_a_later_gate_failure_keeps_the_earlier_success(temporal_client: Client) -> None:
    script = Script(backtest_gate=[True, False, False], sharpes=[0.6, 0.9, 0.9])
    result = await run(temporal_client, script, max_iterations=3)
    assert [i.outcome for i in result.iterations] == [
        "success",
        "failed_backtest_gate",
        "failed_backtest_gate",
    ]
    assert result.outcome == "success"
    assert result.best_strategy_id == result.iterations[0].strategy_id


async def test_a_failed_gate_is_refined_from_with_the_failed_checks(
    temporal_client: Client,
) -> None:
    script = Script(backtest_gate=[False, True, True], verdicts=["refine", "accept", "accept"])
    result = await run(temporal_client, script, max_iterations=3)
    assert [i.outcome for i in result.iterations] == ["failed_backtest_gate", "success"]
    assert result.outcome == "success"
    assert result.best_strategy_id == result.iterations[1].strategy_id
    assert script.feedback_seen[0] == ""
    assert "The previous attempt ended failed_backtest_gate." in script.feedback_seen[1]


async def test_budget_running_out_between_rounds_keeps_the_best(temporal_client: Client) -> None:
    script = Script(
        fail={"design": lambda i: business_error("BudgetExhaustedError") if i == 2 else None}
    )
    result = await run(temporal_client, script, max_iterations=3)
    assert result.outcome == "success" and len(result.iterations) == 1


async def test_no_budget_means_no_design(temporal_client: Client) -> None:
    script = Script(budget_ok=False)
    result = await run(temporal_client, script)
    assert result.outcome == "skipped_budget" and result.iterations == []
    assert script.feedback_seen == []  # design was never called


async def test_each_failing_step_has_its_outcome(temporal_client: Client) -> None:
    expected = {
        "design": ("StrategyDesignError", "failed_design"),
        "train": ("TrainingError", "failed_training"),
        "backtest": ("BacktestError", "failed_backtest"),
        "assess": ("AssessmentError", "failed_assessment"),
    }
    for step, (kind, outcome) in expected.items():
        script = Script(fail={step: lambda _i, kind=kind: business_error(kind)})
        result = await run(temporal_client, script, max_iterations=2)
        assert result.outcome == outcome, step
        assert result.iterations[-1].error and "scripted" in result.iterations[-1].error


async def test_the_holdout_is_evaluated_once_for_the_chosen_strategy(
    temporal_client: Client,
) -> None:
    script = Script(sharpes=[0.2, 0.9, 0.4])
    result = await run(temporal_client, script, max_iterations=3)
    assert result.outcome == "success"
    assert [h.strategy_id for h in script.holdouts] == [result.best_strategy_id]
    assert result.best_strategy_id == result.iterations[1].strategy_id
    assert script.holdouts[0].training_run_id == result.iterations[1].training_run_id
    assert result.holdout is not None and result.holdout.strategy_id == result.best_strategy_id
    assert [i.trials for i in result.iterations] == [7, 14, 21]


async def test_a_failed_statistical_gate_is_no_discovery_and_reaches_no_holdout(
    temporal_client: Client,
) -> None:
    script = Script(statistical_gate=[False, False, False])
    result = await run(temporal_client, script, max_iterations=1)
    assert result.outcome == "failed_backtest_gate" and result.best_strategy_id is None
    assert result.iterations[0].statistical_gate is not None
    assert script.holdouts == [] and result.holdout is None
