"""The deterministic quality gates between research phases.

The training gate decides whether a fitted strategy is worth an out-of-sample backtest,
the backtest gate whether its out-of-sample result is worth assessing. Every check is
recorded with its value, threshold and operator, and a value exactly AT its threshold
passes. A metric that is missing or not finite fails its check and is recorded as 0.0,
so a gate result always serialises to plain JSON; a validation-skill metric that the
report does not have at all (a report from before those fields existed) is recorded as
``not_run`` instead, which never passes either.

The ml training gate judges skill, not the optimiser: by default
(``ml_skill="base_rate"``) the model must forecast the validation split no worse than
the train split's up-rate does (``log_loss_vs_base_rate >= 0``) and rank it better than
chance (``auc_p_value <= max_auc_p_value``). Seed 002's accuracy, final loss and loss
decrease (``ml_skill="loss_decrease"``) measured how far the loss fell from epoch 1,
which noise and real data alike fail, while its accuracy bar passed most noise models.
"""

from __future__ import annotations

import math
from typing import Literal

from stratlab.models.research import (
    BacktestGateThresholds,
    BacktestMetrics,
    GateCheck,
    GateResult,
    TrainingGateThresholds,
    TrainingReport,
)

Op = Literal[">=", "<="]


def training_gate(report: TrainingReport, thresholds: TrainingGateThresholds) -> GateResult:
    """ml: validation skill against the base rate, or seed 002's accuracy, final loss and
    loss decrease (``thresholds.ml_skill``); rules: validation trades and Sharpe."""
    if report.kind == "ml":
        checks = _ml_checks(report, thresholds)
    else:
        validation = report.validation_metrics
        checks = [
            check(
                "validation_trades",
                None if validation is None else validation.trades,
                thresholds.min_validation_trades,
                ">=",
            ),
            check(
                "validation_sharpe",
                None if validation is None else validation.sharpe,
                thresholds.min_validation_score,
                ">=",
            ),
        ]
    return GateResult(gate="training", passed=all(c.passed for c in checks), checks=checks)


def backtest_gate(metrics: BacktestMetrics, thresholds: BacktestGateThresholds) -> GateResult:
    """Out-of-sample win rate, max drawdown and Sharpe."""
    checks = [
        check("win_rate", metrics.win_rate, thresholds.min_win_rate, ">="),
        check("max_drawdown", metrics.max_drawdown, thresholds.max_drawdown, "<="),
        check("sharpe", metrics.sharpe, thresholds.min_sharpe, ">="),
    ]
    return GateResult(gate="backtest", passed=all(c.passed for c in checks), checks=checks)


def _ml_checks(report: TrainingReport, thresholds: TrainingGateThresholds) -> list[GateCheck]:
    if thresholds.ml_skill == "loss_decrease":
        return [
            check("accuracy", report.accuracy, thresholds.min_accuracy, ">="),
            check("final_loss", report.final_loss, thresholds.max_final_loss, "<="),
            check("loss_decrease", report.loss_decrease, thresholds.min_loss_decrease, ">="),
        ]
    model, base = report.validation_log_loss, report.base_rate_log_loss
    improvement = None if model is None or base is None else base - model
    auc = report.validation_auc
    return [
        # Threshold 0 rather than a tiny epsilon: the only model that ties the base rate
        # exactly forecasts it constantly, ranks nothing, and fails the AUC check instead.
        _reported_check(
            "log_loss_vs_base_rate",
            improvement,
            0.0,
            ">=",
            detail=f"validation log loss {model:.4f}, base rate {base:.4f}"
            if model is not None and base is not None
            else "",
        ),
        _reported_check(
            "auc_p_value",
            report.auc_p_value,
            thresholds.max_auc_p_value,
            "<=",
            detail="" if auc is None else f"validation AUC {auc:.4f}, one-sided test of > 0.5",
        ),
    ]


def _reported_check(
    name: str, value: float | None, threshold: float, op: Op, *, detail: str
) -> GateCheck:
    """Like :func:`check`, but a metric the report does not have is ``not_run``."""
    if value is None:
        return not_run(
            name,
            threshold,
            op,
            "not in the training report (trained before this check existed, "
            "or the validation rows have a single class)",
        )
    return check(name, value, threshold, op, detail=detail)


def check(
    name: str, value: float | None, threshold: float, op: Op, *, detail: str = ""
) -> GateCheck:
    """One check: passed when ``value`` is at or past ``threshold``; a missing or
    non-finite value fails and is recorded as 0.0."""
    if value is None or not math.isfinite(value):
        return GateCheck(
            name=name, value=0.0, threshold=threshold, op=op, passed=False, detail=detail
        )
    passed = value >= threshold if op == ">=" else value <= threshold
    return GateCheck(
        name=name,
        value=float(value),
        threshold=float(threshold),
        op=op,
        passed=passed,
        detail=detail,
    )


def not_run(name: str, threshold: float, op: Op, detail: str) -> GateCheck:
    """A check that could not be made: never passed, ``detail`` says why."""
    return GateCheck(
        name=name,
        value=0.0,
        threshold=float(threshold),
        op=op,
        passed=False,
        status="not_run",
        detail=detail,
    )
