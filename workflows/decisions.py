"""The cycle's pure decisions: what feedback the designer hears, which round wins.

Plain deterministic functions over the cycle's models, kept apart from the workflow class
so ``research.py`` reads as the list of steps; safe to import in the workflow sandbox.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from stratlab.models.research import (
        BacktestResult,
        CycleStatus,
        IterationSummary,
        ResearchCycleResult,
    )


def progress_details(status: CycleStatus) -> str:
    """The progress line the Temporal UI shows for a running cycle (its current details)."""
    parts = [f"**{status.phase}** · iteration {status.iteration} · {status.symbol}"]
    if status.last_sharpe is not None:
        parts.append(f"last OOS sharpe {status.last_sharpe:.2f}")
    if status.last_error:
        parts.append(f"last error: {status.last_error[:200]}")
    return " · ".join(parts)


def feedback_from(summary: IterationSummary) -> str:
    """What the designer hears about its previous round: the assessment and the numbers."""
    lines = []
    if summary.metrics is not None:
        m = summary.metrics
        lines.append(
            f"Walk-forward out-of-sample: sharpe {m.sharpe:.2f}, "
            f"total return {m.total_return:.1%}, "
            f"max drawdown {m.max_drawdown:.1%}, win rate {m.win_rate:.1%}, trades {m.trades}, "
            f"buy-and-hold {m.benchmark_return:.1%}."
        )
    if summary.assessment is not None:
        a = summary.assessment
        lines.append(f"Assessment: {a.summary}")
        lines += [f"- weakness: {w}" for w in a.weaknesses]
        lines += [f"- suggestion: {s}" for s in a.suggestions]
    return "\n".join(lines)


def backtest_passed(tested: BacktestResult) -> bool:
    """The seed's backtest gate passed, and the statistical gate too when it ran."""
    stat = tested.statistical_gate
    return tested.gate.passed and (stat is None or stat.passed)


REFINABLE_AFTER_GATES = frozenset({"failed_training_gate", "failed_backtest_gate"})
"""Outcomes after which a cycle of any kind designs again, told which checks failed."""
REFINABLE_FOR_CODE = REFINABLE_AFTER_GATES | {"failed_design", "failed_training"}
"""Code is also refined from its own errors: the error is the feedback."""


def failure_feedback(summary: IterationSummary) -> str:
    """What went wrong, for the designer: the error, or the gate checks that failed."""
    lines = [f"The previous attempt ended {summary.outcome}."]
    if summary.error:
        lines.append(f"Error: {summary.error}")
    for gate in (summary.training_gate, summary.backtest_gate, summary.statistical_gate):
        if gate is not None and not gate.passed:
            lines += [
                f"- {gate.gate} gate: {check.name} was {check.value:.3f}, needs {check.op} "
                f"{check.threshold:g}" + (f" ({check.detail})" if check.detail else "")
                for check in gate.failures()
            ]
            lines += [
                f"- {gate.gate} gate: {check.name} could not be checked ({check.detail})"
                for check in gate.not_run()
                if gate.gate != "statistical" or check.name == "deflated_sharpe"
            ]
    if summary.metrics is not None:
        m = summary.metrics
        lines.append(
            f"Walk-forward out-of-sample: sharpe {m.sharpe:.2f}, win rate {m.win_rate:.1%}, "
            f"trades {m.trades}."
        )
    lines.append("Fix the cause and answer with a corrected strategy.")
    return "\n".join(lines)


def choose_outcome(result: ResearchCycleResult) -> None:
    """The cycle's outcome is its best round: any assessed success wins, by OOS Sharpe."""
    successes = [s for s in result.iterations if s.outcome == "success" and s.metrics]
    if successes:
        best = max(successes, key=lambda s: s.metrics.sharpe if s.metrics else float("-inf"))
        result.outcome = "success"
        result.best_strategy_id = best.strategy_id
    elif result.iterations:
        result.outcome = result.iterations[-1].outcome
