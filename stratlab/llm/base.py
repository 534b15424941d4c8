"""The provider protocol and the errors every provider raises.

Temporal owns retries, so a provider never retries by itself: it raises
``LlmRequestError`` for a request that will fail the same way again (a bad request, a
bad key, an unknown model) and ``LlmTransientError`` for one that may succeed later
(rate limit, server error, timeout, connection error). Activities turn ``retryable``
into Temporal's ``non_retryable`` flag.
"""

from __future__ import annotations

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


def _rebuild_error(cls: type[LlmError], message: str, state: dict[str, object]) -> LlmError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
