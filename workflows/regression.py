"""RegressionRunWorkflow: measure one prompt on benchmark tasks (seed 003's regression run).

Each task × rollout is a ``ResearchCycleWorkflow`` child (design → train → backtest on the
task's market period, one iteration, isolated from the lab's memory, charged to the
optimizer budget), so a regression run exercises exactly the code a research cycle does.
At most ``max_parallel`` cycles run at once; when one is skipped for budget no further
cycle is started and the run records why. With ``race`` (an offspring racing prod), once
the results so far show the prompt dominated with confidence
(``stratlab.evolution.racing``) no further cycle is started either: the run ends
``raced_out`` and counts the cycles it saved. The workflow only orchestrates: the store
activities judge each task and aggregate the fitness. What it hands them per task is the
judged iteration's walk-forward out-of-sample metrics, its gates and its statistical gate
(whose deflated Sharpe the graded score is made of), never the holdout.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from workflows.boundary import mark_ended, validated_input
from workflows.calls import execute
from workflows.labels import research_labels

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.evolution.racing import raced_out
    from stratlab.models.optimization import (
        BenchmarkTask,
        FinishExperimentInput,
        RecordTaskInput,
        RegressionProgress,
        RegressionRunInput,
        RegressionRunResult,
        TaskResult,
    )
    from stratlab.models.optimizer_slice import OPTIMIZER_TRIGGER
    from stratlab.models.research import (
        DataWindow,
        IterationSummary,
        ResearchCycleInput,
        ResearchCycleResult,
    )
    from workflows import constants as c
    from workflows.research import ResearchCycleWorkflow


@workflow.defn(name="RegressionRunWorkflow")
class RegressionRunWorkflow:
    def __init__(self) -> None:
        self._done = 0
        self._planned = 0
        self._running = 0
        self._started = 0
        self._stopped: str | None = None
        self._raced: str | None = None
        self._results: list[TaskResult] = []

    @workflow.query(name="progress")
    def progress(self) -> RegressionProgress:
        return RegressionProgress(done=self._done, planned=self._planned, stopped=self._stopped)

    @workflow.run
    @validated_input
    async def run(self, inp: RegressionRunInput) -> RegressionRunResult:
        experiment_id = inp.experiment_id or str(workflow.uuid4())
        inp = inp.model_copy(update={"experiment_id": experiment_id})
        workflow.upsert_search_attributes(
            [c.SA_ROLE.value_set(inp.role), c.SA_PROMPT_ID.value_set(inp.prompt_id)]
            + ([c.SA_GENERATION.value_set(inp.generation)] if inp.generation is not None else [])
        )
        plan = await execute(
            act.BEGIN_EXPERIMENT,
            inp,
            summary=f"plan: {inp.role} prompt {inp.prompt_id} on "
            + (f"{len(inp.task_ids)} tasks" if inp.task_ids else "the optimizer's own tasks"),
        )
        if plan.reused:
            fitness = plan.experiment.fitness
            mark_ended(plan.experiment.status, "done")
            return RegressionRunResult(
                experiment_id=plan.experiment.experiment_id,
                prompt_id=inp.prompt_id,
                status=plan.experiment.status,
                fitness=fitness,
                reused=True,
            )
        jobs = [(task, rollout) for task in plan.tasks for rollout in range(1, inp.rollouts + 1)]
        self._planned = len(jobs)
        self._show_progress()
        pending = []
        for task, rollout in jobs:
            await workflow.wait_condition(lambda: self._running < inp.max_parallel)
            if self._stopped:
                break
            self._running += 1
            self._started += 1
            pending.append(asyncio.create_task(self._evaluate(inp, task, rollout)))
        for job in pending:
            await job
        finished = await execute(
            act.FINISH_EXPERIMENT,
            FinishExperimentInput(
                experiment_id=experiment_id,
                stopped_reason=None if self._raced else self._stopped,
                raced_out=self._raced,
                saved=self._planned - self._started if self._raced else 0,
            ),
            summary=f"aggregate the fitness of {self._done} cycles",
        )
        mark_ended(finished.status, "done")
        return finished

    async def _evaluate(self, inp: RegressionRunInput, task: BenchmarkTask, rollout: int) -> None:
        try:
            record = await self._run_cycle(inp, task, rollout)
            result = await execute(
                act.RECORD_TASK_RESULT,
                record,
                summary=f"judge task {task.task_id} (rollout {rollout})",
            )
            if result.outcome == "skipped_budget" and self._stopped is None:
                self._stopped = "the optimizer's daily budget ran out"
            self._results.append(result)
            # Racing only decides while some cycle is still to start: that is what it saves.
            if inp.race is not None and self._stopped is None and self._started < self._planned:
                self._raced = raced_out(self._results, inp.race, planned=self._planned)
                self._stopped = self._raced
        finally:
            self._running -= 1
            self._done += 1
            self._show_progress()

    def _show_progress(self) -> None:
        """The UI's current details: cycles done of planned, and why it stopped early."""
        stopped = f" · stopped: {self._stopped}" if self._stopped else ""
        workflow.set_current_details(f"**{self._done}/{self._planned}** cycles done{stopped}")

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
            trigger=OPTIMIZER_TRIGGER,  # the only trigger the optimizer's own data allows
            period=DataWindow(start=task.start, end=task.end),
            designer_prompt_id=inp.prompt_id if inp.role == "designer" else "",
            assessor_prompt_id=inp.prompt_id if inp.role == "assessor" else "",
            assess=inp.role == "assessor",
            isolated=True,
            budget_scope="optimizer",
            # Tasks that share a window differ in what they ask: the designer is told.
            objective=task.describe_objective(),
        )
        try:
            result = await workflow.execute_child_workflow(
                ResearchCycleWorkflow.run,
                cycle,
                id=c.RESEARCH_WORKFLOW_ID.format(session_id=session_id),
                task_queue=workflow.info().task_queue,
                static_summary=f"benchmark {task.task_id} #{rollout}: {inp.role} prompt "
                f"{inp.prompt_id} on {task.symbol}",
                static_details=f"- regression run {inp.experiment_id}\n"
                + research_labels(cycle)["static_details"],
            )
        except ChildWorkflowError as err:  # the cycle itself broke: the task failed
            return record.model_copy(update={"error": str(err.cause or err)[:500]})
        # Only what goes into the activity's input changes here, not which commands
        # the workflow issues, so kept histories replay unpatched.
        judged = _judged_iteration(result)
        if judged is None:
            return record.model_copy(update={"cycle_outcome": result.outcome})
        return record.model_copy(
            update={
                "cycle_outcome": result.outcome,
                "metrics": judged.metrics,
                "verdict": judged.assessment.verdict if judged.assessment else None,
                "error": judged.error,
                "gates": [g for g in (judged.training_gate, judged.backtest_gate) if g],
                "statistical_gate": judged.statistical_gate,
                "training_run_id": judged.training_run_id,
            }
        )


def _judged_iteration(result: ResearchCycleResult) -> IterationSummary | None:
    """The cycle's best iteration: the one it chose when it succeeded, else the one whose
    walk-forward result came closest to a discovery (highest deflated Sharpe
    probability), else the last. Regression cycles run one iteration, so today this is
    that iteration; the rule keeps the score meaningful if they ever run more."""
    if not result.iterations:
        return None
    chosen = [s for s in result.iterations if s.strategy_id == result.best_strategy_id]
    if result.outcome == "success" and chosen:
        return chosen[0]
    backtested = [s for s in result.iterations if s.statistical_gate is not None]
    if backtested:
        return max(backtested, key=_deflated_sharpe)
    return result.iterations[-1]


def _deflated_sharpe(summary: IterationSummary) -> float:
    """The iteration's deflated Sharpe probability (-1 when the check did not run)."""
    gate = summary.statistical_gate
    check = next((c for c in gate.checks if c.name == "deflated_sharpe"), None) if gate else None
    return check.value if check is not None and check.status != "not_run" else -1.0
