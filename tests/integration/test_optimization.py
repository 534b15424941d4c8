"""Prompt evolution end to end with the offline provider: a campaign of NSGA-II
generations on a real Temporal server, real Postgres and the real benchmark suite, then
a human's approval through the waiting review workflow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from optimizer.selection import hypervolume
from stratlab.evolution.verdicts import measured_cycles
from stratlab.models.optimization import OptimizationInput, OptimizationProgress, ReviewDecision
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo
from tests.fixtures.optimization import CAMPAIGN_TASKS
from tests.fixtures.temporal import rows, save_history
from workflows.constants import OPTIMIZE_WORKFLOW_ID, REVIEW_WORKFLOW_ID
from workflows.optimization import OptimizationGenerationWorkflow
from workflows.review import PromptReviewWorkflow

pytestmark = pytest.mark.slow

# The approval flow needs candidates: at the default level of 0.05 this small task set
# yields none (tests/unit/test_generation_verdicts.py tests the rule itself).
CAMPAIGN = {
    "population": 6,
    "meta_mutations": 3,
    "seed": 7,
    "task_ids": CAMPAIGN_TASKS,
    "significance": 0.2,
}


async def run_campaign(lab: Any, generations: int, **fields: Any) -> OptimizationProgress:
    """Run a campaign; the last generation's ``progress`` (what `optimize` shows live)."""
    first = await GenerationRepo(lab.db).next_generation("designer")
    workflow_id = OPTIMIZE_WORKFLOW_ID.format(role="designer", generation=first)
    handle = await lab.client.start_workflow(
        OptimizationGenerationWorkflow.run,
        OptimizationInput(generations=generations, generation=first, **{**CAMPAIGN, **fields}),
        id=workflow_id,
        task_queue=lab.settings.task_queue("orchestrator"),
    )
    await asyncio.wait_for(handle.result(), timeout=900)
    await save_history(handle, "optimization_generation")
    progress = await handle.query("progress", result_type=OptimizationProgress)
    assert progress is not None
    return progress


async def test_campaign_improves_the_front_and_approval_changes_the_next_cycle(lab: Any) -> None:
    live = await run_campaign(lab, 3)
    records = sorted(await GenerationRepo(lab.db).list(role="designer"), key=lambda g: g.generation)
    assert [g.generation for g in records] == [0, 1, 2]
    # The last generation reused the baseline, prod's and the survivors' runs: the live
    # count planned no cycle for them and ends where the recorded count starts.
    assert live.generation == 2 and live.reused_runs > 0
    measured = await measured_cycles(ExperimentRepo(lab.db), live.experiment_ids)
    assert live.planned_evaluations == measured == records[-1].evaluations
    assert len({g.seed for g in records}) == 3 and len({g.campaign_id for g in records}) == 1
    prod = records[0].prod_fitness
    assert prod is not None and prod.tasks == len(CAMPAIGN_TASKS)

    # The front moved beyond the default prompt, and the archive never lost ground.
    assert records[-1].archive_hypervolume > hypervolume([prod.objectives()])
    assert records[-1].best_score > prod.score > 0.0  # graded: informative where nothing passes
    assert records[-1].best_success_rate >= prod.success_rate
    archive = [g.archive_hypervolume for g in records]
    assert archive == sorted(archive)
    for g in records:
        assert g.logbook and g.logbook[0]["gen"] == g.generation
        assert {i.prompt_id for i in g.population} <= {i.prompt_id for i in g.archive} | {
            i.prompt_id for i in g.population
        }

    # Every child is an immutable row with its lineage, and was measured on the task set.
    prompts = PromptRepo(lab.db)
    children = [o for g in records for o in g.offspring if o.accepted and o.prompt_id]
    assert children
    for child in children:
        row = await prompts.get(child.prompt_id)  # type: ignore[arg-type]
        assert row is not None and row.parent_ids == child.parent_ids
        assert row.generation is not None
    operators = {o.operator.split("+")[0] for o in children}
    assert {"llm_mutation", "crossover"} <= operators

    # A candidate waits in its own workflow; approving it makes it prod.
    candidates = [c for g in records for c in g.candidates]
    assert candidates
    chosen = candidates[-1]
    assert (await prompts.get(chosen)).tag == "candidate"  # type: ignore[union-attr]
    review = lab.client.get_workflow_handle_for(
        PromptReviewWorkflow.run, REVIEW_WORKFLOW_ID.format(prompt_id=chosen)
    )
    pending = await review.query(PromptReviewWorkflow.pending)
    assert pending is not None and pending.prompt_id == chosen
    old_prod = await prompts.current_prod("designer")
    await review.signal(PromptReviewWorkflow.decide, ReviewDecision(approve=True, actor="test"))
    outcome = await asyncio.wait_for(review.result(), timeout=60)
    await save_history(review, "prompt_review")
    assert outcome.decision == "approved" and outcome.previous_prod_id == old_prod.id
    assert (await prompts.current_prod("designer")).id == chosen
    assert (await prompts.get(old_prod.id)).tag == "archived"  # type: ignore[union-attr]

    cycle = await lab.run_cycle(symbol="sp500", max_iterations=1)
    session = await rows(
        lab,
        "SELECT designer_prompt_id FROM agent_sessions WHERE session_id = %(s)s",
        s=cycle.session_id,
    )
    assert session[0]["designer_prompt_id"] == chosen
    actions = await rows(
        lab,
        "SELECT DISTINCT prompt_id FROM agent_actions"
        " WHERE session_id = %(s)s AND role = 'designer'",
        s=cycle.session_id,
    )
    assert [a["prompt_id"] for a in actions] == [chosen]

    # The other candidates are still waiting; a rejection archives one with its reason.
    for other in candidates[:-1]:
        handle = lab.client.get_workflow_handle_for(
            PromptReviewWorkflow.run, REVIEW_WORKFLOW_ID.format(prompt_id=other)
        )
        await handle.signal(
            PromptReviewWorkflow.decide, ReviewDecision(approve=False, reason="too similar")
        )
        outcome = await asyncio.wait_for(handle.result(), timeout=60)
        assert outcome.decision == "rejected"
        events = await prompts.tags(other)
        assert events[-1].tag == "archived" and events[-1].reason == "too similar"
    results = await ExperimentRepo(lab.db).latest_results(chosen)
    assert set(results) == set(CAMPAIGN_TASKS)
