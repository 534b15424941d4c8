"""Regression runs on the store side: plan one, judge each task, aggregate the fitness.

The workflow runs the research cycles; this service decides what they mean. A designer
task passes when its cycle succeeds and the test-split metrics meet every criterion. An
assessor task passes when the assessor's verdict agrees with those criteria (accept a
result that meets them, refine or reject one that does not), so an assessor prompt is
measured by how well it judges. Tokens, cost and latency come from the task's recorded
LLM calls; latency is the LLM latency (simulated for the offline provider), not wall time.
A finished run is also handed to an optional publisher (Langfuse experiment runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from stratlab.models.optimization import (
    BenchmarkTask,
    ExperimentPlan,
    ExperimentRecord,
    FinishExperimentInput,
    Fitness,
    RecordTaskInput,
    RegressionRunInput,
    RegressionRunResult,
    TaskResult,
    TaskVerdict,
)
from stratlab.models.prompts import PromptRecord
from stratlab.optimization.benchmarks import evaluate, load_suite, task_set_hash
from stratlab.store.actions import ActionRepo
from stratlab.store.optimization import BenchmarkRepo, ExperimentRepo
from stratlab.store.prompts import PromptRepo

log = structlog.get_logger(__name__)


class ExperimentPublisher(Protocol):
    """Where a finished regression run is reported besides Postgres (Langfuse)."""

    async def publish(
        self,
        experiment: ExperimentRecord,
        tasks: Sequence[BenchmarkTask],
        results: Sequence[TaskResult],
        prompt: PromptRecord | None,
    ) -> None: ...


class ExperimentService:
    def __init__(
        self,
        benchmarks: BenchmarkRepo,
        experiments: ExperimentRepo,
        prompts: PromptRepo,
        actions: ActionRepo,
        publisher: ExperimentPublisher | None = None,
    ) -> None:
        self._benchmarks = benchmarks
        self._experiments = experiments
        self._prompts = prompts
        self._actions = actions
        self._publisher = publisher

    async def suite_tasks(self) -> list[BenchmarkTask]:
        """The packaged suite, loaded into ``benchmarks`` (idempotent) and returned."""
        suite = load_suite()
        await self._benchmarks.sync_suite(suite)
        return await self._benchmarks.list(suite_version=suite.version)

    async def begin(self, inp: RegressionRunInput, *, workflow_id: str) -> ExperimentPlan:
        prompt = await self._prompts.get(inp.prompt_id)
        if prompt is None or prompt.role != inp.role:
            raise LookupError(f"no {inp.role} prompt {inp.prompt_id!r} in the registry")
        suite = await self.suite_tasks()
        tasks = await self._benchmarks.get_many(inp.task_ids) if inp.task_ids else suite
        ids = [t.task_id for t in tasks]
        digest = task_set_hash(ids)
        if inp.reuse:
            found = await self._experiments.find_completed(inp.prompt_id, digest, inp.rollouts)
            if found is not None and found.experiment_id != inp.experiment_id:
                return ExperimentPlan(experiment=found, reused=True)
        record = await self._experiments.start(
            ExperimentRecord(
                experiment_id=inp.experiment_id,
                prompt_id=inp.prompt_id,
                role=inp.role,
                generation=inp.generation,
                task_ids=ids,
                task_set_hash=digest,
                rollouts=inp.rollouts,
                workflow_id=workflow_id,
                started_at=datetime.now(UTC),
            )
        )
        return ExperimentPlan(experiment=record, tasks=tasks)

    async def record(self, inp: RecordTaskInput) -> TaskResult:
        (task,) = await self._benchmarks.get_many([inp.task_id])
        verdict = judge(task, inp)
        calls = await self._actions.by_session(inp.session_id) if inp.session_id else []
        return await self._experiments.record_result(
            TaskResult(
                experiment_id=inp.experiment_id,
                task_id=inp.task_id,
                rollout=inp.rollout,
                prompt_id=inp.prompt_id,
                session_id=inp.session_id,
                passed=verdict.passed,
                outcome=inp.cycle_outcome,
                reasons=verdict.reasons,
                metrics=inp.metrics,
                tokens=sum(c.input_tokens + c.output_tokens for c in calls),
                latency_ms=sum(c.latency_ms for c in calls),
                cost_usd=sum(c.cost_usd for c in calls),
            )
        )

    async def finish(self, inp: FinishExperimentInput) -> RegressionRunResult:
        results = await self._experiments.results(inp.experiment_id)
        status = "stopped_budget" if inp.stopped_reason else "completed"
        record = await self._experiments.finish(
            inp.experiment_id,
            status=status,
            fitness=aggregate(results),
            stopped_reason=inp.stopped_reason,
        )
        await self._publish(record, results)
        return RegressionRunResult(
            experiment_id=record.experiment_id,
            prompt_id=record.prompt_id,
            status=record.status,
            fitness=record.fitness,
            stopped_reason=record.stopped_reason,
        )

    async def _publish(self, record: ExperimentRecord, results: list[TaskResult]) -> None:
        """Report the run elsewhere too; a failure there (an outage) never fails the run."""
        if self._publisher is None:
            return
        try:
            tasks = await self._benchmarks.get_many(list(dict.fromkeys(r.task_id for r in results)))
            prompt = await self._prompts.get(record.prompt_id)
            await self._publisher.publish(record, tasks, results, prompt)
        except Exception as err:
            log.warning(
                "experiment_publish_failed", experiment_id=record.experiment_id, error=str(err)
            )


def judge(task: BenchmarkTask, inp: RecordTaskInput) -> TaskVerdict:
    """Whether one cycle passed its task, with the reasons when it did not."""
    verdict = evaluate(task, inp.cycle_outcome, inp.metrics)
    if not verdict.passed:  # which gate check stopped it: what a mutator can act on
        verdict.reasons += [
            f"{g.gate} gate: {c.name} {_distinct(c.value, c.threshold)} "
            f"{'<' if c.op == '>=' else '>'} {c.threshold:g} (needs {c.op} {c.threshold:g})"
            for g in inp.gates
            for c in g.failures()
        ]
    if inp.error and not verdict.passed:
        verdict.reasons.append(f"error: {inp.error[:300]}")
    if inp.role == "designer":
        return verdict
    if inp.verdict is None:
        return TaskVerdict(passed=False, reasons=[f"not assessed ({inp.cycle_outcome})"])
    agrees = (inp.verdict == "accept") == verdict.passed
    if agrees:
        return TaskVerdict(passed=True)
    expected = "accept" if verdict.passed else "refine or reject"
    return TaskVerdict(
        passed=False,
        reasons=[f"assessor said {inp.verdict}, the criteria say {expected}", *verdict.reasons],
    )


def _distinct(value: float, threshold: float) -> str:
    """``value`` with enough digits not to read as its threshold (0.4496, not 0.45)."""
    for digits in range(3, 10):
        shown = f"{value:.{digits}g}"
        if shown != f"{threshold:.{digits}g}":
            return shown
    return repr(value)


def aggregate(results: list[TaskResult]) -> Fitness:
    """Fitness over the tasks that ran (a task skipped for budget measured nothing)."""
    measured = [r for r in results if r.outcome != "skipped_budget"]
    n = len(measured)
    if n == 0:
        return Fitness()
    return Fitness(
        success_rate=sum(r.passed for r in measured) / n,
        mean_tokens=sum(r.tokens for r in measured) / n,
        mean_latency_ms=sum(r.latency_ms for r in measured) / n,
        tasks=n,
        passed=sum(r.passed for r in measured),
        cost_usd=round(sum(r.cost_usd for r in measured), 6),
    )
