"""How a benchmark task's research cycle is judged: passed or not, and its graded score.

A discovery task passes when its research cycle ends ``success`` and every criterion
holds on the walk-forward out-of-sample metrics of the development period; a
no-discovery task (noise) passes when the lab judged a strategy and did not call it a
discovery. Each result also gets a graded score in [0, 1] (:func:`task_score`), which is
what the optimizer climbs. The tasks themselves come from the suite file (``suite``).

``window`` cuts a task's market period out of a frame; the cycle then splits that window
by time (development period and holdout) exactly as it splits any data set.
"""

from __future__ import annotations

import math

import pandas as pd

from stratlab.models.optimization import BenchmarkTask, Criterion, TaskVerdict
from stratlab.models.research import BacktestMetrics, GateResult

MIN_WINDOW_BARS = 500
EXCESS_RETURN = "excess_return"
# Outcomes of a cycle that never had a strategy for the gates to judge: the design was
# invalid or training broke. On noise that is no evidence of anything.
UNJUDGED_OUTCOMES: frozenset[str] = frozenset({"failed_design", "failed_training"})
# benchmark_return, bars, start and end describe the data, not the strategy: no criterion.
CRITERION_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "trades",
    "profit_factor",
    "exposure",
    EXCESS_RETURN,
)


class BenchmarkWindowError(ValueError):
    """A task's market period holds too few bars of the given data."""


def metric_value(metrics: BacktestMetrics, name: str) -> float:
    """A criterion's metric read from out-of-sample metrics (``excess_return`` is derived)."""
    if name == EXCESS_RETURN:
        return float(metrics.total_return - metrics.benchmark_return)
    if name not in CRITERION_METRICS:
        raise ValueError(f"unknown metric {name!r}; metrics: {', '.join(CRITERION_METRICS)}")
    return float(getattr(metrics, name))


def evaluate(
    task: BenchmarkTask, outcome: str | None, metrics: BacktestMetrics | None
) -> TaskVerdict:
    """Whether the cycle passed the task (``score`` is left to :func:`task_score`).

    A discovery task passes when the cycle ended ``success`` and every criterion holds on
    ``metrics``. A failed outcome is the first reason; the criteria are still checked
    when metrics exist (a backtest-gate failure has them), so the reasons say what was
    missed. A no-discovery task (noise) passes when the lab judged a strategy and did not
    call it a discovery: any outcome but ``success``, except those that had no strategy
    to judge (an invalid design, broken training) and a cycle that broke."""
    if task.expect == "no-discovery":
        return _evaluate_noise(outcome)
    reasons = []
    if outcome != "success":
        reasons.append(f"outcome {outcome or 'missing'}")
    if metrics is None:
        if outcome == "success":
            reasons.append("no out-of-sample metrics")
        return TaskVerdict(passed=False, reasons=reasons)
    reasons += [reason for c in task.criteria if (reason := _unmet(c, metrics)) is not None]
    return TaskVerdict(passed=not reasons, reasons=reasons)


def _judged(outcome: str | None) -> bool:
    """The cycle had a strategy for the gates to judge (it did not break or get skipped)."""
    return outcome is not None and outcome not in UNJUDGED_OUTCOMES | {"skipped_budget"}


def _evaluate_noise(outcome: str | None) -> TaskVerdict:
    if outcome == "success":
        return TaskVerdict(
            passed=False, reasons=["outcome success on noise: a false discovery (expected none)"]
        )
    if not _judged(outcome):
        return TaskVerdict(
            passed=False,
            reasons=[f"outcome {outcome or 'missing'}: no strategy was judged on the noise"],
        )
    return TaskVerdict(passed=True)


def deflated_sharpe(gate: GateResult | None) -> float:
    """The deflated Sharpe probability a statistical gate measured, in [0, 1]; 0 when
    there is no gate or its ``deflated_sharpe`` check did not run."""
    if gate is None:
        return 0.0
    check = next((c for c in gate.checks if c.name == "deflated_sharpe"), None)
    if check is None or check.status == "not_run":
        return 0.0
    return min(1.0, max(0.0, float(check.value)))


