"""What the structural mutations draw from: instruction phrasings and answer examples.

Instructions are grouped: the phrasings of one group say the same thing, so "rephrase"
swaps within a group and "add" never adds a second phrasing of a group the prompt holds.
The designer's groups are the offline provider's mutable directives (so a mutation has an
effect that real backtests then measure) plus a few general instructions that change
nothing but length; a real model reads them all as plain advice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stratlab.llm.directives import DIRECTIVES

_GENERAL: dict[str, tuple[str, ...]] = {
    "robustness": (
        "Prefer ideas that should work in many market regimes over ones tuned to this one.",
        "Favour robust ideas over ones that fit the past too closely.",
    ),
    "simplicity": (
        "Keep the strategy simple: few indicators and few parameters.",
        "Use as few indicators and parameters as the idea needs.",
    ),
    "costs": (
        "Remember that every trade pays fees and slippage.",
        "Account for trading costs: avoid strategies that trade every few days.",
    ),
}

_ASSESSOR_GENERAL: dict[str, tuple[str, ...]] = {
    "benchmark": (
        "Compare the result with buying and holding over the same period.",
        "Always weigh the result against buy-and-hold.",
    ),
    "evidence": (
        "Distrust results that rest on only a few trades.",
        "Ask for more trades before accepting a high Sharpe ratio.",
    ),
}


def _sentence(phrase: str) -> str:
    return phrase[0].upper() + phrase[1:] + "."


def instruction_library(role: str) -> Mapping[str, Sequence[str]]:
    """Instruction groups for ``role``: group key → alternative phrasings."""
    groups: dict[str, tuple[str, ...]] = {
        d.key: tuple(_sentence(p) for p in d.phrases)
        for d in DIRECTIVES
        if d.mutable and role in d.roles
    }
    groups.update(_GENERAL if role == "designer" else _ASSESSOR_GENERAL)
    return groups


# Alternative answer examples for the designer's rules/ml answer block. They keep the
# ``{{ symbol }}`` variable of the default so they render with the same context.
DESIGNER_EXAMPLES: tuple[str, ...] = (
    """{"name": "short-kebab-case-name", "kind": "rules", "symbol": "{{ symbol }}",
 "rationale": "why this should work on this symbol",
 "indicators": [{"alias": "fast", "kind": "sma", "params": {"window": "fast_window"}},
                {"alias": "slow", "kind": "sma", "params": {"window": "slow_window"}}],
 "entry": "crosses_above(fast, slow)", "exit": "crosses_below(fast, slow)",
 "parameters": [{"name": "fast_window", "low": 5, "high": 20, "step": 5},
                {"name": "slow_window", "low": 40, "high": 120, "step": 20}],
 "stop_loss": null, "take_profit": null, "ml": null}""",
    """{"name": "rsi-dip-buyer", "kind": "rules", "symbol": "{{ symbol }}",
 "rationale": "buy short-term oversold dips, sell on recovery",
 "indicators": [{"alias": "rsi", "kind": "rsi", "params": {"window": "rsi_window"}}],
 "entry": "rsi < oversold", "exit": "rsi > 55",
 "parameters": [{"name": "rsi_window", "low": 7, "high": 21, "step": 7},
                {"name": "oversold", "low": 20, "high": 35, "step": 5}],
 "stop_loss": 0.06, "take_profit": null, "ml": null}""",
    """{"name": "macd-trend", "kind": "rules", "symbol": "{{ symbol }}", "rationale": "ride trends",
 "indicators": [{"alias": "m", "kind": "macd", "params": {}}],
 "entry": "crosses_above(m.macd, m.signal)", "exit": "crosses_below(m.macd, m.signal)",
 "parameters": [], "stop_loss": null, "take_profit": null, "ml": null}""",
)


def answer_examples(role: str) -> Sequence[str]:
    return DESIGNER_EXAMPLES if role == "designer" else ()
