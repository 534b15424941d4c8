"""RegressionRunWorkflow on a real Temporal server, real Postgres and the real suite: each
task is a research cycle over its market period; the rows say what passed and why."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from stratlab.models.optimization import RegressionRunInput, RegressionRunResult
from stratlab.store.optimization import ExperimentRepo
from stratlab.store.prompts import PromptRepo
from tests.integration.test_research_cycle import rows, save_history
from workflows.constants import REGRESSION_WORKFLOW_ID
from workflows.regression import RegressionRunWorkflow

TASKS = [
    "sp500-gfc-crash-capital-preservation",
    "nasdaq-boom-2003-2007-risk-adjusted",
    "sp500-sideways-2015-active",
]


async def run_regression(lab: Any, **fields: Any) -> tuple[Any, RegressionRunResult]:
    experiment_id = str(uuid.uuid4())
    handle = await lab.client.start_workflow(
        RegressionRunWorkflow.run,
        RegressionRunInput(experiment_id=experiment_id, **fields),
        id=REGRESSION_WORKFLOW_ID.format(experiment_id=experiment_id),
        task_queue=lab.settings.task_queue("orchestrator"),
    )
    return handle, await asyncio.wait_for(handle.result(), timeout=300)


async def test_regression_run_judges_each_task_and_reuses_a_finished_run(lab: Any) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    handle, result = await run_regression(lab, prompt_id=prod.id, task_ids=TASKS, max_parallel=3)
    await save_history(handle, "regression_run")
    assert result.status == "completed" and not result.reused
    assert result.fitness is not None and result.fitness.tasks == 3

    results = await ExperimentRepo(lab.db).results(result.experiment_id)
    assert sorted(r.task_id for r in results) == sorted(TASKS)
    for r in results:
        # Every failure says why; every cycle ran on the task's own window, isolated.
        assert r.passed or r.reasons
        assert r.tokens > 0 and r.latency_ms > 0 and r.cost_usd > 0
    assert result.fitness.passed == sum(r.passed for r in results)
    assert result.fitness.mean_tokens == sum(r.tokens for r in results) / 3

    sessions = await rows(
        lab,
        "SELECT trigger, input FROM agent_sessions WHERE session_id = ANY(%(ids)s)",
        ids=[r.session_id for r in results],
    )
    assert {s["trigger"] for s in sessions} == {"regression"}
    assert all(s["input"]["isolated"] and s["input"]["period"] for s in sessions)
    scopes = await rows(
        lab,
        "SELECT DISTINCT scope FROM budget_reservations WHERE reservation_id LIKE ANY(%(p)s)",
        p=[f"{r.session_id}%" for r in results],
    )
    assert [s["scope"] for s in scopes] == ["optimizer"]

    # The same prompt on the same tasks is not measured twice.
    _, again = await run_regression(lab, prompt_id=prod.id, task_ids=list(reversed(TASKS)))
    assert again.reused and again.experiment_id == result.experiment_id
    assert again.fitness == result.fitness


async def test_unknown_prompt_or_task_fails_the_run_with_a_clear_error(lab: Any) -> None:
    from temporalio.client import WorkflowFailureError

    prod = await PromptRepo(lab.db).current_prod("designer")
    for fields, expected in (
        ({"prompt_id": "no-such-prompt"}, "no designer prompt 'no-such-prompt'"),
        ({"prompt_id": prod.id, "task_ids": ["no-such-task"]}, "unknown benchmark task"),
    ):
        try:
            await run_regression(lab, **fields)
        except WorkflowFailureError as err:
            assert expected in str(err.cause.cause if err.cause.cause else err.cause)
        else:
            raise AssertionError("the run should have failed")
