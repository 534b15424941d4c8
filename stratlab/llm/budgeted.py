"""Budgeted LLM calls: reserve the worst case, call, settle the real cost, record the call.

Every call, answered or not, becomes one ``agent_actions`` row keyed by an id that the
caller derives from the session, iteration, activity attempt and call number, so a
retried activity records its new calls and never duplicates an old one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from stratlab.config import Settings
from stratlab.llm.base import LlmError, LlmOutputError, LlmProvider
from stratlab.llm.observe import CallObserver, CallTrace, observed
from stratlab.llm.parsing import MalformedOutputError
from stratlab.llm.pricing import cost_usd, output_token_cap, worst_case_cost
from stratlab.models.llm import CallOutcome, LlmCallRecord, LlmRequest, LlmResponse
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.strategies.validation import StrategyValidationError

T = TypeVar("T")


class BudgetExhaustedError(Exception):
    """Today's budget cannot cover the worst case of the next call."""


def action_id(*parts: object, answer: int) -> str:
    """An LLM call's idempotency key (``agent_actions.action_id``): what the call is for,
    colon-joined, then the number of the answer within the step (1, then 2 after a repair).

    Built the same way on every attempt of an activity, so a retry finds the call's row
    and its budget reservation instead of paying again. The format is frozen: keys
    already stored must come out the same after an upgrade.
    """
    return ":".join(str(part) for part in (*parts, answer))


@dataclass(frozen=True)
class CallContext:
    action_id: str
    session_id: str | None
    iteration: int | None
    prompt_id: str | None
    scope: str = "research"
    experiment_id: str | None = None


@dataclass(frozen=True)
class PricedResponse:
    response: LlmResponse
    cost_usd: float
    record: LlmCallRecord | None = None


class AnswerRejected(Exception):
    """Every attempt's answer was rejected; ``last`` is the final reason."""

    def __init__(self, last: Exception) -> None:
        super().__init__(str(last))
        self.last = last


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    tokens: int
    cost_usd: float


def _repair(request: LlmRequest, answer: str, problem: str) -> LlmRequest:
    """The same request plus what was wrong with the last answer: one chance to fix it."""
    repair = (
        f"{request.prompt}\n\nYour previous answer was rejected.\nProblem: {problem}\n"
        f"Previous answer (first 2000 characters):\n{answer[:2000]}\n\n"
        "Answer again with one corrected JSON object only."
    )
    return request.model_copy(update={"prompt": repair})


