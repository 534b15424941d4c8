"""LLM-pool activities: design and assess. Business failures become non-retryable errors;
a transient provider error is retried by Temporal, after the provider's retry-after."""

from __future__ import annotations

from temporalio import activity

from activities import names
from activities._errors import llm_application_error
from activities._phases import recorded_phase
from stratlab.llm.base import LlmError
from stratlab.llm.budgeted import BudgetExhaustedError
from stratlab.llm.prompts import PromptRenderError
from stratlab.market.datasets import UnknownSymbolError
from stratlab.models.research import AssessInput, AssessResult, DesignInput, DesignResult
from stratlab.research.assessor import AssessmentError, Assessor
from stratlab.research.data import DataWindowError
from stratlab.research.designer import Designer, StrategyDesignError
from stratlab.store.sessions import SessionRepo


class LlmActivities:
    def __init__(self, designer: Designer, assessor: Assessor, sessions: SessionRepo) -> None:
        self._designer = designer
        self._assessor = assessor
        self._sessions = sessions

    @activity.defn(name=names.DESIGN_STRATEGY)
    async def design_strategy(self, inp: DesignInput) -> DesignResult:
        attempt = activity.info().attempt
        async with recorded_phase(self._sessions, inp.session_id, inp.iteration, "design") as d:
            if inp.feedback:  # what the designer was told about its previous round
                d["feedback"] = inp.feedback[:4000]
            try:
                result = await self._designer.design(inp, attempt=attempt)
            except (
                StrategyDesignError,
                BudgetExhaustedError,
                LlmError,
                PromptRenderError,
                UnknownSymbolError,
                DataWindowError,
            ) as err:
                raise llm_application_error(err, "StrategyDesignError") from err
            d.update(strategy_id=result.strategy_id, name=result.spec.name, attempt=attempt)
            return result

    @activity.defn(name=names.ASSESS_STRATEGY)
    async def assess_strategy(self, inp: AssessInput) -> AssessResult:
        attempt = activity.info().attempt
        async with recorded_phase(self._sessions, inp.session_id, inp.iteration, "assess") as d:
            try:
                result = await self._assessor.assess(inp, attempt=attempt)
            except (AssessmentError, BudgetExhaustedError, LlmError, PromptRenderError) as err:
                raise llm_application_error(err, "AssessmentError") from err
            d.update(verdict=result.assessment.verdict)
            return result
