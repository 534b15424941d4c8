"""Step 3 of a paper decision cycle, on the llm pool: the composer's plan.

The composer prompt from the registry, filled with the decision bar's features, the
portfolio and the digest rebuilt from the execution records, answers an
``LlmPlanProposal`` through the budgeted LLM (charged to the ``paper`` scope). The
``compose`` record keeps the plan, or why there is none, and the call's cost; a retry finds
it and never calls the LLM twice.
"""

from __future__ import annotations

from stratlab.config import Settings
from stratlab.llm.base import LlmError
from stratlab.llm.budgeted import (
    AnswerRejected,
    BudgetedLlm,
    BudgetExhaustedError,
    CallContext,
    action_id,
)
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import ComposerContext, ComposerInstrument, render_prompt
from stratlab.models.llm import LlmRequest
from stratlab.models.paper import ComposeStep, CycleStepInput, PaperTradingInput
from stratlab.models.prompts import PromptRecord
from stratlab.models.records import SkillRecord
from stratlab.models.trading import LlmPlanProposal
from stratlab.store.prompts import PromptRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo
from stratlab.trading import reads
from stratlab.trading.guardrails import clean_text
from stratlab.trading.history import ComposePayload, PortfolioTotals, history_record
from stratlab.trading.reads import DecisionInputs, PaperStateError

ERROR_CHARS = 1000


class PaperComposerService:
    """The composer of paper strategies (``PaperLlmActivities``)."""

    def __init__(
        self,
        repo: PaperRepo,
        prompts: PromptRepo,
        skills: SkillRepo,
        settings: Settings,
        llm: BudgetedLlm,
    ) -> None:
        self._repo = repo
        self._prompts = prompts
        self._skills = skills
        self._settings = settings
        self._llm = llm

    async def compose(self, inp: CycleStepInput, *, attempt: int = 1) -> ComposeStep:
        found = await self._repo.record(inp.strategy_id, "compose", inp.compose_id)
        if found is not None:
            return ComposePayload.model_validate(found.payload).step()
        decided_on = await reads.decision_inputs(self._repo, inp.strategy_id, inp.compose_id)
        if inp.compose_error:  # the LLM call failed after every retry: record, no call
            error = clean_text(f"composer unavailable: {inp.compose_error}", ERROR_CHARS)
            payload = ComposePayload(error=error)
        else:
            payload = await self._ask(inp, attempt, decided_on)
        payload.portfolio = PortfolioTotals(
            total_value=decided_on.view.total_value, cash=decided_on.view.cash
        )
        payload.digest = decided_on.digest
        record = history_record("compose", inp.compose_id, decided_on.bar_ts, payload)
        await self._repo.record_history(inp.strategy_id, record)
        return payload.step()

    async def _ask(
        self, inp: CycleStepInput, attempt: int, decided_on: DecisionInputs
    ) -> ComposePayload:
        """The plan the composer answers, or why there is none; a transient LLM error
        is raised for Temporal to retry."""
        row, cfg = await reads.strategy(self._repo, inp.strategy_id)
        prompt = await self._prompts.get(row.prompt_id or "")
        if prompt is None:
            raise PaperStateError(f"prompt {row.prompt_id!r} of {inp.strategy_id} is gone")
        skill = await reads.rules_skill(self._skills, row.skill_id) if row.skill_id else None
        request = self._request(prompt, composer_context(cfg, decided_on, skill))
        payload = ComposePayload(
            prompt_id=prompt.id,
            provider=self._llm.provider.name,
            model=self._llm.provider.model_for(request),
        )

        def call(n: int) -> CallContext:
            return CallContext(
                action_id=action_id("paper", inp.compose_id, "composer", attempt, answer=n),
                session_id=None,
                iteration=inp.cycle,
                prompt_id=prompt.id,
                scope="paper",
            )

        def accept(text: str) -> LlmPlanProposal:
            return parse_structured(text, LlmPlanProposal)

        try:
            answer = await self._llm.ask(request, call, accept)
        except (AnswerRejected, BudgetExhaustedError) as err:
            payload.error = clean_text(f"{type(err).__name__}: {err}", ERROR_CHARS)
        except LlmError as err:
            if err.retryable:
                raise
            payload.error = clean_text(f"{type(err).__name__}: {err}", ERROR_CHARS)
        else:
            payload.plan, payload.tokens = answer.value, answer.tokens
            payload.cost_usd = answer.cost_usd
        return payload

    def _request(self, prompt: PromptRecord, context: ComposerContext) -> LlmRequest:
        return LlmRequest.answered_by(
            LlmPlanProposal, role="composer", system=prompt.system,
            prompt=render_prompt(prompt.content, context),
            max_output_tokens=self._settings.max_output_tokens,
        )  # fmt: skip


def composer_context(
    cfg: PaperTradingInput, decided_on: DecisionInputs, skill: SkillRecord | None
) -> ComposerContext:
    """What the composer template is filled with."""
    view = decided_on.view
    instruments = []
    for vector in decided_on.features:
        symbol = vector.instrument.symbol
        held = view.positions.get(symbol)
        instruments.append(
            ComposerInstrument(
                symbol=symbol,
                position=held.quantity if held else 0.0,
                features=dict(vector.values),
            )
        )
    lines = [
        f"{symbol}: {e.trade_count} trades, realised P&L {e.realized_pnl:+.2f}, "
        f"win rate {_pct(e.win_rate)}, recent score {_num(e.recent_performance_score)}"
        for symbol, e in decided_on.digest.by_instrument.items()
    ]
    skill_text = ""
    if skill is not None:
        skill_text = (
            f"{skill.name}: entry {skill.spec.entry}; exit {skill.spec.exit}; "
            f"parameters {skill.params}"
        )
    return ComposerContext(
        ts=decided_on.bar_ts.isoformat(),
        equity=view.total_value or 0.0,
        cash=view.cash,
        max_position_notional=cfg.guardrails.max_position_notional,
        allow_short=cfg.guardrails.allow_short,
        halted=view.halted,
        instruments=instruments,
        digest=lines,
        skill=skill_text,
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
