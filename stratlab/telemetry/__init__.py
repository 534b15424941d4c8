"""Logging set-up: structlog JSON (console renderer on a TTY), stdlib loggers included.

Called once by each entry point (worker, CLI, dev stack); Temporal's own loggers go
through the same formatter, so one process writes one format. Every line carries the
bound context (workflow, run, activity, session and prompt ids inside a worker, see
``telemetry.interceptor``), the trace and span ids when tracing is on, and no secret: the
values of ``Settings.secrets()`` and credential-named keys are redacted last.
"""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio import activity, workflow

from stratlab.config import Settings
from stratlab.telemetry.log_processors import Redactor, add_trace_ids, lift_temporal_info

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_trace_ids,
]


def configure_logging(settings: Settings, *, stream: object = None) -> None:
    out = stream or sys.stderr
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if getattr(out, "isatty", lambda: False)() else "json"
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=True)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, lift_temporal_info],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            Redactor(settings.secrets()),
            renderer,
        ],
    )
    # Temporal's loggers would also append their info to the message: it is in keys now.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Chatty libraries stay at warning unless the user asks for debug.
    for name in ("httpx", "numba", "matplotlib"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
