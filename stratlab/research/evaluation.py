"""The backtest step and the holdout: walk-forward verdicts, and the one look at the end.

``Backtester`` judges an iteration on its walk-forward out-of-sample record on the
development period (made by the training step): the seed's backtest gate on its
metrics, then the statistical gate against the research universe's trial ledger. Its
row (metrics, gates, the stitched equity curve) is what the assessor, the designer's
feedback, the choice among iterations and skill ranking read.

``HoldoutEvaluator`` runs the strategy the cycle finally chose, with the parameters chosen
on the whole development period, over the final holdout (the ``test`` split): once per
cycle. Its result is stored apart (``holdout_evaluations``) and reported; nothing feeds
it back to an LLM, chooses or ranks by it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd

from stratlab.backtest.gates import backtest_gate
from stratlab.backtest.runner import DEFAULT_INIT_CASH, BacktestRun, backtest_test_split
from stratlab.backtest.significance import probabilistic_sharpe_ratio, sharpe_per_bar
from stratlab.backtest.statistical_gate import statistical_gate
from stratlab.market.splits import Splits
from stratlab.models.records import EquityCurve
from stratlab.models.research import (
    BacktestInput,
    BacktestResult,
    HoldoutInput,
    HoldoutResult,
    LookaheadProbe,
    StatisticalGateThresholds,
    StrategySpec,
)
from stratlab.research.data import load_configured_splits
from stratlab.research.training import ResearchStep, costs_from, universe_of
from stratlab.sandbox.executor import SandboxUnavailableError
from stratlab.strategies.code import backtest_code
from stratlab.strategies.fitting import backtest_rules
from stratlab.strategies.lookahead import cut_points, probe_ml, probe_rules
from stratlab.strategies.ml import ml_signals


class BacktestError(Exception):
    """The backtest could not run (missing training, broken model, empty window)."""


class Backtester(ResearchStep):
    async def backtest(self, inp: BacktestInput) -> BacktestResult:
        thresholds = inp.gate or self._settings.backtest_gate
        existing = await self._research.get_backtest(inp.backtest_id)
        if existing is not None:
            return BacktestResult(
                backtest_id=inp.backtest_id,
                metrics=existing.metrics,
                gate=backtest_gate(existing.metrics, thresholds),
                statistical_gate=existing.statistical_gate,
                trials=existing.trials or 0,
            )
        strategy = await self._research.get_strategy(inp.strategy_id)
        training = await self._research.get_training_run(inp.training_run_id)
        if strategy is None or training is None or training.status != "completed":
            raise BacktestError(f"no completed training run {inp.training_run_id} to backtest")
        report = training.report
        if report is None or report.validation_metrics is None or report.walk_forward is None:
            raise BacktestError(
                f"training run {inp.training_run_id} has no walk-forward result "
                "(it was trained before walk-forward evaluation existed)"
            )
        metrics = report.validation_metrics
        gate = backtest_gate(metrics, thresholds)
        # An optimizer cycle is judged against its own fits: its regression runs race
        # each other on shared windows, and a seeded generation must score the same
        # whatever order they finish in. Its fits are still counted for everyone else.
        own = inp.session_id if inp.trial_source == "optimizer" else None
        ledger = await self._integrity.ledger(
            universe_of(strategy.spec.symbol, report), strategy.spec.symbol, session_id=own
        )
        stat_thresholds = self._statistical_thresholds(inp.statistical_gate)
        stat = (
            statistical_gate(report, ledger, stat_thresholds) if stat_thresholds.enabled else None
        )
        series = await self._integrity.load_series(inp.training_run_id)
        stored = await self._research.insert_backtest(
            inp.backtest_id,
            strategy_id=inp.strategy_id,
            training_run_id=inp.training_run_id,
            session_id=inp.session_id,
            metrics=metrics,
            gate=gate,
            statistical_gate=stat,
            # the N the deflated Sharpe was judged against
            trials=ledger.fits if stat_thresholds.trials == "fits" else ledger.n,
            params=training.best_params or {},
            equity=None if series is None else _equity_of(series),
        )
        return BacktestResult(
            backtest_id=inp.backtest_id,
            metrics=stored.metrics,
            gate=gate,
            statistical_gate=stored.statistical_gate,
            trials=stored.trials or 0,
        )

    def _statistical_thresholds(
        self, given: StatisticalGateThresholds | None
    ) -> StatisticalGateThresholds:
        return given if given is not None else self._settings.statistical_thresholds()


class HoldoutEvaluator(ResearchStep):
    async def evaluate(self, inp: HoldoutInput) -> HoldoutResult:
        existing = await self._integrity.get_holdout(inp.holdout_id)
        if existing is not None:
            return existing
        strategy = await self._research.get_strategy(inp.strategy_id)
        training = await self._research.get_training_run(inp.training_run_id)
        if strategy is None or training is None or training.status != "completed":
            raise BacktestError(f"no completed training run {inp.training_run_id} to evaluate")
        spec = strategy.spec
        splits = await load_configured_splits(spec.symbol, self._market, self._settings, inp.period)
        params = dict(training.best_params or {})
        model = await self._research.load_model(inp.training_run_id) if spec.kind == "ml" else None
        # The probe's cut points lie in the holdout: the fit's probe covered the rest.
        history = splits.through("test")
        cuts = cut_points(len(history), first=splits.bounds("test")[0])
        try:
            if spec.kind == "code":
                run = await backtest_code(
                    spec,
                    params,
                    splits,
                    costs=costs_from(self._settings),
                    limits=self._settings.sandbox_limits(),
                    mode=self._settings.sandbox_mode,
                    fill_order=self._settings.fill_order,
                    probe_cuts=cuts,
                )
                probe = run.lookahead
            else:
                run = await asyncio.to_thread(self._run, spec, params, model, splits)
                probe = await asyncio.to_thread(_probe, spec, params, model, history, cuts)
        except (ValueError, ArithmeticError, SandboxUnavailableError) as err:
            raise BacktestError(f"holdout backtest failed: {err}") from err
        returns = _bar_returns(run.equity)
        result = HoldoutResult(
            holdout_id=inp.holdout_id,
            strategy_id=inp.strategy_id,
            metrics=run.metrics,
            sharpe_per_bar=sharpe_per_bar(returns),
            psr=probabilistic_sharpe_ratio(
                sharpe=sharpe_per_bar(returns), benchmark_sharpe=0.0, bars=len(returns)
            ),
            lookahead=probe,
            notes=[]
            if probe is None or probe.passed
            else [
                f"flagged for a human: the look-ahead probe failed on the holdout: {probe.detail}"
            ],
        )
        return await self._integrity.insert_holdout(
            result,
            session_id=inp.session_id,
            training_run_id=inp.training_run_id,
            equity=EquityCurve(
                ts=list(run.equity.index.to_pydatetime()),
                equity=run.equity.to_numpy(dtype=float).tolist(),
                benchmark=run.benchmark.to_numpy(dtype=float).tolist(),
            ),
        )

    def _run(
        self, spec: StrategySpec, params: dict[str, float], model: bytes | None, splits: Splits
    ) -> BacktestRun:
        costs = costs_from(self._settings)
        if spec.kind == "ml":
            if model is None:
                raise ValueError("the training run stored no model")
            entries, exits = ml_signals(spec, model, splits.through("test"))
            return backtest_test_split(
                spec, splits, entries, exits, costs=costs, fill_order=self._settings.fill_order
            )
        return backtest_rules(
            spec, params, splits, costs=costs, fill_order=self._settings.fill_order
        )


def _probe(
    spec: StrategySpec,
    params: dict[str, float],
    model: bytes | None,
    history: pd.DataFrame,
    cuts: list[int],
) -> LookaheadProbe:
    if spec.kind == "ml":
        if model is None:
            raise ValueError("the training run stored no model")
        return probe_ml(spec, model, history, cuts)
    return probe_rules(spec, params, history, cuts)


def _bar_returns(equity: pd.Series) -> np.ndarray:
    values = np.concatenate(([DEFAULT_INIT_CASH], equity.to_numpy(dtype=np.float64)))
    return values[1:] / values[:-1] - 1.0


def _equity_of(series: dict[str, Any]) -> EquityCurve:
    """The stitched walk-forward bars as an equity curve and its buy-and-hold benchmark."""
    returns = np.asarray(series["returns"], dtype=np.float64)
    benchmark = np.asarray(series["benchmark"], dtype=np.float64)
    return EquityCurve(
        ts=[pd.Timestamp(t).to_pydatetime() for t in series["ts"]],
        equity=(DEFAULT_INIT_CASH * np.cumprod(1.0 + returns)).tolist(),
        benchmark=(DEFAULT_INIT_CASH * np.cumprod(1.0 + benchmark)).tolist(),
    )
