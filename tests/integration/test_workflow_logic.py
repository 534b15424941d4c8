"""The cycle's decisions (refine, converge, stop, choose the outcome) with scripted activities.

The workflow runs on the real Temporal server; its activities are replaced by name with
scripted ones, so every branch is reachable on purpose, including outcomes a healthy
stack rarely produces (failed_training, failed_backtest, failed_assessment).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import names
from stratlab.models.research import (
    AnalyseInput,
    AnalyseResult,
    AssessInput,
    Assessment,
    AssessResult,
    BacktestInput,
    BacktestMetrics,
    BacktestResult,
    DesignInput,
    DesignResult,
    FinishSessionInput,
    GateCheck,
    GateResult,
    HoldoutInput,
    HoldoutResult,
    ResearchCycleInput,
    ResearchCycleResult,
    SessionStarted,
    StartSessionInput,
    StrategySpec,
    TrainingReport,
    TrainInput,
    TrainResult,
)
from workflows.constants import task_queue_for
from workflows.research import ResearchCycleWorkflow


@dataclass
class Script:
    """What each round's activities answer; a callable raises instead."""

    sharpes: list[float] = field(default_factory=lambda: [0.2, 0.4, 0.6])
    verdicts: list[str] = field(default_factory=lambda: ["refine"] * 3)
    budget_ok: bool = True
    fail: dict[str, Callable[[int], Exception | None]] = field(default_factory=dict)
    backtest_gate: list[bool] = field(default_factory=lambda: [True] * 3)
    statistical_gate: list[bool] = field(default_factory=lambda: [True] * 3)
    feedback_seen: list[str] = field(default_factory=list)
    holdouts: list[HoldoutInput] = field(default_factory=list)

    def raise_if(self, step: str, iteration: int) -> None:
        error = self.fail.get(step, lambda _: None)(iteration)
        if error is not None:
            raise error


def business_error(kind: str) -> ApplicationError:
    return ApplicationError(f"scripted {kind}", type=kind, non_retryable=True)


def scripted_activities(script: Script) -> dict[str, list[Any]]:
    @activity.defn(name=names.START_SESSION)
    async def start(inp: StartSessionInput) -> SessionStarted:
        return SessionStarted(
            session_id=inp.session_id,
            designer_prompt_id="p-d",
            assessor_prompt_id="p-a",
            budget_remaining_usd=1.0 if script.budget_ok else 0.0,
            budget_ok=script.budget_ok,
        )

    @activity.defn(name=names.FINISH_SESSION)
    async def finish(inp: FinishSessionInput) -> ResearchCycleResult:
        return inp.result.model_copy(update={"tokens": 42, "cost_usd": 0.01})

    @activity.defn(name=names.DESIGN_STRATEGY)
    async def design(inp: DesignInput) -> DesignResult:
        script.feedback_seen.append(inp.feedback)
        script.raise_if("design", inp.iteration)
        spec = StrategySpec(name=f"s{inp.iteration}", entry="close > 1", exit="close < 1")
        return DesignResult(strategy_id=inp.strategy_id, spec=spec)

    @activity.defn(name=names.TRAIN_STRATEGY)
    async def train(inp: TrainInput) -> TrainResult:
        script.raise_if("train", inp.iteration)
        return TrainResult(
            training_run_id=inp.training_run_id,
            report=TrainingReport(kind="rules"),
            gate=GateResult(gate="training", passed=True),
        )

    @activity.defn(name=names.RUN_BACKTEST)
    async def backtest(inp: BacktestInput) -> BacktestResult:
        script.raise_if("backtest", inp.iteration)
        return BacktestResult(
            backtest_id=inp.backtest_id,
            metrics=BacktestMetrics(sharpe=script.sharpes[inp.iteration - 1], trades=5),
            gate=GateResult(gate="backtest", passed=script.backtest_gate[inp.iteration - 1]),
            statistical_gate=GateResult(
                gate="statistical",
                passed=script.statistical_gate[inp.iteration - 1],
                checks=[
                    GateCheck(
                        name="deflated_sharpe",
                        value=0.5,
                        threshold=0.95,
                        op=">=",
                        passed=script.statistical_gate[inp.iteration - 1],
                        detail="luck would reach this",
                    )
                ],
            ),
            trials=7 * inp.iteration,
        )

    @activity.defn(name=names.EVALUATE_HOLDOUT)
    async def holdout(inp: HoldoutInput) -> HoldoutResult:
        script.holdouts.append(inp)
        return HoldoutResult(
            holdout_id=inp.holdout_id, strategy_id=inp.strategy_id, metrics=BacktestMetrics()
        )

    @activity.defn(name=names.ASSESS_STRATEGY)
    async def assess(inp: AssessInput) -> AssessResult:
        script.raise_if("assess", inp.iteration)
        verdict = script.verdicts[inp.iteration - 1]
        return AssessResult(
            assessment=Assessment(
                verdict=verdict,  # type: ignore[arg-type]
                summary=f"round {inp.iteration}",
                suggestions=[f"try harder {inp.iteration}"],
            )
        )

    @activity.defn(name=names.ANALYSE_STRATEGY)
    async def analyse(inp: AnalyseInput) -> AnalyseResult:
        return AnalyseResult(text=f"analyst note {inp.iteration}")

    return {
        "orchestrator": [start, finish],
        "llm": [design, assess],
        "compute": [train, backtest, analyse, holdout],
    }


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
