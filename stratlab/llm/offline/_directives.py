"""The directives the offline provider recognises in a prompt, and what each one does.

A directive is an instruction of the optimizer's vocabulary
(``stratlab.evolution.vocabulary``) that the stand-in reacts to: its phrases and roles
come from there, its ``effect`` (what the stand-in then does) from here. Vocabulary
instructions without an effect here (general advice) change nothing but length.

A phrase is matched case-insensitively with hyphens and runs of whitespace treated as one
space ("Prefer trend-following" matches "prefer trend following"). There is no negation
handling: "do not use a stop loss" contains "use a stop loss". Blocks that carry data
rather than instructions (feedback, previous spec, recent strategies, skills, the assessed
spec and metrics) are not scanned, so an assessor's suggestion never turns into a
directive; feedback has its own handling in ``_design``.

The offline mutator (``_optimizer``) adds or removes the ``mutable`` directives as
instruction lines to answer a failure summary; the effects are real design changes that
real backtests then measure. ``code_bug`` is not in the vocabulary and not mutable: it is a
test fixture that breaks the first code design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stratlab.evolution.vocabulary import INSTRUCTIONS


@dataclass(frozen=True)
class Directive:
    key: str
    phrases: tuple[str, ...]
    effect: str
    roles: tuple[str, ...] = ("designer",)
    # False for test fixtures (a deliberate bug): the optimizer must not draw them.
    mutable: bool = True


_VOCABULARY = {instruction.key: instruction for instruction in INSTRUCTIONS}


def _reacts_to(key: str, effect: str) -> Directive:
    """The vocabulary's instruction ``key`` with the stand-in's ``effect``; a key the
    vocabulary lost fails at import rather than silently ceasing to act."""
    instruction = _VOCABULARY[key]
    return Directive(key, instruction.phrases, effect, instruction.roles)


DIRECTIVES: tuple[Directive, ...] = (
    _reacts_to("stop_loss", "every design gets stop_loss between 0.05 and 0.08"),
    _reacts_to("take_profit", "every design gets take_profit between 0.10 and 0.20"),
    _reacts_to("longer_lookbacks", "window parameters (and ml label horizon) x2"),
    _reacts_to(
        "shorter_lookbacks", "window parameters x0.5 (cancels longer_lookbacks when both appear)"
    ),
    _reacts_to(
        "mean_reversion",
        "rules designs come from the mean-reversion families (rsi, bollinger, stoch, zscore)",
    ),
    _reacts_to(
        "trend_following", "rules designs come from the trend families (moving-average cross, macd)"
    ),
    _reacts_to(
        "breakout",
        "rules designs come from the breakout families (atr, donchian, bollinger breakout)",
    ),
    _reacts_to("machine_learning", "kind ml when the prompt says Kind: any"),
    _reacts_to("rules_only", "kind rules when the prompt says Kind: any"),
    _reacts_to("small_grid", "at most 3 values per parameter range (grids of 9-27)"),
    _reacts_to("trend_filter", "rules entries also require close > sma(200) (x window scale)"),
    _reacts_to("long_training", "ml designs train for 300 epochs"),
    Directive(
        "code_bug",
        ("write code with a bug", "write buggy code", "include a deliberate bug"),
        "kind code: the FIRST design (iteration 1, no previous spec) misspells a variable "
        "at its return line, a NameError when run; revisions and repairs never do, so "
        "tests can watch the refinement loop repair it",
        mutable=False,
    ),
    _reacts_to(
        "concise", "one-sentence rationale or summary and compact JSON: fewer output tokens"
    ),
    _reacts_to("detailed", "a long rationale or summary: more output tokens, same design"),
)
"""Every directive the offline provider acts on; its ``effect`` is what it does."""

# Blocks holding data, not instructions; removed before directives are looked for.
_DATA_BLOCKS = re.compile(
    r"<(feedback|previous_spec|recent_strategies|skills|spec|metrics)>.*?</\1>",
    re.DOTALL | re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Lower case, hyphens as spaces, whitespace runs as one space."""
    return " ".join(text.lower().replace("-", " ").split())


def find_directives(text: str, role: str = "designer") -> frozenset[str]:
    """Keys of the directives for ``role`` that appear in ``text`` outside data blocks."""
    haystack = normalise(_DATA_BLOCKS.sub(" ", text))
    return frozenset(
        directive.key
        for directive in DIRECTIVES
        if role in directive.roles
        and any(normalise(phrase) in haystack for phrase in directive.phrases)
    )
