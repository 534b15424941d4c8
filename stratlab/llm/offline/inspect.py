"""The offline stand-in's internals that tests and benchmarks may read, and nothing else.

The provider itself is ``stratlab.llm.offline.OfflineProvider``. What is here lets a test
or a benchmark look behind its answers: which family and style a design belongs to, the
family builders and their knobs, what the designer hears in feedback, the pure role
functions (mutator, composer) and the ``## Instructions`` editing the mutator uses. Product
code has no reason to import this module; the list is kept short on purpose, and a name
belongs here only when a test or a benchmark needs it.
"""

from __future__ import annotations

from stratlab.llm.offline._code import CODE_FAMILIES, code_family_of
from stratlab.llm.offline._composer import compose
from stratlab.llm.offline._families import (
    BREAKOUT,
    FAMILIES,
    TREND,
    Knobs,
    family_of,
    grid_size,
    is_window_key,
    style_of,
)
from stratlab.llm.offline._feedback import FeedbackSignals, code_error_kind, read_feedback
from stratlab.llm.offline._optimizer import (
    add_instruction,
    instruction_lines,
    mutate,
    remove_instruction,
)
from stratlab.llm.offline._prompt import read_designer

__all__ = [
    "BREAKOUT",
    "CODE_FAMILIES",
    "FAMILIES",
    "TREND",
    "FeedbackSignals",
    "Knobs",
    "add_instruction",
    "code_error_kind",
    "code_family_of",
    "compose",
    "family_of",
    "grid_size",
    "instruction_lines",
    "is_window_key",
    "mutate",
    "read_designer",
    "read_feedback",
    "remove_instruction",
    "style_of",
]
