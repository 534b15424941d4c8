"""Gates pass exactly at their thresholds and fail just beyond them."""

from __future__ import annotations

import math

import pytest

from stratlab.backtest.gates import backtest_gate, training_gate
from stratlab.models.research import (
    BacktestGateThresholds,
    BacktestMetrics,
    GateResult,
    TrainingGateThresholds,
    TrainingReport,
)

TRAIN = TrainingGateThresholds(
    min_accuracy=0.55,
    max_final_loss=0.6,
    min_loss_decrease=0.2,
    min_validation_trades=3,
    min_validation_score=0.5,
    max_auc_p_value=0.05,
)
SEED_TRAIN = TRAIN.model_copy(update={"ml_skill": "loss_decrease"})
BACKTEST = BacktestGateThresholds(min_win_rate=0.45, max_drawdown=0.3, min_sharpe=0.25)


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


def ml_report(accuracy: float | None, final_loss: float | None, decrease: float | None):
    return TrainingReport(
        kind="ml", accuracy=accuracy, final_loss=final_loss, loss_decrease=decrease
    )


def skill_report(
    validation: float | None, base: float | None, p_value: float | None, auc: float | None = 0.6
) -> TrainingReport:
    return TrainingReport(
        kind="ml",
        validation_log_loss=validation,
        base_rate_log_loss=base,
        auc_p_value=p_value,
        validation_auc=auc,
    )


def rules_report(trades: int, sharpe: float) -> TrainingReport:
    return TrainingReport(
        kind="rules", validation_metrics=BacktestMetrics(trades=trades, sharpe=sharpe)
    )


def test_ml_base_rate_gate_at_and_beyond_thresholds() -> None:
    at = training_gate(skill_report(0.69, 0.69, 0.05), TRAIN)
    assert at.passed and at.gate == "training"
    assert [(c.name, c.value, c.threshold, c.op, c.status) for c in at.checks] == [
        ("log_loss_vs_base_rate", 0.0, 0.0, ">=", "passed"),
        ("auc_p_value", 0.05, 0.05, "<=", "passed"),
    ]
    assert at.checks[1].detail.startswith("validation AUC 0.6000")
    for report, failing in [
        (skill_report(above(0.69), 0.69, 0.05), "log_loss_vs_base_rate"),
        (skill_report(0.69, 0.69, above(0.05)), "auc_p_value"),
        (skill_report(0.69, 0.69, float("nan")), "auc_p_value"),
    ]:
        result = training_gate(report, TRAIN)
        assert not result.passed
        assert [c.name for c in result.failures()] == [failing]


def test_the_base_rate_gate_ignores_accuracy_and_the_loss_curve() -> None:
    """Noise models clear a 45 % accuracy bar; the loss curve measures the optimiser."""
    report = skill_report(0.68, 0.69, 0.01).model_copy(
        update={"accuracy": 0.0, "final_loss": 100.0, "loss_decrease": -1.0}
    )
    assert training_gate(report, TRAIN).passed
    assert not training_gate(report, SEED_TRAIN).passed


def test_a_report_without_skill_metrics_is_not_run_never_passed() -> None:
    """Reports stored before the base-rate fields existed are re-gated as not_run."""
    result = training_gate(ml_report(0.9, 0.1, 0.9), TRAIN)
    assert not result.passed
    assert result.failures() == []
    assert [(c.name, c.status, c.passed, c.value) for c in result.not_run()] == [
        ("log_loss_vs_base_rate", "not_run", False, 0.0),
        ("auc_p_value", "not_run", False, 0.0),
    ]
    assert GateResult.model_validate_json(result.model_dump_json()) == result


def test_ml_seed_gate_at_and_beyond_thresholds() -> None:
    at = training_gate(ml_report(0.55, 0.6, 0.2), SEED_TRAIN)
    assert at.passed and at.gate == "training"
    assert [(c.name, c.value, c.threshold, c.op) for c in at.checks] == [
        ("accuracy", 0.55, 0.55, ">="),
        ("final_loss", 0.6, 0.6, "<="),
        ("loss_decrease", 0.2, 0.2, ">="),
    ]
    for report, failing in [
        (ml_report(below(0.55), 0.6, 0.2), "accuracy"),
        (ml_report(0.55, above(0.6), 0.2), "final_loss"),
        (ml_report(0.55, 0.6, below(0.2)), "loss_decrease"),
    ]:
        result = training_gate(report, SEED_TRAIN)
        assert not result.passed
        assert [c.name for c in result.failures()] == [failing]


def test_rules_training_gate_at_and_beyond_thresholds() -> None:
    at = training_gate(rules_report(3, 0.5), TRAIN)
    assert at.passed
    assert [(c.name, c.value, c.op) for c in at.checks] == [
        ("validation_trades", 3, ">="),
        ("validation_sharpe", 0.5, ">="),
    ]
    assert [c.name for c in training_gate(rules_report(2, 0.5), TRAIN).failures()] == [
        "validation_trades"
    ]
    assert [c.name for c in training_gate(rules_report(3, below(0.5)), TRAIN).failures()] == [
        "validation_sharpe"
    ]


def test_backtest_gate_at_and_beyond_thresholds() -> None:
    at = backtest_gate(BacktestMetrics(win_rate=0.45, max_drawdown=0.3, sharpe=0.25), BACKTEST)
    assert at.passed and at.gate == "backtest"
    assert [(c.name, c.op, c.passed) for c in at.checks] == [
        ("win_rate", ">=", True),
        ("max_drawdown", "<=", True),
        ("sharpe", ">=", True),
    ]
    for metrics, failing in [
        (BacktestMetrics(win_rate=below(0.45), max_drawdown=0.3, sharpe=0.25), "win_rate"),
        (BacktestMetrics(win_rate=0.45, max_drawdown=above(0.3), sharpe=0.25), "max_drawdown"),
        (BacktestMetrics(win_rate=0.45, max_drawdown=0.3, sharpe=below(0.25)), "sharpe"),
    ]:
        result = backtest_gate(metrics, BACKTEST)
        assert not result.passed
        assert [c.name for c in result.failures()] == [failing]


@pytest.mark.parametrize("thresholds", [TRAIN, SEED_TRAIN], ids=["base_rate", "loss_decrease"])
@pytest.mark.parametrize(
    "report",
    [
        ml_report(None, None, None),
        ml_report(float("nan"), 0.1, 0.5),
        skill_report(float("nan"), 0.69, float("inf"), auc=float("nan")),
        TrainingReport(kind="rules"),  # no validation metrics at all
    ],
)
def test_missing_or_nan_metrics_fail_and_stay_json_safe(
    report: TrainingReport, thresholds: TrainingGateThresholds
) -> None:
    result = training_gate(report, thresholds)
    assert not result.passed
    assert all(math.isfinite(c.value) for c in result.checks)
    assert GateResult.model_validate_json(result.model_dump_json()) == result


def test_default_thresholds_accept_a_reasonable_result() -> None:
    metrics = BacktestMetrics(win_rate=0.5, max_drawdown=0.2, sharpe=0.8, trades=10)
    assert backtest_gate(metrics, BacktestGateThresholds()).passed
    assert training_gate(rules_report(5, 0.3), TrainingGateThresholds()).passed
    assert training_gate(skill_report(0.68, 0.69, 0.01), TrainingGateThresholds()).passed
