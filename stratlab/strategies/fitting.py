"""Fitting of ``rules`` and ``code`` strategies: walk-forward over a parameter grid.

Signals for every combination are computed ONCE on the development period (train and
validation splits; the holdout, ``splits.test``, is never read), then the grid is
simulated in one batched run over the development period and evaluated walk-forward
(``stratlab.backtest.walkforward``): on each anchored fold the combination with the best
Sharpe on the past is chosen and judged on the fold's test block. The stitched test
blocks are the strategy's out-of-sample record: ``TrainingReport.validation_metrics``
and ``walk_forward`` describe them, and they are what the gates, the statistics, the
designer's feedback and every later choice read. ``best_params`` is the combination chosen
on the whole development period: what the holdout evaluates, once, at the end of a cycle.

Every combination is a trial: ``TrainingReport.trials`` carries their count, their
Sharpe ratios' dispersion and how correlated they are, for the trial ledger, and ``pbo``
the probability of backtest overfitting of the grid (CSCV) when it has enough
candidates. ``fit_grid`` is the part shared with ``stratlab.strategies.code``, whose
signals come from the sandbox instead of ``rules_signals``.

``backtest_rules`` is the rules kind's backtest step: the fitted parameters' signals are
computed on the history through the test split, so indicators warm up on past bars, and
simulated on the held-out test split only (``stratlab.backtest.runner``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratlab.backtest.engine import Costs, FillOrder, simulate
from stratlab.backtest.metrics import compute_metrics, metrics_from_portfolio, periods_per_year
from stratlab.backtest.pbo import Pbo, pbo_cscv
from stratlab.backtest.runner import DEFAULT_INIT_CASH, BacktestRun, backtest_test_split
from stratlab.backtest.significance import (
    average_correlation,
    effective_trials,
    excess_returns,
    return_moments,
    sharpe_per_bar,
)
from stratlab.backtest.walkforward import (
    Fold,
    GridPaths,
    WalkForward,
    anchored_folds,
    column_sharpes,
    grid_paths,
    walk_forward,
)
from stratlab.market.splits import Splits
from stratlab.models.research import (
    BacktestMetrics,
    LookaheadProbe,
    StrategySpec,
    TrainingReport,
    TrialStats,
    WalkForwardFold,
    WalkForwardReport,
)
from stratlab.strategies.lookahead import cut_points, probe_rules
from stratlab.strategies.rules import parameter_grid, rules_signals
from stratlab.strategies.validation import validate_spec


@dataclass(frozen=True)
class WalkForwardSettings:
    """How the development period is walked: ``folds`` anchored test blocks tiling its
    last ``1 - first_test``; CSCV with ``pbo_splits`` blocks once the grid has
    ``min_pbo_candidates`` combinations; ``fill_order`` is the engine's order of an exit
    at the open and an intrabar stop on the same bar."""

    folds: int = 5
    first_test: float = 0.4
    pbo_splits: int = 10
    min_pbo_candidates: int = 8
    fill_order: FillOrder = "conservative"


@dataclass(frozen=True)
class OosSeries:
    """The stitched out-of-sample bars: the strategy's and buy-and-hold's bar returns."""

    ts: pd.DatetimeIndex
    returns: np.ndarray
    benchmark: np.ndarray
    in_market: np.ndarray


@dataclass(frozen=True)
class GridFit:
    """A fit's report and the out-of-sample series behind it (too large for history)."""

    report: TrainingReport
    oos: OosSeries


def fit_rules(
    spec: StrategySpec,
    splits: Splits,
    *,
    costs: Costs,
    max_grid_size: int = 4096,
    walk: WalkForwardSettings = WalkForwardSettings(),
) -> TrainingReport:
    """Fit a ``rules`` spec on the development period of ``splits`` and report the pick.

    Raises ``StrategyValidationError`` when the spec is invalid or its grid is larger
    than ``max_grid_size``, and ``ValueError`` for a spec that is not of kind ``rules``.
    """
    return fit_rules_grid(spec, splits, costs=costs, max_grid_size=max_grid_size, walk=walk).report


