"""The instruction vocabulary of prompt evolution: what the optimizer may write into a prompt.

An instruction is a group of phrasings that say the same thing, keyed by what it asks for
and limited to the roles whose prompts it belongs in. The structural mutations add,
remove and rephrase instruction lines drawn from here (``library.instruction_library``
turns each phrasing into a sentence), and the offline stand-in
(``stratlab.llm.offline``) takes the phrases it reacts to from here, so what evolution can
say to a real model is defined once, on the optimizer's side.

Phrasings are lower case fragments without a final stop; matching a prompt against them is
the stand-in's business, not the vocabulary's. Most groups ask for a change in what is
designed or how long the answer is; the last few (``robustness`` to ``evidence``) are
general advice that a real model reads and the stand-in ignores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    """One instruction: its key, alternative phrasings and the roles it is written for."""

    key: str
    phrases: tuple[str, ...]
    roles: tuple[str, ...] = ("designer",)


INSTRUCTIONS: tuple[Instruction, ...] = (
    Instruction(
        "stop_loss",
        (
            "always set a stop loss",
            "always use a stop loss",
            "use a stop loss",
            "include a stop loss",
        ),
    ),
    Instruction("take_profit", ("take profits", "set a take profit", "use a take profit")),
    Instruction(
        "longer_lookbacks",
        ("prefer longer lookbacks", "use longer lookbacks", "longer lookback windows"),
    ),
    Instruction(
        "shorter_lookbacks",
        ("prefer shorter lookbacks", "use shorter lookbacks", "shorter lookback windows"),
    ),
    Instruction(
        "mean_reversion",
        ("prefer mean reversion", "favour mean reversion", "favor mean reversion"),
    ),
    Instruction(
        "trend_following",
        ("prefer trend following", "favour trend following", "favor trend following"),
    ),
    Instruction("breakout", ("prefer breakouts", "prefer breakout strategies")),
    Instruction("machine_learning", ("use machine learning", "prefer machine learning")),
    Instruction(
        "rules_only", ("avoid machine learning", "prefer simple rules", "use simple rules")
    ),
    Instruction(
        "small_grid",
        ("keep the parameter grid small", "keep the grid small", "use a small parameter grid"),
    ),
    Instruction(
        "trend_filter",
        ("use a trend filter", "confirm with a trend filter", "trade only with the trend"),
    ),
    Instruction("long_training", ("train for many epochs", "train longer", "use more epochs")),
    Instruction(
        "concise",
        ("be concise", "keep it short", "keep the rationale short", "answer briefly"),
        ("designer", "assessor"),
    ),
    Instruction(
        "detailed",
        ("explain your reasoning in detail", "explain in detail", "be thorough"),
        ("designer", "assessor"),
    ),
    # General advice: no effect on the offline stand-in, only on length.
    Instruction(
        "robustness",
        (
            "prefer ideas that should work in many market regimes over ones tuned to this one",
            "favour robust ideas over ones that fit the past too closely",
        ),
    ),
    Instruction(
        "simplicity",
        (
            "keep the strategy simple: few indicators and few parameters",
            "use as few indicators and parameters as the idea needs",
        ),
    ),
    Instruction(
        "costs",
        (
            "remember that every trade pays fees and slippage",
            "account for trading costs: avoid strategies that trade every few days",
        ),
    ),
    Instruction(
        "benchmark",
        (
            "compare the result with buying and holding over the same period",
            "always weigh the result against buy-and-hold",
        ),
        ("assessor",),
    ),
    Instruction(
        "evidence",
        (
            "distrust results that rest on only a few trades",
            "ask for more trades before accepting a high Sharpe ratio",
        ),
        ("assessor",),
    ),
)
"""Every instruction prompt evolution may use, in a stable order (seeded runs rely on it)."""


def instructions_for(role: str) -> tuple[Instruction, ...]:
    """The instructions written for ``role``, in vocabulary order."""
    return tuple(i for i in INSTRUCTIONS if role in i.roles)
