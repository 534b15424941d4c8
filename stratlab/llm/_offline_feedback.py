"""What the offline designer hears in feedback: four signals, from words and numbers.

Feedback is whatever the refinement loop sends back: the assessor's weaknesses and
suggestions and a line of out-of-sample numbers ("max drawdown 12.0%, win rate 55.0%,
trades 25"). A metric that is merely mentioned is not a complaint, so numbers are
compared with limits, and words count only as complaints:

    drawdown      a drawdown above 20%, or "cut / reduce / limit the drawdown",
                  "deep / large / excessive drawdown", "drawdown is too ..."
    few_trades    fewer than 10 trades ("trades 4", "only 4 trades", "min_validation_trades
                  1.0"), or "too few / not enough / no trades"
    many_trades   "too many trades", "overtrading"
    low_win_rate  a win rate below 45%, or "low win rate", "win rate is too low"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DRAWDOWN_LIMIT = 0.20
MIN_TRADES = 10
MIN_WIN_RATE = 0.45

_I = re.IGNORECASE
_DRAWDOWN_VALUE = re.compile(r"drawdown[^0-9\n]{0,20}?(\d+(?:\.\d+)?)[ \t]*(%?)", _I)
_DRAWDOWN_WORDS = re.compile(
    r"\b(?:cut|reduce|limit|tighten|control|lower)\s+(?:the\s+)?drawdown"
    r"|\b(?:deep|large|excessive|severe)\s+drawdown|drawdown\s+(?:is|was)\s+too",
    _I,
)
# "(?<![a-z])" rather than \b so that "min_validation_trades 1.0" counts too.
_TRADES_VALUE = re.compile(r"(?<![a-z])trades[^0-9a-z\n]{0,3}(\d+)|\b(\d+)\s+trades\b", _I)
_TRADES_WORDS = re.compile(r"\b(?:too few|not enough|no|zero) trades\b|\bno trade", _I)
_MANY_TRADES = re.compile(r"too many trades|overtrad", _I)
_WIN_RATE_VALUE = re.compile(r"win[ _]rate[^0-9\n]{0,12}?(\d+(?:\.\d+)?)[ \t]*(%?)", _I)
_WIN_RATE_WORDS = re.compile(r"low win[ _]rate|win[ _]rate\s+(?:is\s+)?(?:too\s+)?low", _I)


@dataclass(frozen=True)
class FeedbackSignals:
    drawdown: bool = False
    few_trades: bool = False
    many_trades: bool = False
    low_win_rate: bool = False


def read_feedback(text: str) -> FeedbackSignals:
    drawdowns = [_fraction(m.group(1), m.group(2)) for m in _DRAWDOWN_VALUE.finditer(text)]
    trades = [int(m.group(1) or m.group(2)) for m in _TRADES_VALUE.finditer(text)]
    win_rates = [_fraction(m.group(1), m.group(2)) for m in _WIN_RATE_VALUE.finditer(text)]
    return FeedbackSignals(
        drawdown=any(d > DRAWDOWN_LIMIT for d in drawdowns) or bool(_DRAWDOWN_WORDS.search(text)),
        few_trades=any(t < MIN_TRADES for t in trades) or bool(_TRADES_WORDS.search(text)),
        many_trades=bool(_MANY_TRADES.search(text)),
        low_win_rate=any(w < MIN_WIN_RATE for w in win_rates) or bool(_WIN_RATE_WORDS.search(text)),
    )


def _fraction(number: str, percent: str) -> float:
    """'35' with '%' and '0.35' both read as 0.35; a bare number above 1 is a percent."""
    value = float(number)
    return value / 100 if percent or value > 1 else value