def fit_rules_grid(
    spec: StrategySpec,
    splits: Splits,
    *,
    costs: Costs,
    max_grid_size: int = 4096,
    walk: WalkForwardSettings = WalkForwardSettings(),
) -> GridFit:
    """``fit_rules`` with the out-of-sample series the report summarises."""
    started = time.perf_counter()
    if spec.kind != "rules":
        raise ValueError(f"fit_rules fits rules strategies, got kind {spec.kind!r}")
    validate_spec(spec, max_grid_size=max_grid_size)
    grid = parameter_grid(spec)
    history = splits.through("validation")
    entries, exits = rules_signals(spec, history, grid)
    fitted = fit_grid(spec, splits, grid, entries, exits, costs=costs, started=started, walk=walk)
    # Cheap, and it guards the indicator registry against a regression that peeks ahead.
    probe = probe_rules(spec, fitted.report.best_params, history, cut_points(len(history)))
    return with_probe(fitted, probe)


def backtest_rules(
    spec: StrategySpec,
    params: Mapping[str, float],
    splits: Splits,
    *,
    costs: Costs,
    init_cash: float = DEFAULT_INIT_CASH,
    fill_order: FillOrder = "conservative",
) -> BacktestRun:
    """Backtest a ``rules`` spec with fixed ``params`` on the test split."""
    history = splits.through("test")
    entries, exits = rules_signals(spec, history, [dict(params)])
    return backtest_test_split(
        spec, splits, entries, exits, costs=costs, init_cash=init_cash, fill_order=fill_order
    )


def with_probe(fitted: GridFit, probe: LookaheadProbe | None) -> GridFit:
    """``fitted`` with its look-ahead probe in the report."""
    report = fitted.report.model_copy(update={"lookahead": probe})
    return GridFit(report=report, oos=fitted.oos)


def fit_grid(
    spec: StrategySpec,
    splits: Splits,
    grid: list[dict[str, float]],
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    costs: Costs,
    started: float | None = None,
    walk: WalkForwardSettings = WalkForwardSettings(),
    folds: list[Fold] | None = None,
) -> GridFit:
    """Evaluate a grid whose signals are already computed, walk-forward, and report.

    ``entries``/``exits`` are bool arrays of shape (bars of the development period,
    combinations), column ``i`` for ``grid[i]``; every kind ends here (ml as a grid of one
    whose signals come from a model refitted per fold). ``started`` is the
    ``time.perf_counter()`` of the fit's start, for ``duration_ms``; ``folds`` replaces the
    anchored plan of ``walk`` (ml passes the plan its models were refitted on).
    """
    started = time.perf_counter() if started is None else started
    history = splits.through("validation")
    _check_signal_shapes(entries, exits, expected=(len(history), len(grid)))
    pf = simulate(
        history,
        entries,
        exits,
        costs=costs,
        stop_loss=spec.stop_loss,
        take_profit=spec.take_profit,
        init_cash=DEFAULT_INIT_CASH,
        fill_order=walk.fill_order,
    )
    paths = grid_paths(pf)
    if folds is None:
        folds = anchored_folds(len(history), folds=walk.folds, first_test=walk.first_test)
    walked = walk_forward(paths, folds)
    oos = _oos_series(history, walked)
    oos_metrics = _oos_metrics(history, walked, oos)
    best = walked.final_column
    pbo = _grid_pbo(paths, walk)
    return GridFit(
        report=TrainingReport(
            kind=spec.kind,
            splits=splits.describe(),
            grid_size=len(grid),
            best_params=_params(grid[best]),
            train_metrics=metrics_from_portfolio(pf, column=best, benchmark_close=history["close"]),
            validation_metrics=oos_metrics,
            walk_forward=_walk_forward_report(walked, oos, grid, paths, oos_metrics.sharpe),
            trials=trial_stats(paths.returns),
            pbo=None if pbo is None else pbo.probability,
            pbo_splits=0 if pbo is None else pbo.splits,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        ),
        oos=oos,
    )


def trial_stats(returns: np.ndarray) -> TrialStats:
    """What a grid adds to the trial ledger: one trial per column of ``returns``."""
    sharpes = column_sharpes(returns)
    count = int(sharpes.size)
    rho = average_correlation(returns) if count > 1 else 0.0
    return TrialStats(
        n_trials=count,
        n_effective=effective_trials(trials=count, avg_correlation=rho),
        sharpe_mean=float(sharpes.mean()) if count else 0.0,
        sharpe_var=float(sharpes.var(ddof=1)) if count > 1 else 0.0,
        sharpe_sum=float(sharpes.sum()),
        sharpe_sq_sum=float(np.square(sharpes).sum()),
        avg_correlation=float(rho),
        bars=int(returns.shape[0]),
    )


