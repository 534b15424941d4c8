"""One mapping from the LLM layer's exceptions to Temporal's ``ApplicationError``.

Temporal's retry policy is the only retry layer (the SDKs' own retries are off), so an
activity tells it three things: whether to retry at all, under which error type the
workflow sees the failure, and, when the provider said how long to wait (``retry-after``),
when to try again. That hint overrides the policy's backoff for the next attempt only; the
policy's attempt limit still holds.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from stratlab.llm.base import LlmError, LlmOutputError
from stratlab.llm.budgeted import BudgetExhaustedError

MAX_RETRY_DELAY = timedelta(minutes=10)
"""A retry-after longer than this is cut to it: a runaway header must not park a cycle."""


def llm_application_error(err: Exception, business_type: str) -> ApplicationError:
    """``err`` as the ApplicationError an LLM activity raises.

    - budget exhausted: non-retryable ``BudgetExhaustedError`` (the cycle is skipped);
    - a transient provider error: retryable ``LlmTransientError``, with the server's
      ``retry_after`` as the next retry delay when it gave one;
    - a rejected request: non-retryable ``LlmRequestError``;
    - an answer cut off or refused: non-retryable ``LlmOutputError``;
    - anything else (the caller's business failure): non-retryable ``business_type``.
    """
    if isinstance(err, BudgetExhaustedError):
        return ApplicationError(str(err), type="BudgetExhaustedError", non_retryable=True)
    if isinstance(err, LlmOutputError):
        return ApplicationError(str(err), type="LlmOutputError", non_retryable=True)
    if isinstance(err, LlmError):
        if not err.retryable:
            return ApplicationError(str(err), type="LlmRequestError", non_retryable=True)
        retry_after = getattr(err, "retry_after", None)
        delay = (
            min(timedelta(seconds=retry_after), MAX_RETRY_DELAY)
            if retry_after is not None and retry_after > 0
            else None
        )
        return ApplicationError(
            str(err), type="LlmTransientError", non_retryable=False, next_retry_delay=delay
        )
    return ApplicationError(str(err), type=business_type, non_retryable=True)
