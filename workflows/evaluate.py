"""EvaluateStrategyWorkflow: a user's own strategy through the lab's pipeline.

session → register the spec (validated like a design) → train walk-forward on the
development period (look-ahead probe, trials into the ledger as ``user``) → training
gate → backtest → backtest gate and statistical gate → holdout, once, for a strategy that
passed every gate → record the session (trigger ``user``). No LLM call, no assessment,
and the strategy does not join the skill library.

The steps after registration are the research cycle's own (``CycleSteps``), so a user's
strategy is judged exactly as the lab's designs are. Start it from the Temporal CLI::

    temporal workflow start --type EvaluateStrategyWorkflow \\
        --task-queue stratlab-orchestrator --input '{"spec": {...}, "symbol": "sp500"}'

An input that does not validate (``workflows.boundary``) fails the run at once with the
reason instead of retrying the workflow task forever.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.boundary import INVALID_INPUT, validated_input
from workflows.calls import execute
from workflows.steps import CycleSteps

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.research import (
        CycleStatus,
        EvaluateStrategyInput,
        EvaluateStrategyResult,
        IterationSummary,
        RegisterStrategyInput,
        ResearchCycleInput,
        ResearchCycleResult,
        StrategySpec,
    )
    from workflows import constants as c
    from workflows.decisions import choose_outcome


def cycle_input(
    inp: EvaluateStrategyInput, spec: StrategySpec, session_id: str
) -> ResearchCycleInput:
    """The evaluation as the one-iteration cycle the session rows and the shared steps
    read: trigger ``user`` (its trials count as the user's), no assessment, isolated."""
    return ResearchCycleInput(
        symbol=spec.symbol,
        kind=spec.kind,
        max_iterations=1,
        session_id=session_id,
        trigger="user",
        training_gate=inp.training_gate,
        backtest_gate=inp.backtest_gate,
        statistical_gate=inp.statistical_gate,
        period=inp.period,
        assess=False,
        isolated=True,
    )


def evaluation_result(finished: ResearchCycleResult) -> EvaluateStrategyResult:
    """The recorded one-iteration session as the evaluation's result."""
    summary = finished.iterations[0]
    gates = [
        g
        for g in (summary.training_gate, summary.backtest_gate, summary.statistical_gate)
        if g is not None
    ]
    return EvaluateStrategyResult(
        session_id=finished.session_id,
        outcome=finished.outcome,
        strategy_id=summary.strategy_id,
        checks=[check for gate in gates for check in gate.checks],
        gates=gates,
        trials=summary.trials,
        holdout=finished.holdout,
        metrics=summary.metrics,
        error=summary.error,
    )


@workflow.defn(name="EvaluateStrategyWorkflow")
class EvaluateStrategyWorkflow(CycleSteps):
    @workflow.run
    @validated_input
    async def run(self, inp: EvaluateStrategyInput) -> EvaluateStrategyResult:
        if inp.spec is None:
            raise ApplicationError(
                'EvaluateStrategyWorkflow needs a spec: {"spec": {...StrategySpec...}, '
                '"symbol": "sp500"}',
                type=INVALID_INPUT,
                non_retryable=True,
            )
        spec = inp.spec.model_copy(update={"symbol": inp.symbol}) if inp.symbol else inp.spec
        session_id = inp.session_id or str(workflow.uuid4())
        cycle = cycle_input(inp, spec, session_id)
        self._period = cycle.period
        self._status = CycleStatus(
            session_id=session_id,
            phase="starting",
            iteration=1,
            symbol=spec.symbol,
            started_at=workflow.now(),
        )
        workflow.upsert_search_attributes([c.SA_SYMBOL.value_set(spec.symbol)])
        self._set_phase("starting")
        # The session's budget check is moot: nothing here calls an LLM.
        await self._start_session(cycle, session_id)
        summary = IterationSummary(
            iteration=1,
            strategy_id=str(workflow.uuid4()),
            strategy_name=spec.name,
            kind=spec.kind,
            outcome="success",
            training_run_id=str(workflow.uuid4()),
        )
        if await self._register(spec, summary):
            await self._train_and_test(cycle, summary)
        result = ResearchCycleResult(
            session_id=session_id, outcome=summary.outcome, iterations=[summary]
        )
        choose_outcome(result)
        if result.best_strategy_id:
            result.holdout = await self._holdout(cycle, result)
        return evaluation_result(await self._finish(result, keep_skill=False))

    async def _register(self, spec: StrategySpec, summary: IterationSummary) -> bool:
        """The user's spec takes the designer's place: validated, stored under the id
        made here. An invalid spec ends the evaluation ``failed_design``."""
        assert self._status is not None and summary.strategy_id is not None
        self._set_phase("design")
        try:
            await execute(
                act.REGISTER_STRATEGY,
                RegisterStrategyInput(
                    session_id=self._status.session_id,
                    strategy_id=summary.strategy_id,
                    iteration=summary.iteration,
                    spec=spec,
                ),
                summary=f"validate and register {spec.name} ({spec.kind} on {spec.symbol})",
            )
        except ActivityError as err:
            self._fail(summary, "failed_design", err)
            summary.strategy_id = summary.training_run_id = None  # nothing was stored
            return False
        return True
