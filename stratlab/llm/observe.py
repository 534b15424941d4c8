"""The seam through which telemetry watches LLM calls without the call path knowing it.

``BudgetedLlm`` wraps every provider call in each observer's ``observe`` context and
fills ``CallTrace.record`` before the context exits, whatever the outcome (answered,
provider error, budget refused). An answer the caller rejects afterwards (malformed,
invalid) is reported again through ``relabel``. Observers must never raise into the call
path: a broken exporter costs a metric, not a research cycle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol

from stratlab.models.llm import LlmCallRecord, LlmRequest, LlmResponse


@dataclass
class CallTrace:
    """One LLM call as observers see it; ``record``/``response`` are set when it ends."""

    request: LlmRequest
    model: str
    action_id: str
    scope: str
    session_id: str | None = None
    experiment_id: str | None = None
    prompt_id: str | None = None
    iteration: int | None = None
    record: LlmCallRecord | None = None
    response: LlmResponse | None = None
    budget_remaining_usd: float | None = None


class CallObserver(Protocol):
    def observe(self, trace: CallTrace) -> AbstractContextManager[None]:
        """Context around one call; ``trace.record`` is set before it exits."""
        ...

    def relabel(self, record: LlmCallRecord) -> None:
        """A recorded call's outcome changed (its answer was rejected by the caller)."""
        ...


@contextmanager
def observed(observers: Sequence[CallObserver], trace: CallTrace) -> Iterator[CallTrace]:
    """Enter every observer's context around one call."""
    with ExitStack() as stack:
        for observer in observers:
            stack.enter_context(observer.observe(trace))
        yield trace
