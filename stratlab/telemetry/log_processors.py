"""structlog processors of the lab's log pipeline: Temporal ids, trace ids, redaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger

REDACTED = "[redacted]"
# Keys whose values are credentials whatever they hold (api_key, x-api-key, secret_key,
# authorization, password, access_token, ...). Token *counts* (input_tokens) are not.
SECRET_KEY = re.compile(
    r"(api[-_]?key|secret|authorization|passw(or)?d|credential|private[-_]?key|"
    r"(access|refresh|bearer|auth|id)[-_]?token|cookie)",
    re.IGNORECASE,
)
MIN_SECRET_LENGTH = 4  # shorter "secrets" are not keys, and would shred every line

# Temporal's loggers put the workflow's or activity's info in the record's extra.
_WORKFLOW_KEYS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_type": "workflow_type",
    "task_queue": "task_queue",
    "attempt": "attempt",
}
_ACTIVITY_KEYS = {
    "workflow_id": "workflow_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
    "activity_type": "activity",
    "activity_id": "activity_id",
    "attempt": "attempt",
    "task_queue": "task_queue",
}


def lift_temporal_info(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """Copy ``workflow.logger``/``activity.logger`` info from a stdlib record's extra
    into top-level keys (what the activity interceptor binds for structlog lines)."""
    record = event.get("_record")
    if not isinstance(record, logging.LogRecord):
        return event
    for extra, keys in (
        ("temporal_workflow", _WORKFLOW_KEYS),
        ("temporal_activity", _ACTIVITY_KEYS),
    ):
        info = getattr(record, extra, None)
        if isinstance(info, Mapping):
            for source, target in keys.items():
                if info.get(source) is not None:
                    event.setdefault(target, info[source])
    return event


def add_trace_ids(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """The current span's trace and span ids, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class Redactor:
    """Replaces every configured secret wherever it appears in an event (messages,
    values, nested containers, rendered tracebacks) and the value of any key named like
    a credential. Runs last before rendering, after exceptions became text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len)
        # Longest first, so a secret containing another is replaced whole.
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in reversed(found))) if found else None
        )

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        return {key: self._value(key, value) for key, value in event.items()}

    def _value(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and value not in (None, "") and SECRET_KEY.search(key):
            return REDACTED
        return self._scrub(value)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value) if self._pattern else value
        if isinstance(value, Mapping):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        # Anything else is rendered with repr/str by the renderer: scrub that text.
        return self._scrub(str(value)) if self._pattern else value
