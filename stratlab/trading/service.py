"""One paper-trading decision cycle, step by step, each step idempotent.

The workflow calls the steps through activities, one per step and pool, each backed by
the service of its pool:

1. ``observe`` (compute, ``bars.PaperBarService``): the next decision bar; its candles
   and features are recorded.
2. ``execute`` (orchestrator, ``execution.PaperExecutionService``): the previous cycle's
   instructions fill at this bar's open, the book is marked at its close, the equity
   point is written; one transaction.
3. ``compose`` (llm, ``composer.PaperComposerService``): the composer prompt, filled with
   the features, the portfolio and the digest, answers a plan.
4. ``decide`` (orchestrator, ``execution.PaperExecutionService``): the guardrails turn the
   plan into instructions, which fill at the next bar's open (step 2 of the next cycle).

Every step first looks for its own record (``kind:compose_id``) and returns what it finds,
so a retried step never calls the LLM twice, never fills twice and never writes a second
row. ``PaperService`` is the whole cycle in one process, without Temporal, for callers that
drive the steps themselves (``perf/paper.py``); the workers build only their pool's service.
"""

from __future__ import annotations

from stratlab.config import Settings
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.models.paper import (
    ComposeStep,
    CycleStepInput,
    DecisionStep,
    ExecutionStep,
    MarketStep,
    MarketStepInput,
    PaperOpened,
    PaperOpenInput,
)
from stratlab.models.trading import StrategyStatus
from stratlab.store.db import ConnectionSource
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo
from stratlab.trading.bars import PaperBarService
from stratlab.trading.composer import PaperComposerService
from stratlab.trading.execution import PaperExecutionService
from stratlab.trading.reads import PaperStateError


class PaperService:
    """The three pool services together: set-up and every step of a cycle."""

    def __init__(
        self,
        db: ConnectionSource,
        market: MarketRepo,
        prompts: PromptRepo,
        skills: SkillRepo,
        settings: Settings,
        llm: BudgetedLlm | None = None,
    ) -> None:
        repo = PaperRepo(db)
        self.bars = PaperBarService(repo, market, skills)
        self.execution = PaperExecutionService(db, market, prompts, skills)
        self.composer = (
            None if llm is None else PaperComposerService(repo, prompts, skills, settings, llm)
        )

    async def open(self, inp: PaperOpenInput) -> PaperOpened:
        return await self.execution.open(inp)

    async def set_status(self, strategy_id: str, status: StrategyStatus) -> None:
        await self.execution.set_status(strategy_id, status)

    async def observe(self, inp: MarketStepInput) -> MarketStep:
        return await self.bars.observe(inp)

    async def execute(self, inp: CycleStepInput) -> ExecutionStep:
        return await self.execution.execute(inp)

    async def compose(self, inp: CycleStepInput, *, attempt: int = 1) -> ComposeStep:
        if self.composer is None:
            raise PaperStateError("compose needs an LLM: this service was built without one")
        return await self.composer.compose(inp, attempt=attempt)

    async def decide(self, inp: CycleStepInput) -> DecisionStep:
        return await self.execution.decide(inp)
