"""The offline provider's paper-trading composer: a fixed trend rule, not an AI.

It reads the lines templates/composer.j2 writes, forgivingly (any order, any wording
around them): ``Time:``, ``Equity:``, ``Max position notional:``, ``Allow short:`` and
one ``Instrument: <symbol> | position=<qty> | name=value ...`` line per instrument.

Per instrument, with ``skill_position`` present it follows the skill (1 → long, 0 → flat);
otherwise it is long while SMA(20)/SMA(50) is above 1 and the 20-bar return positive,
flat once the ratio falls under 0.99 (short instead when shorting is allowed), and keeps
the position in between. A long target spends an equal share of equity per instrument,
at most the max position notional, in whole units. Confidence grows with the distance of
the ratio from 1. Missing features mean ``noop``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from stratlab.models.trading import InstrumentRef, LlmDecisionItem, LlmPlanProposal

_FLAGS = re.IGNORECASE | re.MULTILINE
_TIME = re.compile(r"^[ \t]*time[ \t]*:[ \t]*(\S+)", _FLAGS)
_EQUITY = re.compile(r"^[ \t]*equity[ \t]*:[ \t]*([-+0-9.eE]+)", _FLAGS)
_CAP = re.compile(r"^[ \t]*max position notional[ \t]*:[ \t]*([-+0-9.eE]+)", _FLAGS)
_SHORT = re.compile(r"^[ \t]*allow short[ \t]*:[ \t]*(yes|no)", _FLAGS)
_INSTRUMENT = re.compile(r"^[ \t]*instrument[ \t]*:[ \t]*([^|\s]+)[ \t]*\|(.*)$", _FLAGS)
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=([-+0-9.eE]+|nan|inf)")

ENTER_RATIO = 1.0
EXIT_RATIO = 0.99
SPEND = 0.95  # of the equal share of equity: room for fees and slippage
REBALANCE = 0.10  # a held position within this fraction of the target is left alone


def _number(pattern: re.Pattern[str], text: str, default: float) -> float:
    found = pattern.search(text)
    try:
        value = float(found.group(1)) if found else default
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _time(prompt: str) -> datetime:
    found = _TIME.search(prompt)
    if found:
        try:
            parsed = datetime.fromisoformat(found.group(1))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime(1970, 1, 1, tzinfo=UTC)


def _instruments(prompt: str) -> list[tuple[str, dict[str, float]]]:
    found: list[tuple[str, dict[str, float]]] = []
    for match in _INSTRUMENT.finditer(prompt):
        values: dict[str, float] = {}
        for name, raw in _PAIR.findall(match.group(2)):
            try:
                values[name] = float(raw)
            except ValueError:
                continue
        found.append((match.group(1), values))
    return found


def compose(prompt: str) -> LlmPlanProposal:
    """The plan the offline composer proposes for a rendered composer prompt."""
    equity = _number(_EQUITY, prompt, 0.0)
    cap = _number(_CAP, prompt, math.inf)
    found = _SHORT.search(prompt)
    short = found is not None and found.group(1).lower() == "yes"
    instruments = _instruments(prompt)
    share = max(0.0, equity) / max(1, len(instruments))
    items = [
        _decide(symbol, values, min(share * SPEND, cap), short) for symbol, values in instruments
    ]
    return LlmPlanProposal(
        ts=_time(prompt),
        items=items,
        notes=f"offline trend rule over {len(items)} instrument(s)",
    )


def _decide(symbol: str, values: dict[str, float], budget: float, short: bool) -> LlmDecisionItem:
    ref = InstrumentRef(symbol=symbol)
    position = values.get("position", 0.0)
    close = values.get("close")
    if close is None or not close > 0:
        return LlmDecisionItem(instrument=ref, action="noop", rationale="no close price")
    long_qty = float(math.floor(budget / close))
    skill = values.get("skill_position")
    if skill is not None:
        if skill >= 0.5:
            return _towards(ref, position, long_qty, 0.8, "the skill's rules are long")
        return LlmDecisionItem(
            instrument=ref, action="flat", confidence=0.8, rationale="the skill's rules are flat"
        )
    ratio, trend = values.get("sma_ratio_20_50"), values.get("ret_20")
    if ratio is None or trend is None:
        return LlmDecisionItem(instrument=ref, action="noop", rationale="features warming up")
    confidence = round(min(1.0, 0.4 + 20.0 * abs(ratio - 1.0)), 3)
    why = f"sma20/sma50 {ratio:.3f}, 20-bar return {trend:+.1%}"
    if ratio > ENTER_RATIO and trend > 0:
        return _towards(ref, position, long_qty, confidence, f"{why}: uptrend")
    if ratio < EXIT_RATIO:
        if short:
            return _towards(ref, position, -long_qty, confidence, f"{why}: downtrend, short")
        action = "flat" if position != 0 else "noop"
        return LlmDecisionItem(
            instrument=ref, action=action, confidence=confidence, rationale=f"{why}: downtrend"
        )
    return LlmDecisionItem(
        instrument=ref, action="noop", confidence=confidence, rationale=f"{why}: no clear trend"
    )


def _towards(
    ref: InstrumentRef, position: float, target: float, confidence: float, why: str
) -> LlmDecisionItem:
    # Already holding about the target on the same side: keep it rather than trade dust.
    if target == position or (
        target * position > 0 and abs(target - position) <= REBALANCE * abs(target)
    ):
        return LlmDecisionItem(instrument=ref, action="noop", confidence=confidence, rationale=why)
    action = "buy" if target > position else "sell"
    return LlmDecisionItem(
        instrument=ref, action=action, target_qty=target, confidence=confidence, rationale=why
    )