def _implausible(gate: GateResult | None) -> bool:
    """The gate flagged the Sharpe as too high to be real (usually a leak)."""
    return gate is not None and any(
        c.name == "sharpe_plausible" and c.status == "failed" for c in gate.checks
    )


def criteria_share(task: BenchmarkTask, metrics: BacktestMetrics | None) -> float:
    """The share of the task's criteria that hold on ``metrics`` (0 without metrics)."""
    if metrics is None or not task.criteria:
        return 0.0
    return sum(_unmet(c, metrics) is None for c in task.criteria) / len(task.criteria)


def task_score(
    task: BenchmarkTask,
    outcome: str | None,
    metrics: BacktestMetrics | None,
    statistical_gate: GateResult | None,
) -> float:
    """The graded score in [0, 1] of one cycle on ``task``: what the optimizer climbs.

    With ``dsr`` the deflated Sharpe probability of the judged iteration (the
    ``deflated_sharpe`` check of ``statistical_gate``; 0 when no iteration reached the
    backtest step or the check could not run)::

        discovery:     score = dsr × (criteria holding on the metrics / criteria)
        no-discovery:  score = 1 − dsr   (0 when no strategy was judged)

    Why this: a pass under honest gates needs dsr ≥ 0.95, so the share of tasks passed is
    near zero for every prompt and selection has nothing to climb; dsr grows smoothly
    with the evidence a strategy has an edge beyond what the lab's trials would produce
    by luck, so prompts that come closer score higher. It is a probability on every task
    whatever its market or criteria, so scores are comparable across tasks and their
    mean is meaningful. It comes from walk-forward out-of-sample returns of the
    development period, like ``metrics``, never from the holdout. On noise there is no
    edge to find, so the less the result looks like one, the better; a design that never
    reached the gates proved nothing either way and earns nothing (else breaking designs
    would be a way to score on noise). A Sharpe flagged as implausible (a likely leak)
    is no evidence for a discovery. The regression run passes the gate of the fit judged
    against its own trials (``experiments.own_trials_gate``), so the score does not
    depend on how many evaluations the optimizer made before this one.
    """
    dsr = deflated_sharpe(statistical_gate)
    if task.expect == "no-discovery":
        return 1.0 - dsr if _judged(outcome) else 0.0
    if _implausible(statistical_gate):
        return 0.0
    return dsr * criteria_share(task, metrics)


def _unmet(criterion: Criterion, metrics: BacktestMetrics) -> str | None:
    """None when the criterion holds (a value AT the threshold holds), else the reason."""
    value = metric_value(metrics, criterion.metric)
    needs = f"needs {criterion.op} {criterion.value:g}"
    if not math.isfinite(value):
        return f"{criterion.metric} {value} ({needs})"
    holds = value >= criterion.value if criterion.op == ">=" else value <= criterion.value
    if holds:
        return None
    sign = "<" if criterion.op == ">=" else ">"
    return (
        f"{criterion.metric} {_shown(value, criterion.value)} {sign} {criterion.value:g} ({needs})"
    )


def _shown(value: float, threshold: float) -> str:
    """The value with enough digits to differ visibly from the threshold it missed."""
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    for digits in range(2, 8):
        text = f"{value:.{digits}f}"
        if float(text) != float(f"{threshold:.{digits}f}"):
            return text
    return repr(value)


def window(frame: pd.DataFrame, task: BenchmarkTask) -> pd.DataFrame:
    """The rows of ``frame`` from ``task.start`` to ``task.end`` (both days included)."""
    index = pd.DatetimeIndex(frame.index)
    start = pd.Timestamp(task.start)
    end = pd.Timestamp(task.end) + pd.Timedelta(days=1)  # the whole end day, whatever the time
    part = frame.loc[(index >= start) & (index < end)]
    if len(part) < MIN_WINDOW_BARS:
        raise BenchmarkWindowError(
            f"task {task.task_id}: {len(part)} bars of {task.symbol} between {task.start} and "
            f"{task.end}; a benchmark window needs at least {MIN_WINDOW_BARS}"
        )
    return part
