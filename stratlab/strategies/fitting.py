"""In-sample fitting of ``rules`` and ``code`` strategies: pick one combination of a grid.

The whole grid is evaluated at once: signals for every combination are computed ONCE on
the history through the validation split (the test split is never read), then one
batched vectorbt simulation per window (train, validation) scores every combination.
Each window starts flat with the same cash; a signal decided on the last bar before a
window may fill at its first open (see ``stratlab.backtest.engine``). ``fit_signals`` is
that second half, shared with ``stratlab.strategies.code``, whose signals come from the
sandbox instead of ``rules_signals``.

Selection: the best validation Sharpe among combinations with at least one closed
validation trade, ties broken by train Sharpe; when no combination trades in validation,
the best train Sharpe. Ranking the validation window keeps the choice out of sample with
respect to the bars it was fitted on, and the untouched test split stays for the backtest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import vectorbt as vbt

from stratlab.backtest.engine import Costs, simulate
from stratlab.backtest.metrics import closed_trades, metrics_from_portfolio, score_columns
from stratlab.market.splits import Splits
from stratlab.models.research import StrategySpec, TrainingReport
from stratlab.strategies.rules import parameter_grid, rules_signals
from stratlab.strategies.validation import validate_spec


@dataclass(frozen=True)
class _WindowRun:
    """One batched simulation of the whole grid over one window, and its scores."""

    pf: vbt.Portfolio
    sharpe: np.ndarray
    trades: np.ndarray
    close: pd.Series


def fit_rules(
    spec: StrategySpec,
    splits: Splits,
    *,
    costs: Costs,
    max_grid_size: int = 4096,
) -> TrainingReport:
    """Fit a ``rules`` spec on ``splits`` (train + validation only) and report the pick.

    Raises ``StrategyValidationError`` when the spec is invalid or its grid is larger
    than ``max_grid_size``, and ``ValueError`` for a spec that is not of kind ``rules``.
    """
    started = time.perf_counter()
    if spec.kind != "rules":
        raise ValueError(f"fit_rules fits rules strategies, got kind {spec.kind!r}")
    validate_spec(spec, max_grid_size=max_grid_size)
    grid = parameter_grid(spec)
    entries, exits = rules_signals(spec, splits.through("validation"), grid)
    return fit_signals(spec, splits, grid, entries, exits, costs=costs, started=started)


def fit_signals(
    spec: StrategySpec,
    splits: Splits,
    grid: list[dict[str, float]],
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    costs: Costs,
    started: float | None = None,
) -> TrainingReport:
    """Score a grid whose signals are already computed and report the pick.

    ``entries``/``exits`` are bool arrays of shape (bars through the validation split,
    combinations), column ``i`` for ``grid[i]``; the rules and code kinds both end here.
    ``started`` is the ``time.perf_counter()`` of the fit's start, for ``duration_ms``.
    """
    started = time.perf_counter() if started is None else started
    history = splits.through("validation")
    expected = (len(history), len(grid))
    if np.shape(entries) != expected or np.shape(exits) != expected:
        raise ValueError(
            f"signals of shape {np.shape(entries)}/{np.shape(exits)}; expected {expected}"
        )
    runs = {
        name: _run_window(spec, history, entries, exits, splits.bounds(name), costs)
        for name in ("train", "validation")
    }
    best = select_combination(
        validation_sharpe=runs["validation"].sharpe,
        validation_trades=runs["validation"].trades,
        train_sharpe=runs["train"].sharpe,
    )
    metrics = {
        name: metrics_from_portfolio(run.pf, column=best, benchmark_close=run.close)
        for name, run in runs.items()
    }
    return TrainingReport(
        kind=spec.kind,
        splits=splits.describe(),
        grid_size=len(grid),
        best_params={name: float(value) for name, value in grid[best].items()},
        train_metrics=metrics["train"],
        validation_metrics=metrics["validation"],
        duration_ms=(time.perf_counter() - started) * 1000.0,
    )


def select_combination(
    *,
    validation_sharpe: np.ndarray,
    validation_trades: np.ndarray,
    train_sharpe: np.ndarray,
) -> int:
    """Index of the chosen combination (see the module docstring for the rule)."""
    validation_sharpe = np.nan_to_num(np.asarray(validation_sharpe, dtype=np.float64))
    train_sharpe = np.nan_to_num(np.asarray(train_sharpe, dtype=np.float64))
    traded = np.asarray(validation_trades) >= 1
    if not traded.any():
        return int(np.argmax(train_sharpe))
    # lexsort sorts by its last key first; untraded combinations rank below every traded one.
    primary = np.where(traded, validation_sharpe, -np.inf)
    order = np.lexsort((np.arange(primary.size)[::-1], train_sharpe, primary))
    return int(order[-1])


def _run_window(
    spec: StrategySpec,
    history: pd.DataFrame,
    entries: np.ndarray,
    exits: np.ndarray,
    window: tuple[int, int],
    costs: Costs,
) -> _WindowRun:
    pf = simulate(
        history,
        entries,
        exits,
        costs=costs,
        stop_loss=spec.stop_loss,
        take_profit=spec.take_profit,
        window=window,
    )
    start, end = window
    return _WindowRun(
        pf=pf,
        sharpe=score_columns(pf),
        trades=closed_trades(pf),
        close=history["close"].iloc[start:end],
    )
