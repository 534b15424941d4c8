"""The statistical gate: does a walk-forward result beat what luck would produce?

It sits after the seed gates and judges the stitched walk-forward out-of-sample returns
of the development period (``TrainingReport.walk_forward``) against the research
universe's trial ledger:

* ``min_trades``: enough closed out-of-sample trades to speak of a strategy at all.
* ``deflated_sharpe``: the deflated Sharpe probability (Bailey & López de Prado 2014) of
  the per-bar Sharpe of the returns in excess of an exposure-matched buy-and-hold (a
  long-only strategy in the market a share ē of the bars earns ē times the market's
  drift by luck alone). N is, by default, the number of walk-forward records the ledger
  holds for the universe (``trials="fits"``): within a fit the grid's combinations are
  chosen on past bars only, so its out-of-sample record carries no selection among them
  (the grid's own overfitting is what ``pbo`` measures); what the lab selects among, by
  their out-of-sample records, are its fits — iterations, cycles, optimizer and user
  evaluations — and each counts. V is the variance of those records' Sharpe ratios,
  floored by the sampling variance of one record. ``trials="grid"`` deflates by every
  grid combination instead (effective N, correlated ones discounted): a far stricter
  test that, measured on planted edges, has little power left.
* ``pbo``: the grid's probability of backtest overfitting (CSCV) when it has enough
  candidates; otherwise **not run**.
* ``sharpe_plausible``: an annualised Sharpe above the plausibility bound is flagged for a
  human (it usually means a leak the probe could not see), and does not pass.

A check that could not run is ``not_run``: it never counts as passed, and the gate
passes only when the deflated Sharpe check ran and passed and nothing failed.
"""

from __future__ import annotations

import math

from stratlab.backtest.gates import check, not_run
from stratlab.backtest.significance import deflated_sharpe_ratio, null_sharpe_variance
from stratlab.models.research import (
    GateCheck,
    GateResult,
    LookaheadProbe,
    StatisticalGateThresholds,
    TrainingReport,
    TrialLedger,
    WalkForwardReport,
)


def statistical_gate(
    report: TrainingReport, ledger: TrialLedger, thresholds: StatisticalGateThresholds
) -> GateResult:
    """The statistical checks of one fit's walk-forward result against ``ledger``."""
    wf = report.walk_forward
    if wf is None:
        return _nothing_to_judge(thresholds)
    checks = [
        check(
            "min_trades",
            wf.trades,
            thresholds.min_trades,
            ">=",
            detail=f"{wf.trades} closed trades in {wf.oos_bars} walk-forward bars",
        ),
        _deflated_sharpe_check(wf, ledger, thresholds),
        _pbo_check(report, thresholds),
        _plausibility_check(wf, thresholds),
    ]
    passed = all(c.status != "failed" for c in checks) and checks[1].status == "passed"
    return GateResult(gate="statistical", passed=passed, checks=checks)


def lookahead_check(probe: LookaheadProbe | None) -> GateCheck:
    """The look-ahead probe as a training-gate check (``not_run`` when none was made)."""
    if probe is None or probe.cuts == 0:
        return not_run("lookahead", 0, "<=", "no look-ahead probe was made")
    changed = 0 if probe.passed else 1
    detail = probe.detail or f"signals on {probe.cuts} prefixes equal the full run"
    return check("lookahead", changed, 0, "<=", detail=detail)


def with_lookahead(gate: GateResult, probe: LookaheadProbe | None) -> GateResult:
    """``gate`` with the look-ahead check added: a strategy that looks ahead fails it."""
    probed = lookahead_check(probe)
    return GateResult(
        gate=gate.gate,
        passed=gate.passed and probed.status != "failed",
        checks=[*gate.checks, probed],
    )


def _nothing_to_judge(thresholds: StatisticalGateThresholds) -> GateResult:
    detail = "no walk-forward result to judge"
    checks = [
        not_run("min_trades", thresholds.min_trades, ">=", detail),
        not_run("deflated_sharpe", thresholds.min_deflated_sharpe, ">=", detail),
        not_run("pbo", thresholds.max_pbo, "<=", detail),
    ]
    return GateResult(gate="statistical", passed=False, checks=checks)


def _deflated_sharpe_check(
    wf: WalkForwardReport, ledger: TrialLedger, thresholds: StatisticalGateThresholds
) -> GateCheck:
    annual = math.sqrt(wf.periods_per_year)
    excess = thresholds.benchmark == "exposure_matched"
    sharpe = wf.excess_sharpe_per_bar if excess else wf.sharpe_per_bar
    trials, variance, counted = _trials(wf, ledger, thresholds)
    dsr = deflated_sharpe_ratio(
        sharpe=sharpe,
        bars=wf.oos_bars,
        trials=trials,
        trial_variance=variance,
        skew=wf.skew,
        kurtosis=wf.kurtosis,
    )
    against = "an exposure-matched buy-and-hold" if excess else "zero"
    return check(
        "deflated_sharpe",
        dsr.probability,
        thresholds.min_deflated_sharpe,
        ">=",
        detail=f"Sharpe {sharpe * annual:.2f}/yr against {against}; the best of "
        f"{trials:,.1f} {counted} ({ledger.n:,} grid trials in the ledger) would "
        f"reach {dsr.benchmark_sharpe * annual:.2f}/yr by luck",
    )


def _trials(
    wf: WalkForwardReport, ledger: TrialLedger, thresholds: StatisticalGateThresholds
) -> tuple[float, float, str]:
    """The DSR's N (at least 1) and V (floored by one record's sampling variance), and
    what N counts: the ledger's fits, or its effective grid trials."""
    if thresholds.trials == "grid":
        trials, dispersion, counted = ledger.n_effective, ledger.sharpe_var, "effective trials"
    else:
        trials, dispersion, counted = float(ledger.fits), ledger.oos_sharpe_var, "fits"
    return max(trials, 1.0), max(dispersion, null_sharpe_variance(wf.oos_bars)), counted


def _pbo_check(report: TrainingReport, thresholds: StatisticalGateThresholds) -> GateCheck:
    if report.pbo is None:
        return not_run(
            "pbo",
            thresholds.max_pbo,
            "<=",
            f"the grid has {report.grid_size} combination(s); CSCV needs at least "
            f"{thresholds.min_pbo_candidates}",
        )
    return check(
        "pbo",
        report.pbo,
        thresholds.max_pbo,
        "<=",
        detail=f"CSCV over {report.grid_size} combinations, {report.pbo_splits} blocks",
    )


def _plausibility_check(wf: WalkForwardReport, thresholds: StatisticalGateThresholds) -> GateCheck:
    return check(
        "sharpe_plausible",
        wf.sharpe,
        thresholds.implausible_sharpe,
        "<=",
        detail="an annualised Sharpe this high is implausible: flagged for a human "
        "(look for a leak of future data)"
        if wf.sharpe > thresholds.implausible_sharpe
        else "",
    )
