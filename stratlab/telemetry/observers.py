"""The LLM-call observers a worker runs with, chosen from Settings (all optional)."""

from __future__ import annotations

from stratlab.config import Settings
from stratlab.llm.observe import CallObserver
from stratlab.telemetry.instruments import Instruments
from stratlab.telemetry.langfuse import PromptSource, langfuse_observer
from stratlab.telemetry.llm import (
    BudgetSource,
    LlmLogObserver,
    LlmMetricsObserver,
    LlmSpanObserver,
)


def call_observers(
    settings: Settings,
    *,
    instruments: Instruments | None = None,
    budget: BudgetSource | None = None,
    prompts: PromptSource | None = None,
) -> list[CallObserver]:
    """Observers for ``BudgetedLlm``: trace spans, log lines, metrics, Langfuse.

    The span observer comes first, so it is entered first and exited last: the log line
    and the other observers' work happen inside the call's span. ``budget`` lets the
    metrics observer refresh the budget gauges after each call; ``prompts`` lets the
    Langfuse observer name each generation's prompt version.
    """
    instruments = instruments or Instruments()
    observers: list[CallObserver] = []
    if instruments.tracer is not None:
        observers.append(LlmSpanObserver(instruments.tracer))
    observers.append(LlmLogObserver())
    if instruments.metrics.enabled:
        observers.append(LlmMetricsObserver(instruments.metrics, budget, settings))
    if settings.langfuse_enabled and (langfuse := langfuse_observer(settings, prompts)):
        observers.append(langfuse)
    return observers
