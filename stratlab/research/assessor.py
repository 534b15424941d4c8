"""The assessment step: the assessor reads the out-of-sample result and gives a verdict."""

from __future__ import annotations

from stratlab.config import Settings
from stratlab.llm.base import LlmOutputError
from stratlab.llm.budgeted import AnswerRejected, BudgetedLlm, CallContext, action_id
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import AssessorContext, render_prompt
from stratlab.models.llm import LlmRequest
from stratlab.models.research import AssessInput, Assessment, AssessResult, TrainingReport
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo

MAX_ATTEMPTS = 2


class AssessmentError(Exception):
    """The assessor did not produce a usable assessment."""


def summarise_training(report: TrainingReport | None) -> str:
    if report is None:
        return "no training report"
    if report.kind == "ml":
        return (
            f"ml model, {len(report.epochs)} epochs (resumed from {report.resumed_from_epoch}); "
            f"validation accuracy {report.accuracy or 0:.1%}, "
            f"final loss {report.final_loss or 0:.3f}, "
            f"loss decrease {report.loss_decrease or 0:.1%}"
        )
    val = report.validation_metrics
    val_text = (
        f"validation sharpe {val.sharpe:.2f}, {val.trades} trades, return {val.total_return:.1%}"
        if val
        else "no validation metrics"
    )
    return f"rules grid of {report.grid_size}, best params {report.best_params}; {val_text}"


class Assessor:
    def __init__(
        self, llm: BudgetedLlm, prompts: PromptRepo, research: ResearchRepo, settings: Settings
    ) -> None:
        self._llm = llm
        self._prompts = prompts
        self._research = research
        self._settings = settings

    async def assess(self, inp: AssessInput, *, attempt: int = 1) -> AssessResult:
        existing = await self._research.get_assessment(inp.assessment_id)
        if existing is not None:
            return AssessResult(assessment=existing.assessment)
        request = await self._request(inp)
        try:
            answer = await self._llm.ask(
                request,
                lambda n: CallContext(
                    action_id=action_id(
                        inp.session_id, inp.iteration, "assessor", attempt, answer=n
                    ),
                    session_id=inp.session_id,
                    iteration=inp.iteration,
                    prompt_id=inp.prompt_id,
                    scope=inp.budget_scope,
                ),
                lambda text: parse_structured(text, Assessment),
                attempts=MAX_ATTEMPTS,
            )
        except AnswerRejected as err:
            raise AssessmentError(f"assessor answer rejected: {err}") from err
        except LlmOutputError as err:  # truncated or refused: says so itself
            raise AssessmentError(str(err)) from err
        assessment = answer.value
        await self._research.insert_assessment(
            inp.assessment_id,
            strategy_id=inp.strategy_id,
            assessment=assessment,
            session_id=inp.session_id,
            iteration=inp.iteration,
            backtest_id=inp.backtest_id,
        )
        return AssessResult(assessment=assessment, tokens=answer.tokens, cost_usd=answer.cost_usd)

    async def _request(self, inp: AssessInput) -> LlmRequest:
        prompt = await self._prompts.get(inp.prompt_id)
        strategy = await self._research.get_strategy(inp.strategy_id)
        backtest = await self._research.get_backtest(inp.backtest_id)
        if prompt is None or strategy is None or backtest is None:
            raise AssessmentError(
                f"missing rows for assessment: prompt={prompt is not None}, "
                f"strategy={strategy is not None}, backtest={backtest is not None}"
            )
        training = (
            await self._research.get_training_run(backtest.training_run_id)
            if backtest.training_run_id
            else None
        )
        context = AssessorContext(
            symbol=strategy.spec.symbol,
            iteration=inp.iteration,
            max_iterations=inp.max_iterations,
            spec_json=strategy.spec.model_dump_json(indent=2),
            training_summary=summarise_training(training.report if training else None),
            metrics=backtest.metrics,
            benchmark_return=backtest.metrics.benchmark_return,
            gate_passed=backtest.gate.passed if backtest.gate else False,
            gate_failures=[
                f"{c.name} {c.value:.3f} (needs {c.op} {c.threshold})"
                for c in (backtest.gate.failures() if backtest.gate else [])
            ],
        )
        return LlmRequest.answered_by(
            Assessment, role="assessor", system=prompt.system,
            prompt=render_prompt(prompt.content, context),
            max_output_tokens=self._settings.max_output_tokens,
        )  # fmt: skip
