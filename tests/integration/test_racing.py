"""Racing end to end: a regression run that races an unbeatable bar stops starting cycles
once it is dominated with confidence, ends ``raced_out`` and counts what it saved."""

from __future__ import annotations

from typing import Any

import pytest

from stratlab.evolution.suite import default_tasks, load_suite
from stratlab.models.optimization import RaceAgainst, RegressionProgress
from stratlab.models.research import ResearchCycleInput
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.prompts import PromptRepo
from tests.fixtures.optimization import run_regression
from workflows.constants import RESEARCH_WORKFLOW_ID

pytestmark = pytest.mark.slow

TASKS = sorted(t.task_id for t in default_tasks(load_suite().tasks))[:7]


async def test_a_dominated_prompt_stops_after_the_minimum_and_counts_the_saving(
    lab: Any,
) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    # A bar no prompt reaches: a perfect score everywhere at no cost. A loose level lets
    # three tasks decide (all three worse: p = 1/8; one tie among them: p = 1/4).
    bar = RaceAgainst(prompt_id="bar", scores=dict.fromkeys(TASKS, 1.0), mean_tokens=0.0,
                      mean_latency_ms=0.0, min_tasks=3, significance=0.5)  # fmt: skip
    handle, result = await run_regression(
        lab, prompt_id=prod.id, task_ids=TASKS, max_parallel=1, race=bar, reuse=False
    )
    assert result.status == "raced_out" and result.stopped_reason is None
    assert result.raced_out is not None
    assert result.raced_out.startswith("dominated by prod with confidence after 3 of 7 cycles")
    assert result.saved == 4
    assert result.fitness is not None and result.fitness.tasks == 3
    results = await ExperimentRepo(lab.db).results(result.experiment_id)
    assert len(results) == 3
    stored = await ExperimentRepo(lab.db).get(result.experiment_id)
    assert stored is not None and stored.status == "raced_out"
    assert stored.stopped_reason == result.raced_out
    progress = await handle.query("progress", result_type=RegressionProgress)
    assert (progress.done, progress.planned) == (3, 7)
    assert progress.stopped == result.raced_out


async def test_a_run_that_is_not_dominated_measures_every_task(lab: Any) -> None:
    prod = await PromptRepo(lab.db).current_prod("designer")
    # A bar every prompt beats: nothing to stop for.
    bar = RaceAgainst(prompt_id="bar", scores=dict.fromkeys(TASKS[:5], 0.0),
                      mean_tokens=1e9, mean_latency_ms=1e9, min_tasks=5)  # fmt: skip
    _, result = await run_regression(
        lab, prompt_id=prod.id, task_ids=TASKS[:5], max_parallel=2, race=bar, reuse=False
    )
    assert result.status == "completed" and result.raced_out is None and result.saved == 0
    assert result.fitness is not None and result.fitness.tasks == 5

    # Each research cycle was told its task's objective.
    suite = {t.task_id: t for t in load_suite().tasks}
    for row in await ExperimentRepo(lab.db).results(result.experiment_id):
        history = await lab.client.get_workflow_handle(
            RESEARCH_WORKFLOW_ID.format(session_id=row.session_id)
        ).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (cycle,) = await lab.client.data_converter.decode(
            started.input.payloads, [ResearchCycleInput]
        )
        assert cycle.objective == suite[row.task_id].describe_objective()
