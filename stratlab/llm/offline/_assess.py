"""The offline assessor: a verdict and suggestions derived from the metrics it is shown.

    accept   the gate passed and Sharpe >= 0.5
    reject   the gate failed on the last iteration with two or more failed checks or a
             negative Sharpe
    refine   anything else, with one suggestion per weakness found in the numbers

The suggestions use the words the offline designer's feedback handling reacts to
("drawdown", "too few trades", "low win rate"), so the refinement loop closes offline.
"""

from __future__ import annotations

from stratlab.llm.offline._feedback import DRAWDOWN_LIMIT as HIGH_DRAWDOWN
from stratlab.llm.offline._feedback import MIN_TRADES as FEW_TRADES
from stratlab.llm.offline._feedback import MIN_WIN_RATE as LOW_WIN_RATE
from stratlab.llm.offline._prompt import AssessorView
from stratlab.models.research import Assessment

ACCEPT_SHARPE = 0.5
# The limits are the designer's feedback limits, so what the assessor calls a weakness is
# exactly what the designer reacts to.


def assess(view: AssessorView) -> Assessment:
    """The offline assessor's answer to an assessor prompt."""
    m = view.metrics
    sharpe = m.get("sharpe", 0.0)
    last = view.iteration >= view.max_iterations
    if view.gate_passed and sharpe >= ACCEPT_SHARPE:
        verdict = "accept"
    elif not view.gate_passed and last and (len(view.gate_failures) >= 2 or sharpe < 0):
        verdict = "reject"
    else:
        verdict = "refine"
    weaknesses, suggestions = _weaknesses(view)
    strengths = _strengths(view)
    concise = "concise" in view.directives
    if concise:
        suggestions = suggestions[:2]
    return Assessment(
        verdict=verdict,  # type: ignore[arg-type]
        summary=_summary(view, verdict, concise=concise),
        strengths=strengths,
        weaknesses=weaknesses,
        suggestions=suggestions if verdict != "accept" else [],
    )


def _weaknesses(view: AssessorView) -> tuple[list[str], list[str]]:
    m = view.metrics
    weaknesses: list[str] = []
    suggestions: list[str] = []
    drawdown, trades = m.get("max_drawdown", 0.0), int(m.get("trades", 0))
    win_rate, sharpe = m.get("win_rate", 0.0), m.get("sharpe", 0.0)
    total, benchmark = m.get("total_return", 0.0), m.get("benchmark_return", 0.0)
    stop = view.spec.stop_loss if view.spec else None
    if drawdown > HIGH_DRAWDOWN:
        weaknesses.append(f"Max drawdown of {drawdown:.0%} is deep.")
        suggestions.append(
            f"Cut the drawdown: tighten the stop loss from {stop:.0%}."
            if stop
            else "Cut the drawdown: add a stop loss of about 5-8%."
        )
    if trades < FEW_TRADES:
        weaknesses.append(f"Only {trades} trades in the test period: too few trades to trust.")
        suggestions.append("Too few trades: use shorter windows or looser entry thresholds.")
    if trades > 0 and win_rate < LOW_WIN_RATE:
        weaknesses.append(f"Low win rate of {win_rate:.0%}.")
        suggestions.append("Low win rate: try a mean-reversion entry that buys weakness.")
    if total < benchmark:
        weaknesses.append(f"Returned {total:.1%} against {benchmark:.1%} for buy-and-hold.")
        suggestions.append("Exit later in rising markets so the strategy keeps more of the trend.")
    if sharpe < ACCEPT_SHARPE:
        weaknesses.append(f"Sharpe of {sharpe:.2f} is below {ACCEPT_SHARPE}.")
        if not suggestions:
            suggestions.append("Sharpe is weak: revise the exit so losing trades close sooner.")
    weaknesses.extend(f"Gate check failed: {failure}" for failure in view.gate_failures)
    return weaknesses, suggestions


def _strengths(view: AssessorView) -> list[str]:
    m = view.metrics
    strengths = []
    if m.get("sharpe", 0.0) >= ACCEPT_SHARPE:
        strengths.append(f"Sharpe of {m['sharpe']:.2f} out of sample.")
    if m.get("total_return", 0.0) > m.get("benchmark_return", 0.0):
        strengths.append("Beats buy-and-hold over the test period.")
    if m.get("trades", 0) >= FEW_TRADES and m.get("max_drawdown", 1.0) <= HIGH_DRAWDOWN / 2:
        strengths.append(f"Shallow drawdown of {m['max_drawdown']:.0%}.")
    if m.get("trades", 0) >= FEW_TRADES and m.get("win_rate", 0.0) >= 0.55:
        strengths.append(f"Wins {m['win_rate']:.0%} of its trades.")
    return strengths


def _summary(view: AssessorView, verdict: str, *, concise: bool) -> str:
    m = view.metrics
    numbers = (
        f"Sharpe {m.get('sharpe', 0.0):.2f}, return {m.get('total_return', 0.0):.1%} vs "
        f"{m.get('benchmark_return', 0.0):.1%} buy-and-hold, max drawdown "
        f"{m.get('max_drawdown', 0.0):.1%}, {int(m.get('trades', 0))} trades."
    )
    if concise:
        return f"{verdict.capitalize()}: {numbers}"
    gate = "passed" if view.gate_passed else f"failed ({len(view.gate_failures)} checks)"
    reason = {
        "accept": "The result is strong enough to keep as it is.",
        "reject": "The gate failed badly on the last iteration; this idea is not worth more work.",
        "refine": "The idea may work but needs the changes suggested below.",
    }[verdict]
    text = f"Out of sample on {view.symbol}: {numbers} The gate {gate}. {reason}"
    if "detailed" in view.directives:
        text += (
            " The test period was never used for fitting, so these numbers are the fairest "
            "estimate available; they remain a single path, and a Sharpe ratio estimated "
            "from a few years of daily bars carries a standard error of several tenths."
        )
    return text
