"""Regression runs on the store side: plan one, judge each task, aggregate the fitness.

The workflow runs the research cycles; this service decides what they mean. A designer
task passes when its cycle succeeds and the walk-forward out-of-sample metrics meet every
criterion (a noise task: when the lab judged a strategy and found nothing), and gets a
graded score (``benchmarks.task_score``: the deflated Sharpe probability times the share
of criteria met; on noise one minus it), which is what selection climbs. The score's
deflated Sharpe judges the fit against its own trials (``own_trials_gate``), so a prompt
measured later is not penalised for the optimizer's earlier looks. An assessor
task passes when the assessor's verdict agrees with the task (accept a result that meets
the criteria, refine or reject one that does not or one found on noise), so an assessor
prompt is measured by how well it judges; its score is 1 when it agrees, else 0. Tokens,
cost and latency come from the task's recorded LLM calls; latency is the LLM latency
(simulated for the offline provider), not wall time. A finished run is also handed to an
optional publisher (Langfuse experiment runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from stratlab.backtest.statistical_gate import statistical_gate
from stratlab.evolution.benchmarks import evaluate, task_score
from stratlab.evolution.intervals import score_interval
from stratlab.evolution.suite import default_tasks, load_suite, task_set_hash
from stratlab.evolution.verdicts import rollout_scores
from stratlab.models.optimization import (
    FITNESS_VERSION,
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
from stratlab.models.research import (
    GateCheck,
    GateResult,
    StatisticalGateThresholds,
    TrainingReport,
    TrialLedger,
    TrialStats,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.experiments import ExperimentRepo
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
        named = inp.task_ids
        tasks = await self._benchmarks.get_many(named) if named else default_tasks(suite)
        ids = [t.task_id for t in tasks]
        digest = task_set_hash(ids)
        if inp.reuse:
            found = await self._experiments.find_completed(inp.prompt_id, digest, inp.rollouts)
            # A run measured under an older fitness (no score) is not comparable: re-measure.
            if (
                found is not None
                and found.experiment_id != inp.experiment_id
                and found.fitness is not None
                and found.fitness.version >= FITNESS_VERSION
            ):
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
        report = (
            await self._experiments.training_report(inp.training_run_id)
            if inp.training_run_id
            else None
        )
        verdict = judge(task, inp, evidence=own_trials_gate(report))
        calls = await self._actions.by_session(inp.session_id) if inp.session_id else []
        return await self._experiments.record_result(
            TaskResult(
                experiment_id=inp.experiment_id,
                task_id=inp.task_id,
                rollout=inp.rollout,
                prompt_id=inp.prompt_id,
                session_id=inp.session_id,
                passed=verdict.passed,
                score=verdict.score,
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
        status = (
            "raced_out"
            if inp.raced_out
            else "stopped_budget"
            if inp.stopped_reason
            else "completed"
        )
        record = await self._experiments.finish(
            inp.experiment_id,
            status=status,
            fitness=aggregate(results),
            stopped_reason=inp.raced_out or inp.stopped_reason,
        )
        await self._publish(record, results)
        return RegressionRunResult(
            experiment_id=record.experiment_id,
            prompt_id=record.prompt_id,
            status=record.status,
            fitness=record.fitness,
            stopped_reason=record.stopped_reason if status == "stopped_budget" else None,
            raced_out=inp.raced_out if status == "raced_out" else None,
            saved=inp.saved if status == "raced_out" else 0,
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


def judge(
    task: BenchmarkTask, inp: RecordTaskInput, *, evidence: GateResult | None = None
) -> TaskVerdict:
    """Whether one cycle passed its task, its graded score, and the reasons it failed.

    The verdict and reasons come from the cycle's own gates. The score reads its deflated
    Sharpe from ``evidence`` (``own_trials_gate``) when given, else from the cycle's
    statistical gate."""
    verdict = evaluate(task, inp.cycle_outcome, inp.metrics)
    if not verdict.passed:  # which gate check stopped it: what a mutator can act on
        verdict.reasons += _gate_reasons([*inp.gates, inp.statistical_gate])
    if inp.error and not verdict.passed:
        verdict.reasons.append(f"error: {inp.error[:300]}")
    if inp.role == "designer":
        gate = evidence if evidence is not None and inp.statistical_gate else inp.statistical_gate
        score = task_score(task, inp.cycle_outcome, inp.metrics, gate)
        return verdict.model_copy(update={"score": score})
    if inp.verdict is None:
        return TaskVerdict(passed=False, reasons=[f"not assessed ({inp.cycle_outcome})"])
    # On noise the right verdict is never accept, whatever the cycle's outcome.
    should_accept = verdict.passed and task.expect == "discovery"
    if (inp.verdict == "accept") == should_accept:
        return TaskVerdict(passed=True, score=1.0)
    expected = "accept" if should_accept else "refine or reject"
    return TaskVerdict(
        passed=False,
        reasons=[f"assessor said {inp.verdict}, the criteria say {expected}", *verdict.reasons],
    )


def own_trials_gate(
    report: TrainingReport | None, thresholds: StatisticalGateThresholds | None = None
) -> GateResult | None:
    """The statistical gate of a fit judged as the first look at its research universe:
    against its own trials only (one fit; with N counting grid trials, its own grid, or
    one trial for a fit without a grid). None without a walk-forward result.

    Why the score uses it rather than the cycle's gate: the cycle's gate deflates by the
    universe's whole ledger, and every regression run adds to the ledgers of the task
    windows. Measured on one campaign (N counting grid trials), the same design's deflated
    Sharpe fell from 0.56 to 0.50 to 0.34 as the optimizer's own evaluations raised N from
    73 to 316, so whoever was measured first (prod) won every comparison, and concurrent
    cycles made the value depend on timing. Judged as a first look, the same design scores
    the same whenever it is measured. The verdict (pass or not) keeps the ledger's N: a
    discovery must beat every look.
    """
    if report is None or report.walk_forward is None:
        return None
    stats = report.trials or TrialStats(n_trials=1, n_effective=1.0)
    first_look = TrialLedger(
        universe="",
        symbol="",
        fits=1,
        n=stats.n_trials,
        n_effective=stats.n_effective,
        sharpe_mean=stats.sharpe_mean,
        sharpe_var=stats.sharpe_var,
    )
    return statistical_gate(report, first_look, thresholds or StatisticalGateThresholds())


def _gate_reasons(gates: list[GateResult | None]) -> list[str]:
    """A reason per failed gate check, and one when the deflated Sharpe could not run."""
    reasons = []
    for gate in gates:
        if gate is None:
            continue
        reasons += [_failed_check(gate.gate, c) for c in gate.failures()]
        reasons += [
            f"{gate.gate} gate: {c.name} not run ({c.detail or 'could not be checked'})"
            for c in gate.not_run()
            if c.name == "deflated_sharpe"
        ]
    return reasons


def _failed_check(gate: str, check: GateCheck) -> str:
    """``training gate: accuracy 0.4496 < 0.45 (needs >= 0.45)``. The deflated Sharpe's
    value is left out: it depends on how many looks the ledger held when the cycle ran
    (other cycles running at the same time), and a failure summary that changed with that
    would make a seeded campaign breed different children. The score carries the value."""
    direction = "<" if check.op == ">=" else ">"
    needs = f"(needs {check.op} {check.threshold:g})"
    if gate == "statistical" and check.name == "deflated_sharpe":
        return f"{gate} gate: {check.name} too {'low' if direction == '<' else 'high'} {needs}"
    return (
        f"{gate} gate: {check.name} {_distinct(check.value, check.threshold)} "
        f"{direction} {check.threshold:g} {needs}"
    )


def _distinct(value: float, threshold: float) -> str:
    """``value`` with enough digits not to read as its threshold (0.4496, not 0.45)."""
    for digits in range(3, 10):
        shown = f"{value:.{digits}g}"
        if shown != f"{threshold:.{digits}g}":
            return shown
    return repr(value)


def aggregate(results: list[TaskResult]) -> Fitness:
    """Fitness over the tasks that ran (a task skipped for budget measured nothing):
    the mean task score with its interval over rollouts, the share passed, mean tokens
    and latency, total cost."""
    measured = [r for r in results if r.outcome != "skipped_budget"]
    n = len(measured)
    if n == 0:
        return Fitness()
    interval = score_interval(rollout_scores(measured))
    return Fitness(
        score=sum(r.score for r in measured) / n,
        success_rate=sum(r.passed for r in measured) / n,
        mean_tokens=sum(r.tokens for r in measured) / n,
        mean_latency_ms=sum(r.latency_ms for r in measured) / n,
        tasks=n,
        passed=sum(r.passed for r in measured),
        cost_usd=round(sum(r.cost_usd for r in measured), 6),
        version=FITNESS_VERSION,
        score_low=interval[0] if interval else None,
        score_high=interval[1] if interval else None,
    )
