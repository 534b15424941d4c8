"""ResearchCycleWorkflow: budget → design → train → gate → backtest → gate → assess → refine.

Deterministic orchestration only: every side effect is an activity on its pool, every id
that must survive a retry is made here with ``workflow.uuid4()``, and the phase and
outcome are published as search attributes and through the ``status`` query.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.names import (
        ANALYSE_STRATEGY,
        ASSESS_STRATEGY,
        DESIGN_STRATEGY,
        FINISH_SESSION,
        RUN_BACKTEST,
        START_SESSION,
        TRAIN_STRATEGY,
    )
    from stratlab.models.research import (
        AnalyseInput,
        AnalyseResult,
        AssessInput,
        AssessResult,
        BacktestInput,
        BacktestResult,
        CycleStatus,
        DataWindow,
        DesignInput,
        DesignResult,
        FinishSessionInput,
        IterationSummary,
        Outcome,
        Phase,
        ResearchCycleInput,
        ResearchCycleResult,
        SessionStarted,
        StartSessionInput,
        TrainInput,
        TrainResult,
    )
    from workflows import constants as c
    from workflows.decisions import (
        REFINABLE_FOR_CODE,
        choose_outcome,
        failure_feedback,
        feedback_from,
        progress_details,
    )


def _error_text(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError | ApplicationError) and cause.cause is not None:
        if isinstance(cause, ApplicationError):
            break
        cause = cause.cause
    return str(cause or err)[:500]


def _error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn(name="ResearchCycleWorkflow")
class ResearchCycleWorkflow:
    def __init__(self) -> None:
        self._status: CycleStatus | None = None
        self._period: DataWindow | None = None

    @workflow.query(name="status")
    def status(self) -> CycleStatus | None:
        return self._status

    @workflow.run
    async def run(self, cycle: ResearchCycleInput) -> ResearchCycleResult:
        session_id = cycle.session_id or str(workflow.uuid4())
        self._period = cycle.period
        self._status = CycleStatus(
            session_id=session_id,
            phase="starting",
            iteration=0,
            symbol=cycle.symbol,
            started_at=workflow.now(),
        )
        workflow.upsert_search_attributes([c.SA_SYMBOL.value_set(cycle.symbol)])
        self._set_phase("budget")
        started = await self._start_session(cycle, session_id)
        result = ResearchCycleResult(session_id=session_id, outcome="skipped_budget")
        if started.budget_ok:
            await self._iterate(cycle, started, result)
        return await self._finish(result, keep_skill=not cycle.isolated)

    # --- steps ---------------------------------------------------------------------

    async def _iterate(
        self, cycle: ResearchCycleInput, started: SessionStarted, result: ResearchCycleResult
    ) -> None:
        feedback, previous_id = "", None
        best_sharpe: float | None = None
        for iteration in range(1, cycle.max_iterations + 1):
            summary = await self._one_iteration(cycle, started, iteration, feedback, previous_id)
            result.iterations.append(summary)
            if summary.outcome == "skipped_budget" and iteration > 1:
                result.iterations.pop()  # the budget ran out between rounds: keep the best
                break
            sharpe = summary.metrics.sharpe if summary.metrics else None
            if summary.outcome == "success" and summary.assessment and sharpe is not None:
                improved = (
                    best_sharpe is None or sharpe - best_sharpe >= cycle.convergence_threshold
                )
                best_sharpe = sharpe if best_sharpe is None else max(best_sharpe, sharpe)
                if not improved:
                    result.converged = True
                    break
                if summary.assessment.verdict != "refine":
                    break
                feedback = feedback_from(summary)
            elif cycle.kind == "code" and summary.outcome in REFINABLE_FOR_CODE:
                # Code is refined from its errors too: the error is the feedback.
                feedback = failure_feedback(summary)
            else:
                break
            if iteration < cycle.max_iterations:
                feedback += await self._analyst_feedback(summary)
            previous_id = summary.strategy_id or previous_id
        choose_outcome(result)

    async def _analyst_feedback(self, summary: IterationSummary) -> str:
        """Data-driven suggestions for the next design (added after the first histories were
        kept, hence the patch: older runs replay without this activity)."""
        if summary.strategy_id is None or not workflow.patched("analyst-feedback"):
            return ""
        assert self._status is not None
        self._set_phase("analyse")
        analysed = await workflow.execute_activity(
            ANALYSE_STRATEGY,
            AnalyseInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                period=self._period,
            ),
            result_type=AnalyseResult,
            task_queue=self._queue(c.COMPUTE),
            start_to_close_timeout=c.BACKTEST_TIMEOUT,
            retry_policy=c.COMPUTE_RETRY,
        )
        return f"\n{analysed.text}" if analysed.text else ""

    async def _one_iteration(
        self,
        cycle: ResearchCycleInput,
        started: SessionStarted,
        iteration: int,
        feedback: str,
        previous_id: str | None,
    ) -> IterationSummary:
        assert self._status is not None
        self._status.iteration = iteration
        self._set_phase("design")
        try:
            design = await self._design(cycle, started, iteration, feedback, previous_id)
        except ActivityError as err:
            outcome: Outcome = (
                "skipped_budget" if _error_type(err) == "BudgetExhaustedError" else "failed_design"
            )
            return self._failed(iteration, outcome, err)
        summary = IterationSummary(
            iteration=iteration,
            strategy_id=design.strategy_id,
            strategy_name=design.spec.name,
            kind=design.spec.kind,
            outcome="success",
        )
        self._set_phase("train")
        training_run_id = str(workflow.uuid4())
        try:
            trained = await self._train(cycle, summary, training_run_id)
        except ActivityError as err:
            return self._fail(summary, "failed_training", err)
        summary.training_gate = trained.gate
        if not trained.gate.passed:
            return self._fail(summary, "failed_training_gate")
        self._set_phase("backtest")
        try:
            tested = await self._backtest(cycle, summary, training_run_id)
        except ActivityError as err:
            return self._fail(summary, "failed_backtest", err)
        summary.metrics, summary.backtest_gate = tested.metrics, tested.gate
        self._status.last_sharpe = tested.metrics.sharpe
        if not tested.gate.passed:
            return self._fail(summary, "failed_backtest_gate")
        if not cycle.assess:
            return summary
        self._set_phase("assess")
        try:
            assessed = await self._assess(cycle, started, summary, tested.backtest_id)
        except ActivityError as err:
            return self._fail(summary, "failed_assessment", err)
        summary.assessment = assessed.assessment
        return summary

    async def _train(
        self, cycle: ResearchCycleInput, summary: IterationSummary, training_run_id: str
    ) -> TrainResult:
        assert self._status is not None and summary.strategy_id is not None
        return await workflow.execute_activity(
            TRAIN_STRATEGY,
            TrainInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                training_run_id=training_run_id,
                gate=cycle.training_gate,
                period=cycle.period,
            ),
            result_type=TrainResult,
            task_queue=self._queue(c.COMPUTE),
            start_to_close_timeout=c.TRAIN_TIMEOUT,
            heartbeat_timeout=c.TRAIN_HEARTBEAT,
            retry_policy=c.COMPUTE_RETRY,
        )

    async def _backtest(
        self, cycle: ResearchCycleInput, summary: IterationSummary, training_run_id: str
    ) -> BacktestResult:
        assert self._status is not None and summary.strategy_id is not None
        return await workflow.execute_activity(
            RUN_BACKTEST,
            BacktestInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                training_run_id=training_run_id,
                backtest_id=str(workflow.uuid4()),
                gate=cycle.backtest_gate,
                period=cycle.period,
            ),
            result_type=BacktestResult,
            task_queue=self._queue(c.COMPUTE),
            start_to_close_timeout=c.BACKTEST_TIMEOUT,
            heartbeat_timeout=c.BACKTEST_HEARTBEAT,
            retry_policy=c.COMPUTE_RETRY,
        )

    async def _assess(
        self,
        cycle: ResearchCycleInput,
        started: SessionStarted,
        summary: IterationSummary,
        backtest_id: str,
    ) -> AssessResult:
        assert summary.strategy_id is not None
        return await workflow.execute_activity(
            ASSESS_STRATEGY,
            AssessInput(
                session_id=started.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                backtest_id=backtest_id,
                prompt_id=started.assessor_prompt_id,
                assessment_id=str(workflow.uuid4()),
                max_iterations=cycle.max_iterations,
                budget_scope=cycle.budget_scope,
            ),
            result_type=AssessResult,
            task_queue=self._queue(c.LLM),
            start_to_close_timeout=c.LLM_TIMEOUT,
            retry_policy=c.LLM_RETRY,
        )

    async def _design(
        self,
        cycle: ResearchCycleInput,
        started: SessionStarted,
        iteration: int,
        feedback: str,
        previous_id: str | None,
    ) -> DesignResult:
        return await workflow.execute_activity(
            DESIGN_STRATEGY,
            DesignInput(
                session_id=started.session_id,
                iteration=iteration,
                symbol=cycle.symbol,
                kind=cycle.kind,
                prompt_id=started.designer_prompt_id,
                strategy_id=str(workflow.uuid4()),
                feedback=feedback,
                previous_strategy_id=previous_id,
                max_iterations=cycle.max_iterations,
                period=cycle.period,
                isolated=cycle.isolated,
                budget_scope=cycle.budget_scope,
            ),
            result_type=DesignResult,
            task_queue=self._queue(c.LLM),
            start_to_close_timeout=c.LLM_TIMEOUT,
            retry_policy=c.LLM_RETRY,
        )

    async def _start_session(self, cycle: ResearchCycleInput, session_id: str) -> SessionStarted:
        info = workflow.info()
        return await workflow.execute_activity(
            START_SESSION,
            StartSessionInput(
                session_id=session_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                symbol=cycle.symbol,
                kind=cycle.kind,
                trigger=cycle.trigger,
                started_at=workflow.now(),
                cycle_input=cycle,
            ),
            result_type=SessionStarted,
            task_queue=self._queue(c.ORCHESTRATOR),
            start_to_close_timeout=c.STORE_TIMEOUT,
            retry_policy=c.STORE_RETRY,
        )

    async def _finish(
        self, result: ResearchCycleResult, *, keep_skill: bool
    ) -> ResearchCycleResult:
        assert self._status is not None
        self._set_phase("recording")
        # The store fills in tokens and cost from the agent_actions rows it holds.
        finished = await workflow.execute_activity(
            FINISH_SESSION,
            FinishSessionInput(
                session_id=result.session_id,
                outcome=result.outcome,
                best_strategy_id=result.best_strategy_id,
                finished_at=workflow.now(),
                result=result,
                keep_skill=keep_skill,
            ),
            result_type=ResearchCycleResult,
            task_queue=self._queue(c.ORCHESTRATOR),
            start_to_close_timeout=c.STORE_TIMEOUT,
            retry_policy=c.STORE_RETRY,
        )
        self._status.outcome = finished.outcome
        workflow.upsert_search_attributes([c.SA_OUTCOME.value_set(finished.outcome)])
        self._set_phase("done")
        return finished

    # --- helpers -------------------------------------------------------------------

    def _queue(self, pool: str) -> str:
        return c.sibling_queue(workflow.info().task_queue, pool)

    def _set_phase(self, phase: Phase) -> None:
        assert self._status is not None
        self._status.phase = phase
        workflow.upsert_search_attributes([c.SA_PHASE.value_set(phase)])
        workflow.set_current_details(progress_details(self._status))

    def _failed(self, iteration: int, outcome: Outcome, err: ActivityError) -> IterationSummary:
        assert self._status is not None
        self._status.last_error = _error_text(err)
        workflow.logger.warning("iteration %d ended %s: %s", iteration, outcome, err.cause)
        return IterationSummary(iteration=iteration, outcome=outcome, error=_error_text(err))

    def _fail(
        self, summary: IterationSummary, outcome: Outcome, err: ActivityError | None = None
    ) -> IterationSummary:
        summary.outcome = outcome
        if err is not None:
            assert self._status is not None
            summary.error = self._status.last_error = _error_text(err)
        return summary
