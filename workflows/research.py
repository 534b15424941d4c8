"""ResearchCycleWorkflow: budget → design → train → gate → backtest → gates → assess → refine
→ holdout.

Training evaluates a design walk-forward on the development period; the backtest step
judges that record with the seed's gate and the statistical gate (against the trial
ledger); the holdout is evaluated once, for the strategy the cycle chose, and only
reported. Those steps live in ``workflows.steps.CycleSteps``, which
``EvaluateStrategyWorkflow`` shares for a user's own strategy.

Deterministic orchestration only: every side effect is an activity on its pool, every id
that must survive a retry is made here with ``workflow.uuid4()``, and the phase and
outcome are published as search attributes and through the ``status`` query.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.boundary import validated_input
from workflows.calls import execute
from workflows.steps import CycleSteps, error_text, error_type

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.research import (
        AnalyseInput,
        AssessInput,
        AssessResult,
        CycleStatus,
        DesignInput,
        DesignResult,
        IterationSummary,
        Outcome,
        ResearchCycleInput,
        ResearchCycleResult,
        SessionStarted,
    )
    from workflows import constants as c
    from workflows.decisions import (
        REFINABLE_AFTER_GATES,
        REFINABLE_FOR_CODE,
        choose_outcome,
        failure_feedback,
        feedback_from,
    )


@workflow.defn(name="ResearchCycleWorkflow")
class ResearchCycleWorkflow(CycleSteps):
    @workflow.run
    @validated_input
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
            # Added after the first histories were kept, hence the patch.
            if result.best_strategy_id and workflow.patched("holdout-once"):
                result.holdout = await self._holdout(cycle, result)
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
            elif summary.outcome in REFINABLE_AFTER_GATES and workflow.patched(
                "refine-failed-gates"
            ):
                # Any kind tries again after a failed gate, told which checks failed; every
                # round is a fit in the trial ledger, so the next verdict is judged
                # against one more look (added after the first histories, hence the patch).
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
        analysed = await execute(
            act.ANALYSE_STRATEGY,
            AnalyseInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                period=self._period,
            ),
            summary=f"analyse {summary.strategy_name} (iteration {summary.iteration})",
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
                "skipped_budget" if error_type(err) == "BudgetExhaustedError" else "failed_design"
            )
            return self._failed(iteration, outcome, err)
        summary = IterationSummary(
            iteration=iteration,
            strategy_id=design.strategy_id,
            strategy_name=design.spec.name,
            kind=design.spec.kind,
            outcome="success",
            training_run_id=str(workflow.uuid4()),
        )
        tested = await self._train_and_test(cycle, summary)
        if tested is None or not cycle.assess:
            return summary
        self._set_phase("assess")
        try:
            assessed = await self._assess(cycle, started, summary, tested.backtest_id)
        except ActivityError as err:
            return self._fail(summary, "failed_assessment", err)
        summary.assessment = assessed.assessment
        return summary

    async def _assess(
        self,
        cycle: ResearchCycleInput,
        started: SessionStarted,
        summary: IterationSummary,
        backtest_id: str,
    ) -> AssessResult:
        assert summary.strategy_id is not None
        return await execute(
            act.ASSESS_STRATEGY,
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
            summary=f"assess {summary.strategy_name} (iteration {summary.iteration})",
        )

    async def _design(
        self,
        cycle: ResearchCycleInput,
        started: SessionStarted,
        iteration: int,
        feedback: str,
        previous_id: str | None,
    ) -> DesignResult:
        return await execute(
            act.DESIGN_STRATEGY,
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
                blind=cycle.blind,
                objective=cycle.objective,
            ),
            summary=f"design iteration {iteration}: {cycle.kind or 'rules or ml'} "
            f"on {cycle.symbol}" + (" (refining)" if feedback else ""),
        )

    def _failed(self, iteration: int, outcome: Outcome, err: ActivityError) -> IterationSummary:
        assert self._status is not None
        self._status.last_error = error_text(err)
        workflow.logger.warning("iteration %d ended %s: %s", iteration, outcome, err.cause)
        return IterationSummary(iteration=iteration, outcome=outcome, error=error_text(err))
