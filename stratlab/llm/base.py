"""The provider protocol and the errors every provider raises.

Temporal owns retries, so a provider never retries by itself: it raises
``LlmRequestError`` for a request that will fail the same way again (a bad request, a
bad key, an unknown model) and ``LlmTransientError`` for one that may succeed later
(rate limit, server error, timeout, connection error). Activities turn ``retryable``
into Temporal's ``non_retryable`` flag and ``retry_after`` into its next retry delay.
``LlmOutputError`` is raised after a billed answer that stopped early (the output-token
cap, a refusal): asking again would end the same way, so it is not retryable either.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from stratlab.models.llm import LlmRequest, LlmResponse

OFFLINE_MODEL = "offline-deterministic-v1"
"""Model name of the deterministic offline stand-in; it is not an AI and says so."""


class LlmProvider(Protocol):
    """Something that answers an ``LlmRequest`` with an ``LlmResponse``."""

    name: str

    async def complete(self, request: LlmRequest) -> LlmResponse: ...

    def model_for(self, request: LlmRequest) -> str:
        """The model this provider will call for ``request`` (for pricing and budgets)."""
        ...


class LlmError(Exception):
    """A provider call failed; ``retryable`` says whether trying again can help."""

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are not in ``args``; keep the error picklable.
        return (_rebuild_error, (type(self), self.message, self.__dict__))


class LlmRequestError(LlmError):
    """Non-retryable: the request is wrong (400, 401, 403, 404, 413, 422) or unsupported."""

    retryable = False


class LlmTransientError(LlmError):
    """Retryable: 429, 5xx, timeouts and connection errors.

    ``retry_after`` is the server's hint in seconds, when it gave one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class LlmOutputError(LlmError):
    """Non-retryable: a billed answer stopped early (truncated at the output-token cap,
    or refused); the message says which, and the call was charged."""

    retryable = False


NON_RETRYABLE_STATUS = frozenset({400, 401, 403, 404, 413, 422})
"""Statuses that fail the same way on every attempt."""


def status_error(
    message: str, status: int, headers: Mapping[str, str]
) -> LlmRequestError | LlmTransientError:
    """Classify an HTTP error status: 408, 409, 429 and 5xx (529 overloaded included) are
    transient with the server's ``retry-after``; every other 4xx is a request error."""
    if status in NON_RETRYABLE_STATUS or (400 <= status < 500 and status not in (408, 409, 429)):
        return LlmRequestError(message, status_code=status)
    return LlmTransientError(message, status_code=status, retry_after=retry_after_seconds(headers))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's retry hint: ``retry-after-ms``, then ``retry-after`` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:limit]


def _rebuild_error(cls: type[LlmError], message: str, state: dict[str, object]) -> LlmError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
