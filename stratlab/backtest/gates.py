"""The deterministic quality gates between research phases.

The training gate decides whether a fitted strategy is worth an out-of-sample backtest,
the backtest gate whether its out-of-sample result is worth assessing. Every check is
recorded with its value, threshold and operator, and a value exactly AT its threshold
passes. A metric that is missing or not finite fails its check and is recorded as 0.0,
so a gate result always serialises to plain JSON.
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
    """ml: accuracy, final loss and loss decrease; rules: validation trades and Sharpe."""
    if report.kind == "ml":
        checks = [
            _check("accuracy", report.accuracy, thresholds.min_accuracy, ">="),
            _check("final_loss", report.final_loss, thresholds.max_final_loss, "<="),
            _check("loss_decrease", report.loss_decrease, thresholds.min_loss_decrease, ">="),
        ]
    else:
        validation = report.validation_metrics
        checks = [
            _check(
                "validation_trades",
                None if validation is None else validation.trades,
                thresholds.min_validation_trades,
                ">=",
            ),
            _check(
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
        _check("win_rate", metrics.win_rate, thresholds.min_win_rate, ">="),
        _check("max_drawdown", metrics.max_drawdown, thresholds.max_drawdown, "<="),
        _check("sharpe", metrics.sharpe, thresholds.min_sharpe, ">="),
    ]
    return GateResult(gate="backtest", passed=all(c.passed for c in checks), checks=checks)


def _check(name: str, value: float | None, threshold: float, op: Op) -> GateCheck:
    if value is None or not math.isfinite(value):
        return GateCheck(name=name, value=0.0, threshold=threshold, op=op, passed=False)
    passed = value >= threshold if op == ">=" else value <= threshold
    return GateCheck(
        name=name, value=float(value), threshold=float(threshold), op=op, passed=passed
    )
