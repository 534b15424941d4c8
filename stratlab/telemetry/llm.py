"""LLM-call observers: a span, a log line and metrics for every budgeted call.

Each is a ``CallObserver`` (``stratlab.llm.observe``): its context wraps the provider call
and reads ``trace.record`` when the call ends; ``relabel`` hears about an answer the
caller rejected afterwards. None of them raises into the call path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, Protocol

import structlog
from opentelemetry import trace

from stratlab.config import Settings
from stratlab.llm.observe import CallTrace
from stratlab.models.llm import LlmCallRecord
from stratlab.models.records import BudgetDay
from stratlab.telemetry._safe import never_raises
from stratlab.telemetry.metrics import LabMetrics

log = structlog.get_logger("stratlab.llm")


class LlmSpanObserver:
    """One CLIENT span per call with the GenAI semantic attributes plus the lab's own."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    @contextmanager
    def observe(self, call: CallTrace) -> Iterator[None]:
        span: trace.Span | None = None
        with never_raises("llm span"):
            span = self._tracer.start_span(
                f"chat {call.model}", kind=trace.SpanKind.CLIENT, attributes=_request(call)
            )
        if span is None:
            yield
            return
        with trace.use_span(span, end_on_exit=True):
            try:
                yield
            finally:
                with never_raises("llm span"):
                    if call.record is not None:
                        span.set_attributes(_result(call.record))

    def relabel(self, record: LlmCallRecord) -> None:
        # The call's span has ended; the rejection is an event on the activity's span.
        with never_raises("llm span"):
            trace.get_current_span().add_event(
                "stratlab.llm.answer_rejected",
                {"stratlab.action_id": record.action_id, "stratlab.outcome": record.outcome},
            )


def _request(call: CallTrace) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": call.model,
        "gen_ai.request.max_tokens": call.request.max_output_tokens,
        "gen_ai.request.temperature": call.request.temperature,
        "stratlab.role": call.request.role,
        "stratlab.scope": call.scope,
        "stratlab.action_id": call.action_id,
    }
    optional = {
        "stratlab.session_id": call.session_id,
        "stratlab.experiment_id": call.experiment_id,
        "stratlab.prompt_id": call.prompt_id,
        "stratlab.iteration": call.iteration,
    }
    attributes.update({k: v for k, v in optional.items() if v is not None})
    return attributes


def _result(record: LlmCallRecord) -> dict[str, Any]:
    return {
        "gen_ai.system": record.provider,
        "gen_ai.provider.name": record.provider,
        "gen_ai.response.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "stratlab.cost_usd": record.cost_usd,
        "stratlab.outcome": record.outcome,
        "stratlab.cached": record.cached,
        "stratlab.latency_ms": record.latency_ms,
        "stratlab.latency_simulated": record.latency_simulated,
    }


class LlmLogObserver:
    """Binds session and prompt ids around the call and writes one line when it ends."""

    @contextmanager
    def observe(self, call: CallTrace) -> Iterator[None]:
        ids = {
            "session_id": call.session_id,
            "prompt_id": call.prompt_id,
            "experiment_id": call.experiment_id,
        }
        with structlog.contextvars.bound_contextvars(
            **{k: v for k, v in ids.items() if v is not None}
        ):
            try:
                yield
            finally:
                with never_raises("llm log"):
                    if call.record is not None:
                        _log_call(call.record, call.scope)

    def relabel(self, record: LlmCallRecord) -> None:
        with never_raises("llm log"):
            log.warning(
                "llm answer rejected",
                action_id=record.action_id,
                role=record.role,
                model=record.model,
                outcome=record.outcome,
                error=(record.error or "")[:300],
                session_id=record.session_id,
                prompt_id=record.prompt_id,
            )


def _log_call(record: LlmCallRecord, scope: str) -> None:
    emit = log.info if record.outcome == "ok" else log.warning
    emit(
        "llm call",
        action_id=record.action_id,
        role=record.role,
        provider=record.provider,
        model=record.model,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cost_usd=record.cost_usd,
        latency_ms=record.latency_ms,
        latency_simulated=record.latency_simulated,
        outcome=record.outcome,
        cached=record.cached,
        scope=scope,
        iteration=record.iteration,
        error=(record.error or "")[:300] or None,
    )


class BudgetSource(Protocol):
    """What the metrics observer reads of the budget: a scope's day (the store's
    ``BudgetRepo`` is one, passed in by the worker's wiring)."""

    async def day_status(self, scope: str, day: date, *, default_cap: float) -> BudgetDay: ...


class LlmMetricsObserver:
    """Counts calls, tokens, cost and latency; refreshes the scope's budget gauges after a
    call (one indexed row read, off the call path)."""

    def __init__(
        self, metrics: LabMetrics, budget: BudgetSource | None, settings: Settings
    ) -> None:
        self._metrics = metrics
        self._budget = budget
        self._settings = settings
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock: asyncio.Lock | None = None

    @contextmanager
    def observe(self, call: CallTrace) -> Iterator[None]:
        try:
            yield
        finally:
            with never_raises("llm metrics"):
                if call.record is not None:
                    self._metrics.llm_call(call.record)
                self._refresh_budget(call.scope)

    def relabel(self, record: LlmCallRecord) -> None:
        with never_raises("llm metrics"):
            self._metrics.llm_rejected(record)

    def _refresh_budget(self, scope: str) -> None:
        # A read that has not started yet will see this call's settlement: no second one.
        if self._budget is None or scope in self._pending:
            return
        self._pending.add(scope)
        task = asyncio.get_running_loop().create_task(self._read_budget(scope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_budget(self, scope: str) -> None:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:  # reads run one at a time, so the last one is the newest
            self._pending.discard(scope)
            with never_raises("budget metrics"):
                assert self._budget is not None
                cap = self._settings.budget_cap(scope) - self._settings.budget_buffer_usd
                day = await self._budget.day_status(
                    scope, datetime.now(UTC).date(), default_cap=cap
                )
                self._metrics.budget(day)
