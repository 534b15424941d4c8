"""RegressionRunWorkflow on a real Temporal server, real Postgres and the real suite: each
task is a research cycle over its market period; the rows say what passed and why."""

from __future__ import annotations

from typing import Any

from stratlab.models.optimization import RegressionProgress
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.prompts import PromptRepo
from tests.fixtures.optimization import REGRESSION_TASKS, run_regression
from tests.fixtures.temporal import rows, save_history
from workflows.regression import RegressionRunWorkflow


async def test_regression_run_judges_each_task_and_reuses_a_finished_run(lab: Any) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    handle, result = await run_regression(
        lab, prompt_id=prod.id, task_ids=REGRESSION_TASKS, max_parallel=3
    )
    await save_history(handle, "regression_run")
    assert result.status == "completed" and not result.reused
    assert result.fitness is not None and result.fitness.tasks == 3
    # One rollout a task: the noise was not measured, so the score has no interval.
    assert result.fitness.score_low is None and result.fitness.score_high is None
    # The progress query answers a model, here every planned cycle done.
    progress = await handle.query(RegressionRunWorkflow.progress)
    assert progress == RegressionProgress(done=3, planned=3, stopped=None)

    results = await ExperimentRepo(lab.db).results(result.experiment_id)
    assert sorted(r.task_id for r in results) == sorted(REGRESSION_TASKS)
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
    reuse, again = await run_regression(
        lab, prompt_id=prod.id, task_ids=list(reversed(REGRESSION_TASKS))
    )
    assert again.reused and again.experiment_id == result.experiment_id
    assert again.fitness == result.fitness
    assert await reuse.query(RegressionRunWorkflow.progress) == RegressionProgress()


async def test_several_rollouts_give_the_score_an_interval(lab: Any) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    _, result = await run_regression(
        lab, prompt_id=prod.id, task_ids=REGRESSION_TASKS[:2], rollouts=2, max_parallel=4
    )
    fitness = result.fitness
    assert fitness is not None and fitness.tasks == 4  # 2 tasks x 2 rollouts
    results = await ExperimentRepo(lab.db).results(result.experiment_id)
    assert sorted((r.task_id, r.rollout) for r in results) == sorted(
        (t, k) for t in REGRESSION_TASKS[:2] for k in (1, 2)
    )
    assert fitness.score_low is not None and fitness.score_high is not None
    assert fitness.score_low <= fitness.score <= fitness.score_high


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
