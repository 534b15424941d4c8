"""What the structural mutations draw from: instruction phrasings and answer examples.

Instructions come from ``vocabulary``: the phrasings of one group say the same thing, so
"rephrase" swaps within a group and "add" never adds a second phrasing of a group the
prompt holds. Answer examples are alternative reply blocks for the designer's template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stratlab.evolution.vocabulary import instructions_for


def _sentence(phrase: str) -> str:
    return phrase[0].upper() + phrase[1:] + "."


def instruction_library(role: str) -> Mapping[str, Sequence[str]]:
    """Instruction groups for ``role``: group key → alternative phrasings as sentences."""
    return {i.key: tuple(_sentence(p) for p in i.phrases) for i in instructions_for(role)}


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
