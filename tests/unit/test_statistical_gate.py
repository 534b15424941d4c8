"""The statistical gate: what it passes, what it refuses, and what it reports as not run."""

from __future__ import annotations

import math

import pytest

from stratlab.backtest.significance import deflated_sharpe_ratio, null_sharpe_variance
from stratlab.backtest.statistical_gate import statistical_gate, with_lookahead
from stratlab.models.research import (
    GateResult,
    LookaheadProbe,
    StatisticalGateThresholds,
    TrainingReport,
    TrialLedger,
    TrialStats,
    WalkForwardReport,
)

DEFAULTS = StatisticalGateThresholds()


def report(
    *, annual: float, bars: int = 2400, trades: int = 20, grid: int = 30, pbo: float | None = 0.2
) -> TrainingReport:
    per_bar = annual / math.sqrt(252)
    return TrainingReport(
        kind="rules",
        grid_size=grid,
        walk_forward=WalkForwardReport(
            oos_bars=bars,
            sharpe=annual,
            sharpe_per_bar=per_bar,
            excess_sharpe_per_bar=per_bar,
            trades=trades,
            periods_per_year=252.0,
        ),
        trials=TrialStats(n_trials=grid, n_effective=grid / 3),
        pbo=pbo,
        pbo_splits=10 if pbo is not None else 0,
    )


def ledger(fits: int = 1, n: int = 30, n_effective: float = 10.0) -> TrialLedger:
    return TrialLedger(universe="u", symbol="s", fits=fits, n=n, n_effective=n_effective)


def statuses(gate: GateResult) -> dict[str, str | None]:
    return {c.name: c.status for c in gate.checks}


def test_a_strong_walk_forward_record_passes_every_check() -> None:
    gate = statistical_gate(report(annual=2.0), ledger(), DEFAULTS)
    assert gate.passed and set(statuses(gate).values()) == {"passed"}
    assert "by luck" in gate.checks[1].detail


def test_noise_is_no_discovery() -> None:
    gate = statistical_gate(report(annual=0.1), ledger(), DEFAULTS)
    assert not gate.passed and statuses(gate)["deflated_sharpe"] == "failed"


def test_the_deflated_sharpe_is_judged_against_the_ledgers_fits() -> None:
    one = statistical_gate(report(annual=0.8), ledger(fits=1), DEFAULTS).checks[1]
    many = statistical_gate(report(annual=0.8), ledger(fits=200), DEFAULTS).checks[1]
    assert many.value < one.value  # the more the lab tried, the less a result means
    # with one fit and the null variance floor it is the PSR against zero
    per_bar = 0.8 / math.sqrt(252)
    expected = deflated_sharpe_ratio(
        sharpe=per_bar, bars=2400, trials=1.0, trial_variance=null_sharpe_variance(2400)
    )
    assert one.value == pytest.approx(expected.probability)


def test_counting_every_grid_point_is_far_stricter() -> None:
    by_grid = DEFAULTS.model_copy(update={"trials": "grid"})
    fits = statistical_gate(report(annual=1.2), ledger(n_effective=400.0), DEFAULTS)
    grid = statistical_gate(report(annual=1.2), ledger(n_effective=400.0), by_grid)
    assert grid.checks[1].value < fits.checks[1].value


def test_too_few_trades_fail_and_a_small_grid_is_not_run_never_passed() -> None:
    gate = statistical_gate(report(annual=2.0, trades=2, grid=4, pbo=None), ledger(), DEFAULTS)
    assert statuses(gate)["min_trades"] == "failed"
    pbo = gate.checks[2]
    assert pbo.status == "not_run" and not pbo.passed and "4 combination" in pbo.detail
    assert not gate.passed


def test_a_not_run_pbo_alone_does_not_block_a_discovery() -> None:
    gate = statistical_gate(report(annual=2.0, grid=4, pbo=None), ledger(), DEFAULTS)
    assert statuses(gate)["pbo"] == "not_run" and gate.passed


def test_an_overfit_grid_fails_pbo() -> None:
    gate = statistical_gate(report(annual=2.0, pbo=0.8), ledger(), DEFAULTS)
    assert statuses(gate)["pbo"] == "failed" and not gate.passed


def test_an_implausible_sharpe_is_flagged_for_a_human() -> None:
    gate = statistical_gate(report(annual=6.5), ledger(), DEFAULTS)
    check = gate.checks[3]
    assert check.name == "sharpe_plausible" and check.status == "failed"
    assert "flagged for a human" in check.detail and not gate.passed


def test_without_a_walk_forward_record_nothing_runs_and_nothing_passes() -> None:
    gate = statistical_gate(TrainingReport(kind="rules"), ledger(), DEFAULTS)
    assert not gate.passed and set(statuses(gate).values()) == {"not_run"}


def test_the_lookahead_check_joins_the_training_gate() -> None:
    gate = GateResult(gate="training", passed=True, checks=[])
    leaking = LookaheadProbe(cuts=30, passed=False, first_bar=812, detail="bar 812 changed")
    assert not with_lookahead(gate, leaking).passed
    assert with_lookahead(gate, leaking).checks[-1].detail == "bar 812 changed"
    clean = with_lookahead(gate, LookaheadProbe(cuts=30, passed=True))
    assert clean.passed and clean.checks[-1].status == "passed"
    missing = with_lookahead(gate, None)
    assert missing.passed and missing.checks[-1].status == "not_run"