class BudgetedLlm:
    def __init__(
        self,
        provider: LlmProvider,
        budget: BudgetRepo,
        actions: ActionRepo,
        settings: Settings,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self._provider = provider
        self._budget = budget
        self._actions = actions
        self._settings = settings
        self._observers = tuple(observers)

    @property
    def provider(self) -> LlmProvider:
        return self._provider

    async def call(self, request: LlmRequest, ctx: CallContext) -> PricedResponse:
        model = self._provider.model_for(request)
        trace = CallTrace(
            request=request,
            model=model,
            action_id=ctx.action_id,
            scope=ctx.scope,
            session_id=ctx.session_id,
            experiment_id=ctx.experiment_id,
            prompt_id=ctx.prompt_id,
            iteration=ctx.iteration,
        )
        with observed(self._observers, trace):
            return await self._call(request, ctx, model, trace)

    async def _call(
        self, request: LlmRequest, ctx: CallContext, model: str, trace: CallTrace
    ) -> PricedResponse:
        reserve = worst_case_cost(request, model, settings=self._settings)
        cap = self._settings.budget_cap(ctx.scope) - self._settings.budget_buffer_usd
        day = datetime.now(UTC).date()
        if not await self._budget.reserve(ctx.action_id, ctx.scope, day, reserve, cap):
            trace.record = await self._record(
                ctx, request, model, None, 0.0, "budget_exhausted", None
            )
            raise BudgetExhaustedError(
                f"{ctx.scope} budget for {day} cannot cover ${reserve:.4f} more "
                f"(cap ${cap:.2f} after the ${self._settings.budget_buffer_usd:.2f} buffer)"
            )
        try:
            response = await self._provider.complete(request)
        except LlmError as err:
            await self._budget.settle(ctx.action_id, 0.0)
            trace.record = await self._record(ctx, request, model, None, 0.0, "error", str(err))
            raise
        # A cached answer was paid for when it was first given.
        cost = (
            0.0
            if response.cached
            else cost_usd(
                response.model,
                response.input_tokens,
                response.output_tokens,
                settings=self._settings,
            )
        )
        await self._budget.settle(ctx.action_id, cost)
        trace.response = response
        trace.record = await self._record(ctx, request, model, response, cost, "ok", None)
        return PricedResponse(response=response, cost_usd=cost, record=trace.record)

    async def ask(
        self,
        request: LlmRequest,
        ctx_for: Callable[[int], CallContext],
        accept: Callable[[str], T],
        *,
        attempts: int = 2,
    ) -> Answer[T]:
        """Call, and accept the answer; a rejected answer (``accept`` raised
        ``MalformedOutputError`` or ``StrategyValidationError``) is marked on its row and
        sent back once with the problem. An answer that stopped early (truncated at the
        output cap, refused) is marked and raises ``LlmOutputError`` with no repair: a
        second try would hit the same cap or refuse again. Every billed call is charged
        either way."""
        tokens, cost = 0, 0.0
        for n in range(1, attempts + 1):
            ctx = ctx_for(n)
            priced = await self.call(request, ctx)
            tokens += priced.response.input_tokens + priced.response.output_tokens
            cost += priced.cost_usd
            if priced.response.stop_reason != "end":
                raise await self._stopped_early(request, ctx, priced)
            try:
                return Answer(accept(priced.response.text), tokens, cost)
            except (MalformedOutputError, StrategyValidationError) as err:
                outcome: CallOutcome = (
                    "malformed" if isinstance(err, MalformedOutputError) else "invalid"
                )
                await self.mark(ctx, outcome, str(err), priced.record)
                if n == attempts:
                    raise AnswerRejected(err) from err
                request = _repair(request, priced.response.text, str(err))
        raise AssertionError("unreachable: attempts >= 1")

    async def _stopped_early(
        self, request: LlmRequest, ctx: CallContext, priced: PricedResponse
    ) -> LlmOutputError:
        """Label a truncated or refused answer's row and say in one line what happened."""
        response = priced.response
        outcome: CallOutcome
        if response.stop_reason == "max_tokens":
            outcome = "truncated"
            cap = output_token_cap(request, self._settings)
            message = f"{request.role} answer truncated at {cap} output tokens"
        else:
            outcome = "refused"
            said = " ".join(response.text.split())[:200]
            message = f"{request.role} refused to answer" + (f": {said}" if said else "")
        await self.mark(ctx, outcome, message, priced.record)
        return LlmOutputError(message)

    async def mark(
        self,
        ctx: CallContext,
        outcome: CallOutcome,
        error: str,
        record: LlmCallRecord | None = None,
    ) -> None:
        """Re-label a recorded call whose answer the caller rejected (malformed, invalid)."""
        await self._actions.set_outcome(ctx.action_id, outcome, error[:1000])
        if record is not None:
            relabelled = record.model_copy(update={"outcome": outcome, "error": error[:1000]})
            for observer in self._observers:
                observer.relabel(relabelled)

    async def _record(
        self,
        ctx: CallContext,
        request: LlmRequest,
        model: str,
        response: LlmResponse | None,
        cost: float,
        outcome: CallOutcome,
        error: str | None,
    ) -> LlmCallRecord:
        record = LlmCallRecord(
            action_id=ctx.action_id,
            session_id=ctx.session_id,
            experiment_id=ctx.experiment_id,
            iteration=ctx.iteration,
            role=request.role,
            prompt_id=ctx.prompt_id,
            provider=response.provider if response else self._provider.name,
            model=response.model if response else model,
            input_tokens=response.input_tokens if response else 0,
            output_tokens=response.output_tokens if response else 0,
            cost_usd=cost,
            latency_ms=response.latency_ms if response else 0.0,
            latency_simulated=response.latency_simulated if response else False,
            outcome=outcome,
            error=error[:1000] if error else None,
            cached=response.cached if response else False,
        )
        await self._actions.record(record)
        return record
