"""The directives the offline provider recognises in a prompt, and what each one does.

A directive is a phrase in the system or user prompt, matched case-insensitively with
hyphens and runs of whitespace treated as one space ("Prefer trend-following" matches
"prefer trend following"). There is no negation handling: "do not use a stop loss"
contains "use a stop loss". Blocks that carry data rather than instructions (feedback,
previous spec, recent strategies, skills, the assessed spec and metrics) are not scanned, so an
assessor's suggestion never turns into a directive; feedback has its own handling in
``stratlab.llm._offline_design``.

The optimizer's structural mutation may draw phrases from the ``mutable`` entries of
``DIRECTIVES``, and the offline mutator (``stratlab.llm._offline_optimizer``) adds or
removes them as instruction lines to answer a failure summary; the effects are real
design changes that real backtests then measure.
``code_bug`` is not mutable: it is a test fixture that breaks the first code design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Directive:
    key: str
    phrases: tuple[str, ...]
    effect: str
    roles: tuple[str, ...] = ("designer",)
    # False for test fixtures (a deliberate bug): the optimizer must not draw them.
    mutable: bool = True


DIRECTIVES: tuple[Directive, ...] = (
    Directive(
        "stop_loss",
        (
            "always set a stop loss",
            "always use a stop loss",
            "use a stop loss",
            "include a stop loss",
        ),
        "every design gets stop_loss between 0.05 and 0.08",
    ),
    Directive(
        "take_profit",
        ("take profits", "set a take profit", "use a take profit"),
        "every design gets take_profit between 0.10 and 0.20",
    ),
    Directive(
        "longer_lookbacks",
        ("prefer longer lookbacks", "use longer lookbacks", "longer lookback windows"),
        "window parameters (and ml label horizon) x2",
    ),
    Directive(
        "shorter_lookbacks",
        ("prefer shorter lookbacks", "use shorter lookbacks", "shorter lookback windows"),
        "window parameters x0.5 (cancels longer_lookbacks when both appear)",
    ),
    Directive(
        "mean_reversion",
        ("prefer mean reversion", "favour mean reversion", "favor mean reversion"),
        "rules designs come from the mean-reversion families (rsi, bollinger, stoch, zscore)",
    ),
    Directive(
        "trend_following",
        ("prefer trend following", "favour trend following", "favor trend following"),
        "rules designs come from the trend families (moving-average cross, macd)",
    ),
    Directive(
        "breakout",
        ("prefer breakouts", "prefer breakout strategies"),
        "rules designs come from the breakout families (atr, donchian, bollinger breakout)",
    ),
    Directive(
        "machine_learning",
        ("use machine learning", "prefer machine learning"),
        "kind ml when the prompt says Kind: any",
    ),
    Directive(
        "rules_only",
        ("avoid machine learning", "prefer simple rules", "use simple rules"),
        "kind rules when the prompt says Kind: any",
    ),
    Directive(
        "small_grid",
        ("keep the parameter grid small", "keep the grid small", "use a small parameter grid"),
        "at most 3 values per parameter range (grids of 9-27)",
    ),
    Directive(
        "trend_filter",
        ("use a trend filter", "confirm with a trend filter", "trade only with the trend"),
        "rules entries also require close > sma(200) (x window scale)",
    ),
    Directive(
        "long_training",
        ("train for many epochs", "train longer", "use more epochs"),
        "ml designs train for 300 epochs",
    ),
    Directive(
        "code_bug",
        ("write code with a bug", "write buggy code", "include a deliberate bug"),
        "kind code: the FIRST design (iteration 1, no previous spec) misspells a variable "
        "at its return line, a NameError when run; revisions and repairs never do, so "
        "tests can watch the refinement loop repair it",
        mutable=False,
    ),
    Directive(
        "concise",
        ("be concise", "keep it short", "keep the rationale short", "answer briefly"),
        "one-sentence rationale or summary and compact JSON: fewer output tokens",
        ("designer", "assessor"),
    ),
    Directive(
        "detailed",
        ("explain your reasoning in detail", "explain in detail", "be thorough"),
        "a long rationale or summary: more output tokens, same design",
        ("designer", "assessor"),
    ),
)
"""Every directive the offline provider acts on; its ``effect`` is what it does."""

DIRECTIVE_KEYS = frozenset(d.key for d in DIRECTIVES)

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
