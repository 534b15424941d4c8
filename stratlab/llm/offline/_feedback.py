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
    no_edge       the statistical gate's "deflated_sharpe was <p>" with p below 0.5: the
                  design showed no edge worth revising
    relax         the analyst's "relax <parameter> to about <number>" lines, as pairs

Code strategies also fail before any metric exists; ``code_error_kind`` names the error
the feedback reports (checked in this order, first match wins):

    syntax       SyntaxError, IndentationError, "invalid syntax"
    validation   the code validator's or the spec validator's rejection
    timeout      "timed out", "timeout", "time limit", CPU or wall-clock limits
    memory       MemoryError, memory or address-space limits
    runtime      a traceback, an exception name (NameError...), "line <n>", or an
                 "Error:" line that is not about missing trades
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DRAWDOWN_LIMIT = 0.20
MIN_TRADES = 10
MIN_WIN_RATE = 0.45
NO_EDGE_DSR = 0.5

_I = re.IGNORECASE
_DRAWDOWN_VALUE = re.compile(r"drawdown[^0-9\n]{0,20}?(\d+(?:\.\d+)?)[ \t]*(%?)", _I)
_DRAWDOWN_WORDS = re.compile(
    r"\b(?:cut|reduce|limit|tighten|control|lower)\s+(?:the\s+)?drawdown"
    r"|\b(?:deep|large|excessive|severe)\s+drawdown|drawdown\s+(?:is|was)\s+too",
    _I,
)
# "(?<![a-z])" rather than \b so that "min_validation_trades 1.0" counts too.
_TRADES_VALUE = re.compile(
    r"(?<![a-z])trades(?:[^0-9a-z\n]{0,3}|\s+(?:was|were|is)\s+)(\d+)|\b(\d+)\s+trades\b", _I
)
_TRADES_WORDS = re.compile(r"\b(?:too few|not enough|no|zero) trades\b|\bno trade", _I)
_MANY_TRADES = re.compile(r"too many trades|overtrad", _I)
_WIN_RATE_VALUE = re.compile(r"win[ _]rate[^0-9\n]{0,12}?(\d+(?:\.\d+)?)[ \t]*(%?)", _I)
_WIN_RATE_WORDS = re.compile(r"low win[ _]rate|win[ _]rate\s+(?:is\s+)?(?:too\s+)?low", _I)
_DEFLATED_SHARPE = re.compile(r"deflated[_ ]sharpe\s+was\s+(\d+(?:\.\d+)?)", _I)
_RELAX = re.compile(r"\brelax\s+([A-Za-z][A-Za-z0-9_]*)\s+to\s+about\s+(-?\d+(?:\.\d+)?)", _I)
_CODE_ERRORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, _I))
    for kind, pattern in (
        (
            "syntax",
            r"\b(?:SyntaxError|IndentationError|TabError)\b|invalid syntax|syntax error"
            r"|\[syntax\]",
        ),
        (
            "validation",
            r"\b\w*ValidationError\b|\bvalidator\b|failed validation|invalid strategy:"
            r"|\bnot allowed\b|\bis forbidden\b|code was rejected|\[[a-z]+(?:-[a-z]+)+\]",
        ),
        ("timeout", r"timed out|\btimeout\b|time limit|wall[- ]clock|\bcpu (?:time|limit|seconds)"),
        ("memory", r"\bMemoryError\b|memory limit|out of memory|address space"),
        # Exception names are matched case-sensitively: "NameError", not "tracking error".
        (
            "runtime",
            r"\btraceback\b|(?-i:\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Exception)\b)|\bline \d+",
        ),
    )
)
_ERROR_LINE = re.compile(r"^[ \t]*error[ \t]*:", _I | re.MULTILINE)


@dataclass(frozen=True)
class FeedbackSignals:
    drawdown: bool = False
    few_trades: bool = False
    many_trades: bool = False
    low_win_rate: bool = False
    no_edge: bool = False
    relax: tuple[tuple[str, float], ...] = ()


def read_feedback(text: str) -> FeedbackSignals:
    drawdowns = [_fraction(m.group(1), m.group(2)) for m in _DRAWDOWN_VALUE.finditer(text)]
    trades = [int(m.group(1) or m.group(2)) for m in _TRADES_VALUE.finditer(text)]
    win_rates = [_fraction(m.group(1), m.group(2)) for m in _WIN_RATE_VALUE.finditer(text)]
    return FeedbackSignals(
        drawdown=any(d > DRAWDOWN_LIMIT for d in drawdowns) or bool(_DRAWDOWN_WORDS.search(text)),
        few_trades=any(t < MIN_TRADES for t in trades) or bool(_TRADES_WORDS.search(text)),
        many_trades=bool(_MANY_TRADES.search(text)),
        low_win_rate=any(w < MIN_WIN_RATE for w in win_rates) or bool(_WIN_RATE_WORDS.search(text)),
        no_edge=any(float(m.group(1)) < NO_EDGE_DSR for m in _DEFLATED_SHARPE.finditer(text)),
        relax=tuple((m.group(1), float(m.group(2))) for m in _RELAX.finditer(text)),
    )


def code_error_kind(text: str) -> str | None:
    """syntax, validation, timeout, memory or runtime when the feedback reports an error."""
    for kind, pattern in _CODE_ERRORS:
        if pattern.search(text):
            return kind
    if _ERROR_LINE.search(text) and not read_feedback(text).few_trades:
        return "runtime"
    return None


def _fraction(number: str, percent: str) -> float:
    """'35' with '%' and '0.35' both read as 0.35; a bare number above 1 is a percent."""
    value = float(number)
    return value / 100 if percent or value > 1 else value
