"""RegressionRunWorkflow: measure one prompt on benchmark tasks (seed 003's regression run).

Each task × rollout is a ``ResearchCycleWorkflow`` child (design → train → backtest on the
task's market period, one iteration, isolated from the lab's memory, charged to the
optimizer budget), so a regression run exercises exactly the code a research cycle does.
At most ``max_parallel`` cycles run at once; when one is skipped for budget no further
cycle is started and the run records why. The workflow only orchestrates: the store
activities judge each task and aggregate the fitness.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.names import BEGIN_EXPERIMENT, FINISH_EXPERIMENT, RECORD_TASK_RESULT
    from stratlab.models.optimization import (
        BenchmarkTask,
        ExperimentPlan,
        FinishExperimentInput,
        RecordTaskInput,
        RegressionRunInput,
        RegressionRunResult,
        TaskResult,
    )
    from stratlab.models.research import (
        DataWindow,
        ResearchCycleInput,
    )
    from workflows import constants as c
    from workflows.research import ResearchCycleWorkflow


@workflow.defn(name="RegressionRunWorkflow")
class RegressionRunWorkflow:
    def __init__(self) -> None:
        self._done = 0
        self._planned = 0
        self._running = 0
        self._stopped: str | None = None

    @workflow.query(name="progress")
    def progress(self) -> dict[str, int | str | None]:
        return {"done": self._done, "planned": self._planned, "stopped": self._stopped}

    @workflow.run
    async def run(self, inp: RegressionRunInput) -> RegressionRunResult:
        experiment_id = inp.experiment_id or str(workflow.uuid4())
        inp = inp.model_copy(update={"experiment_id": experiment_id})
        workflow.upsert_search_attributes(
            [c.SA_ROLE.value_set(inp.role), c.SA_PROMPT_ID.value_set(inp.prompt_id)]
            + ([c.SA_GENERATION.value_set(inp.generation)] if inp.generation is not None else [])
        )
        plan = await workflow.execute_activity(
            BEGIN_EXPERIMENT,
            inp,
            result_type=ExperimentPlan,
            task_queue=self._queue(c.ORCHESTRATOR),
            start_to_close_timeout=c.STORE_TIMEOUT,
            retry_policy=c.STORE_RETRY,
        )
        if plan.reused:
            fitness = plan.experiment.fitness
            return RegressionRunResult(
                experiment_id=plan.experiment.experiment_id,
                prompt_id=inp.prompt_id,
                status=plan.experiment.status,
                fitness=fitness,
                reused=True,
            )
        jobs = [(task, rollout) for task in plan.tasks for rollout in range(1, inp.rollouts + 1)]
        self._planned = len(jobs)
        pending = []
        for task, rollout in jobs:
            await workflow.wait_condition(lambda: self._running < inp.max_parallel)
            if self._stopped:
                break
            self._running += 1
            pending.append(asyncio.create_task(self._evaluate(inp, task, rollout)))
        for job in pending:
            await job
        finished = await workflow.execute_activity(
            FINISH_EXPERIMENT,
            FinishExperimentInput(experiment_id=experiment_id, stopped_reason=self._stopped),
            result_type=RegressionRunResult,
            task_queue=self._queue(c.ORCHESTRATOR),
            start_to_close_timeout=c.STORE_TIMEOUT,
            retry_policy=c.STORE_RETRY,
        )
        return finished

    async def _evaluate(self, inp: RegressionRunInput, task: BenchmarkTask, rollout: int) -> None:
        try:
            record = await self._run_cycle(inp, task, rollout)
            result = await workflow.execute_activity(
                RECORD_TASK_RESULT,
                record,
                result_type=TaskResult,
                task_queue=self._queue(c.ORCHESTRATOR),
                start_to_close_timeout=c.STORE_TIMEOUT,
                retry_policy=c.STORE_RETRY,
            )
            if result.outcome == "skipped_budget" and self._stopped is None:
                self._stopped = "the optimizer's daily budget ran out"
        finally:
            self._running -= 1
            self._done += 1

    async def _run_cycle(
        self, inp: RegressionRunInput, task: BenchmarkTask, rollout: int
    ) -> RecordTaskInput:
        session_id = str(workflow.uuid4())
        record = RecordTaskInput(
            experiment_id=inp.experiment_id,
            task_id=task.task_id,
            rollout=rollout,
            prompt_id=inp.prompt_id,
            role=inp.role,
            session_id=session_id,
        )
        cycle = ResearchCycleInput(
            symbol=task.symbol,
            kind=task.kind,
            max_iterations=1,
            session_id=session_id,
            trigger="regression",
            period=DataWindow(start=task.start, end=task.end),
            designer_prompt_id=inp.prompt_id if inp.role == "designer" else "",
            assessor_prompt_id=inp.prompt_id if inp.role == "assessor" else "",
            assess=inp.role == "assessor",
            isolated=True,
            budget_scope="optimizer",
        )
        try:
            result = await workflow.execute_child_workflow(
                ResearchCycleWorkflow.run,
                cycle,
                id=c.RESEARCH_WORKFLOW_ID.format(session_id=session_id),
                task_queue=workflow.info().task_queue,
            )
        except ChildWorkflowError as err:  # the cycle itself broke: the task failed
            return record.model_copy(update={"error": str(err.cause or err)[:500]})
        last = result.iterations[-1] if result.iterations else None
        return record.model_copy(
            update={
                "cycle_outcome": result.outcome,
                "metrics": last.metrics if last else None,
                "verdict": last.assessment.verdict if last and last.assessment else None,
                "error": last.error if last else None,
                "gates": [g for g in (last.training_gate, last.backtest_gate) if g] if last else [],
            }
        )

    def _queue(self, pool: str) -> str:
        return c.sibling_queue(workflow.info().task_queue, pool)
