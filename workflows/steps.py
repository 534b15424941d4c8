"""The steps a strategy takes once it exists, shared by the research cycle and
``EvaluateStrategyWorkflow``: session, train (walk-forward, look-ahead probe, trials into
the ledger), training gate, backtest with the seed and statistical gates, the holdout
once, and the record. Deterministic orchestration only, safe in the workflow sandbox.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.calls import execute

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.research import (
        BacktestInput,
        BacktestResult,
        CycleStatus,
        DataWindow,
        FinishSessionInput,
        HoldoutInput,
        HoldoutResult,
        IterationSummary,
        Outcome,
        Phase,
        ResearchCycleInput,
        ResearchCycleResult,
        SessionStarted,
        StartSessionInput,
        TrainInput,
        TrainResult,
        TrialSource,
    )
    from workflows import constants as c
    from workflows.decisions import backtest_passed, progress_details


def error_text(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError | ApplicationError) and cause.cause is not None:
        if isinstance(cause, ApplicationError):
            break
        cause = cause.cause
    return str(cause or err)[:500]


def error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def trial_source(cycle: ResearchCycleInput) -> TrialSource:
    """What the trial ledger counts a cycle's fits as."""
    if cycle.budget_scope == "optimizer":
        return "optimizer"
    return "user" if cycle.trigger == "user" else "cycle"


class CycleSteps:
    """The steps a strategy takes once it exists: session, train, training gate, backtest,
    backtest and statistical gates, holdout, finish. The research cycle designs its
    strategies; ``EvaluateStrategyWorkflow`` takes a user's. Both run these same steps, so
    a user's strategy is judged exactly as the lab's own."""

    def __init__(self) -> None:
        self._status: CycleStatus | None = None
        self._period: DataWindow | None = None

    @workflow.query(name="status")
    def status(self) -> CycleStatus | None:
        return self._status

    async def _train_and_test(
        self, cycle: ResearchCycleInput, summary: IterationSummary
    ) -> BacktestResult | None:
        """Train, the training gate, backtest, the backtest and statistical gates. The
        verdict goes into ``summary``; returns the backtest when every gate passed."""
        assert self._status is not None and summary.training_run_id is not None
        self._set_phase("train")
        try:
            trained = await self._train(cycle, summary, summary.training_run_id)
        except ActivityError as err:
            self._fail(summary, "failed_training", err)
            return None
        summary.training_gate = trained.gate
        if not trained.gate.passed:
            self._fail(summary, "failed_training_gate")
            return None
        self._set_phase("backtest")
        try:
            tested = await self._backtest(cycle, summary, summary.training_run_id)
        except ActivityError as err:
            self._fail(summary, "failed_backtest", err)
            return None
        summary.metrics, summary.backtest_gate = tested.metrics, tested.gate
        summary.statistical_gate, summary.trials = tested.statistical_gate, tested.trials
        self._status.last_sharpe = tested.metrics.sharpe
        if not backtest_passed(tested):
            self._fail(summary, "failed_backtest_gate")
            return None
        return tested

    async def _train(
        self, cycle: ResearchCycleInput, summary: IterationSummary, training_run_id: str
    ) -> TrainResult:
        assert self._status is not None and summary.strategy_id is not None
        return await execute(
            act.TRAIN_STRATEGY,
            TrainInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                training_run_id=training_run_id,
                gate=cycle.training_gate,
                period=cycle.period,
                trial_source=trial_source(cycle),
            ),
            summary=f"train {summary.strategy_name} walk-forward, then the training gate",
        )

    async def _backtest(
        self, cycle: ResearchCycleInput, summary: IterationSummary, training_run_id: str
    ) -> BacktestResult:
        assert self._status is not None and summary.strategy_id is not None
        return await execute(
            act.RUN_BACKTEST,
            BacktestInput(
                session_id=self._status.session_id,
                iteration=summary.iteration,
                strategy_id=summary.strategy_id,
                training_run_id=training_run_id,
                backtest_id=str(workflow.uuid4()),
                gate=cycle.backtest_gate,
                period=cycle.period,
                statistical_gate=cycle.statistical_gate,
                trial_source=trial_source(cycle),
            ),
            summary=f"backtest {summary.strategy_name}: backtest and statistical gates",
        )

    async def _holdout(
        self, cycle: ResearchCycleInput, result: ResearchCycleResult
    ) -> HoldoutResult | None:
        """The chosen strategy on the final holdout: once, reported, never fed back."""
        chosen = next(
            (s for s in result.iterations if s.strategy_id == result.best_strategy_id), None
        )
        if chosen is None or chosen.strategy_id is None or chosen.training_run_id is None:
            return None
        self._set_phase("holdout")
        try:
            return await execute(
                act.EVALUATE_HOLDOUT,
                HoldoutInput(
                    session_id=result.session_id,
                    strategy_id=chosen.strategy_id,
                    training_run_id=chosen.training_run_id,
                    holdout_id=str(workflow.uuid4()),
                    period=cycle.period,
                ),
                summary=f"holdout, once, for the chosen {chosen.strategy_name}",
            )
        except ActivityError as err:
            # The verdict stands on the development period; a holdout that cannot run is
            # reported as missing, not as a failure of the strategy.
            workflow.logger.warning("holdout not evaluated: %s", error_text(err))
            return None

    async def _start_session(self, cycle: ResearchCycleInput, session_id: str) -> SessionStarted:
        info = workflow.info()
        return await execute(
            act.START_SESSION,
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
            summary=f"open session on {cycle.symbol} (trigger {cycle.trigger}), check budget",
        )

    async def _finish(
        self, result: ResearchCycleResult, *, keep_skill: bool
    ) -> ResearchCycleResult:
        assert self._status is not None
        self._set_phase("recording")
        # The store fills in tokens and cost from the agent_actions rows it holds.
        finished = await execute(
            act.FINISH_SESSION,
            FinishSessionInput(
                session_id=result.session_id,
                outcome=result.outcome,
                best_strategy_id=result.best_strategy_id,
                finished_at=workflow.now(),
                result=result,
                keep_skill=keep_skill,
            ),
            summary=f"record outcome {result.outcome}",
        )
        self._status.outcome = finished.outcome
        workflow.upsert_search_attributes([c.SA_OUTCOME.value_set(finished.outcome)])
        self._set_phase("done")
        return finished

    # --- helpers -------------------------------------------------------------------

    def _set_phase(self, phase: Phase) -> None:
        assert self._status is not None
        self._status.phase = phase
        workflow.upsert_search_attributes([c.SA_PHASE.value_set(phase)])
        workflow.set_current_details(progress_details(self._status))

    def _fail(
        self, summary: IterationSummary, outcome: Outcome, err: ActivityError | None = None
    ) -> IterationSummary:
        summary.outcome = outcome
        if err is not None:
            assert self._status is not None
            summary.error = self._status.last_error = error_text(err)
        return summary
