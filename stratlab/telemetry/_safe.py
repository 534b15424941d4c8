"""Telemetry never breaks the work it watches: a failing metric or span is logged, not raised."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_log = logging.getLogger("stratlab.telemetry")
_warned: set[str] = set()


@contextmanager
def never_raises(what: str) -> Iterator[None]:
    """Swallow and log an error of telemetry code (a warning the first time per ``what``)."""
    try:
        yield
    except Exception:
        level = logging.DEBUG if what in _warned else logging.WARNING
        _warned.add(what)
        _log.log(level, "telemetry failed: %s", what, exc_info=True)
