"""The generation's live evaluation count and its recorded count mean the same thing.

``OptimizationGenerationWorkflow`` runs on the real Temporal server with its activities
replaced by name and a scripted ``RegressionRunWorkflow`` child, some of whose runs reuse
an earlier measurement (as the baseline, prod and the survivors do from the second
generation of a campaign on). Such a run measures no cycle: the ``progress`` query's
planned count drops it, and the generation's record is handed every run the query lists,
so ``GenerationService.record`` counts the cycles the live table counts
(``tests/unit/test_generation_verdicts.py`` checks that side against Postgres).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from activities import names
from stratlab.models.optimization import (
    CheckedChild,
    CheckInput,
    Fitness,
    GenerationPlan,
    GenerationResult,
    LoadParentsInput,
    OffspringRecord,
    OptimizationInput,
    OptimizationProgress,
    ParentsLoaded,
    ParentSpec,
    ProposedChild,
    ProposeInput,
    RecordGenerationInput,
    RegisterInput,
    RegressionRunInput,
    RegressionRunResult,
    SelectInput,
    SelectResult,
    SelectTasksInput,
    TaskSelection,
)
from workflows.constants import task_queue_for
from workflows.optimization import OptimizationGenerationWorkflow

SUITE = [f"suite-{i}" for i in range(40)]
TASKS = ["t1", "t2", "t3"]
REUSED = {"prod-on-the-suite", "survivor"}  # measured before: the runs reuse them


@workflow.defn(name="RegressionRunWorkflow")
class ScriptedRegressionRun:
    """Prod's baseline on the suite and the survivor reuse an earlier run; the rest
    measure."""

    @workflow.run
    async def run(self, inp: RegressionRunInput) -> RegressionRunResult:
        key = "prod-on-the-suite" if len(inp.task_ids) == len(SUITE) else inp.prompt_id
        reused = key in REUSED
        return RegressionRunResult(
            experiment_id=f"earlier-{key}" if reused else inp.experiment_id,
            prompt_id=inp.prompt_id,
            status="completed",
            fitness=Fitness(score=0.2, mean_tokens=1000, tasks=len(inp.task_ids), version=1),
            reused=reused,
        )


def scripted(recorded: list[RecordGenerationInput]) -> dict[str, list[Any]]:
    @activity.defn(name=names.BEGIN_GENERATION)
    async def begin(inp: OptimizationInput) -> GenerationPlan:
        return GenerationPlan(role="designer", generation=1, seed=1, campaign_id="c",
                              prod_prompt_id="prod", parent_ids=["prod", "survivor"],
                              suite_task_ids=SUITE)  # fmt: skip

    @activity.defn(name=names.SELECT_TASKS)
    async def select_tasks(inp: SelectTasksInput) -> TaskSelection:
        return TaskSelection(task_ids=TASKS, targets=TASKS[:2], controls=TASKS[2:])

    @activity.defn(name=names.LOAD_PARENTS)
    async def load_parents(inp: LoadParentsInput) -> ParentsLoaded:
        return ParentsLoaded(
            parents=[ParentSpec(prompt_id=p, system="", content="x") for p in inp.prompt_ids]
        )

    @activity.defn(name=names.PROPOSE_OFFSPRING)
    async def propose(inp: ProposeInput) -> list[ProposedChild]:
        return [
            ProposedChild(system="", content=f"kid {i}", parent_ids=["prod"], operator="rephrase")
            for i in range(inp.count)
        ]

    @activity.defn(name=names.CHECK_OFFSPRING)
    async def check(inp: CheckInput) -> list[CheckedChild]:
        return [CheckedChild(child=c, accepted=True) for c in inp.children]

    @activity.defn(name=names.REGISTER_OFFSPRING)
    async def register(inp: RegisterInput) -> list[OffspringRecord]:
        return [
            OffspringRecord(prompt_id=f"kid-{i}", operator=c.child.operator)
            for i, c in enumerate(inp.children)
        ]

    @activity.defn(name=names.SELECT_SURVIVORS)
    async def select(inp: SelectInput) -> SelectResult:
        return SelectResult(survivors=inp.individuals[:2], front=[], archive=[],
                            hypervolume=0.0, archive_hypervolume=0.0)  # fmt: skip

    @activity.defn(name=names.RECORD_GENERATION)
    async def record(inp: RecordGenerationInput) -> GenerationResult:
        recorded.append(inp)
        return GenerationResult(role="designer", generation=1, seed=1, hypervolume=0.0,
                                archive_hypervolume=0.0, best_success_rate=0.0)  # fmt: skip

    return {
        "orchestrator": [begin, select_tasks, load_parents, register, record],
        "llm": [check],
        "optimizer": [propose, select],
    }


async def test_reused_runs_are_not_planned_and_the_record_gets_every_run(
    temporal_client: Client,
) -> None:
    prefix = f"counts{uuid.uuid4().hex[:8]}-"
    recorded: list[RecordGenerationInput] = []
    acts = scripted(recorded)
    workers = [
        Worker(
            temporal_client,
            task_queue=task_queue_for(pool, prefix),
            workflows=[OptimizationGenerationWorkflow, ScriptedRegressionRun]
            if pool == "orchestrator"
            else [],
            activities=acts[pool],
        )
        for pool in ("orchestrator", "llm", "optimizer")
    ]
    async with workers[0], workers[1], workers[2]:
        handle = await temporal_client.start_workflow(
            OptimizationGenerationWorkflow.run,
            OptimizationInput(population=2, meta_mutations=0, rollouts=2),
            id=f"optimize-counts-{uuid.uuid4()}",
            task_queue=task_queue_for("orchestrator", prefix),
            execution_timeout=timedelta(seconds=60),
        )
        await handle.result()
        progress = await handle.query("progress", result_type=OptimizationProgress)
    assert progress is not None
    # Five runs started: baseline (reused), prod and survivor on the task set (the survivor
    # reused), two offspring. Only prod's and the offspring's cycles were ever run.
    assert len(progress.experiment_ids) == 5 and progress.reused_runs == 2
    assert progress.planned_evaluations == 3 * len(TASKS) * 2  # tasks x 2 rollouts
    (record,) = recorded
    assert record.experiment_ids == progress.experiment_ids