def oos_statistics(oos: OosSeries) -> dict[str, float]:
    """Per-bar Sharpe of the OOS returns and of their excess over an exposure-matched
    buy-and-hold, with the excess returns' skew and (non-excess) kurtosis."""
    exposure = float(oos.in_market.mean()) if oos.in_market.size else 0.0
    excess = excess_returns(oos.returns, oos.benchmark, exposure)
    skew, kurtosis = return_moments(excess)
    return {
        "sharpe_per_bar": sharpe_per_bar(oos.returns),
        "excess_sharpe_per_bar": sharpe_per_bar(excess),
        "skew": skew,
        "kurtosis": kurtosis,
        "exposure": exposure,
    }


def _check_signal_shapes(
    entries: np.ndarray, exits: np.ndarray, *, expected: tuple[int, int]
) -> None:
    if np.shape(entries) != expected or np.shape(exits) != expected:
        raise ValueError(
            f"signals of shape {np.shape(entries)}/{np.shape(exits)}; expected {expected}"
        )


def _oos_metrics(history: pd.DataFrame, walked: WalkForward, oos: OosSeries) -> BacktestMetrics:
    """The metrics of the stitched out-of-sample record, as one equity curve."""
    return compute_metrics(
        equity=pd.Series(DEFAULT_INIT_CASH * np.cumprod(1.0 + oos.returns), index=oos.ts),
        trade_returns=walked.trade_returns,
        in_market=walked.in_market,
        # buy-and-hold over the same bar returns: from the close before the first OOS bar
        benchmark_close=history["close"].iloc[walked.start - 1 : walked.end],
        initial_value=DEFAULT_INIT_CASH,
    )


def _grid_pbo(paths: GridPaths, walk: WalkForwardSettings) -> Pbo | None:
    """CSCV over the grid's columns, once it has ``walk.min_pbo_candidates`` of them."""
    if paths.combinations < walk.min_pbo_candidates:
        return None
    return pbo_cscv(paths.returns, splits=walk.pbo_splits)


def _oos_series(history: pd.DataFrame, walked: WalkForward) -> OosSeries:
    close = history["close"].to_numpy(dtype=np.float64)
    rows = slice(walked.start, walked.end)
    previous = close[walked.start - 1 : walked.end - 1]
    benchmark = np.divide(
        close[rows], previous, out=np.ones(walked.end - walked.start), where=previous > 0
    )
    return OosSeries(
        ts=pd.DatetimeIndex(history.index[rows]),
        returns=walked.returns,
        benchmark=np.nan_to_num(benchmark - 1.0),
        in_market=walked.in_market,
    )


def _walk_forward_report(
    walked: WalkForward,
    oos: OosSeries,
    grid: list[dict[str, float]],
    paths: GridPaths,
    annual_sharpe: float,
) -> WalkForwardReport:
    folds = [
        WalkForwardFold(
            fit_end=fold.fit_end,
            test_start=fold.test_start,
            test_end=fold.test_end,
            params=_params(grid[column]),
            sharpe=float(
                column_sharpes(paths.returns[:, [column]], fold.test_start, fold.test_end)[0]
            ),
        )
        for fold, column in zip(walked.folds, walked.columns, strict=True)
    ]
    stats = oos_statistics(oos)
    per_bar = stats["sharpe_per_bar"]
    return WalkForwardReport(
        folds=folds,
        oos_bars=int(oos.returns.size),
        sharpe=annual_sharpe,
        sharpe_per_bar=per_bar,
        excess_sharpe_per_bar=stats["excess_sharpe_per_bar"],
        skew=stats["skew"],
        kurtosis=stats["kurtosis"],
        exposure=stats["exposure"],
        trades=int(walked.trade_returns.size),
        periods_per_year=periods_per_year(oos.ts),
    )


def _params(combination: dict[str, float]) -> dict[str, float]:
    return {name: float(value) for name, value in combination.items()}
