"""Paper-trading activities: one class per pool, each a thin wrapper around its pool's
service (``stratlab.trading.execution``, ``.bars`` and ``.composer``).

A strategy that cannot start (unknown symbol, prompt or skill; no data; a taken id) is a
non-retryable ``PaperSetupError``; everything else is retried by Temporal, which is safe
because every step is idempotent (see ``stratlab.trading.service``).
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities._errors import llm_application_error
from stratlab.llm.base import LlmError
from stratlab.llm.prompts import PromptRenderError
from stratlab.models.paper import (
    ComposeStep,
    CycleStepInput,
    DecisionStep,
    ExecutionStep,
    MarketStep,
    MarketStepInput,
    PaperOpened,
    PaperOpenInput,
    StatusInput,
)
from stratlab.trading.bars import PaperBarService
from stratlab.trading.composer import PaperComposerService
from stratlab.trading.execution import PaperExecutionService
from stratlab.trading.reads import PaperSetupError


class PaperStoreActivities:
    """Orchestrator pool: set-up, execution and guardrails (light store work)."""

    def __init__(self, service: PaperExecutionService) -> None:
        self._service = service

    @activity.defn(name=names.PAPER_OPEN)
    async def paper_open(self, inp: PaperOpenInput) -> PaperOpened:
        try:
            return await self._service.open(inp)
        except PaperSetupError as err:
            raise ApplicationError(str(err), type="PaperSetupError", non_retryable=True) from err

    @activity.defn(name=names.PAPER_EXECUTE)
    async def paper_execute(self, inp: CycleStepInput) -> ExecutionStep:
        return await self._service.execute(inp)

    @activity.defn(name=names.PAPER_DECIDE)
    async def paper_decide(self, inp: CycleStepInput) -> DecisionStep:
        return await self._service.decide(inp)

    @activity.defn(name=names.PAPER_STATUS)
    async def paper_status(self, inp: StatusInput) -> None:
        await self._service.set_status(inp.strategy_id, inp.status)


class PaperComputeActivities:
    """Compute pool: bars and features."""

    def __init__(self, service: PaperBarService) -> None:
        self._service = service

    @activity.defn(name=names.PAPER_OBSERVE)
    async def paper_observe(self, inp: MarketStepInput) -> MarketStep:
        try:
            return await self._service.observe(inp)
        except PaperSetupError as err:  # the skill was deleted, the feed file vanished
            raise ApplicationError(str(err), type="PaperSetupError", non_retryable=True) from err


class PaperLlmActivities:
    """LLM pool: the composer."""

    def __init__(self, service: PaperComposerService) -> None:
        self._service = service

    @activity.defn(name=names.PAPER_COMPOSE)
    async def paper_compose(self, inp: CycleStepInput) -> ComposeStep:
        try:
            return await self._service.compose(inp, attempt=activity.info().attempt)
        except PromptRenderError as err:
            raise ApplicationError(str(err), type="PaperSetupError", non_retryable=True) from err
        except LlmError as err:
            # Only transient errors get here (the service records the others). Temporal
            # retries after the provider's retry-after; after the last attempt the
            # workflow decides the bar with the guardrails' fallback.
            raise llm_application_error(err, "ComposeError") from err
