"""The backtest step: the held-out test split, once, with the parameters training chose."""

from __future__ import annotations

import asyncio

from stratlab.backtest.gates import backtest_gate
from stratlab.backtest.runner import BacktestRun, backtest_rules, backtest_test_split
from stratlab.config import Settings
from stratlab.market.splits import Splits
from stratlab.models.records import EquityCurve
from stratlab.models.research import BacktestInput, BacktestResult, StrategySpec
from stratlab.research.data import load_configured_splits
from stratlab.research.training import costs_from
from stratlab.sandbox.executor import SandboxUnavailableError
from stratlab.store.market import MarketRepo
from stratlab.store.research import ResearchRepo
from stratlab.strategies.code import backtest_code
from stratlab.strategies.ml import ml_signals


class BacktestError(Exception):
    """The backtest could not run (missing training, broken model, empty window)."""


class Backtester:
    def __init__(self, research: ResearchRepo, market: MarketRepo, settings: Settings) -> None:
        self._research = research
        self._market = market
        self._settings = settings

    async def backtest(self, inp: BacktestInput) -> BacktestResult:
        thresholds = inp.gate or self._settings.backtest_gate
        existing = await self._research.get_backtest(inp.backtest_id)
        if existing is not None:
            return BacktestResult(
                backtest_id=inp.backtest_id,
                metrics=existing.metrics,
                gate=backtest_gate(existing.metrics, thresholds),
            )
        strategy = await self._research.get_strategy(inp.strategy_id)
        training = await self._research.get_training_run(inp.training_run_id)
        if strategy is None or training is None or training.status != "completed":
            raise BacktestError(f"no completed training run {inp.training_run_id} to backtest")
        spec = strategy.spec
        splits = await load_configured_splits(spec.symbol, self._market, self._settings, inp.period)
        params = dict(training.best_params or {})
        model = await self._research.load_model(inp.training_run_id) if spec.kind == "ml" else None
        try:
            if spec.kind == "code":
                run = await backtest_code(
                    spec,
                    params,
                    splits,
                    costs=costs_from(self._settings),
                    limits=self._settings.sandbox_limits(),
                    mode=self._settings.sandbox_mode,
                )
            else:
                run = await asyncio.to_thread(self._run, spec, params, model, splits)
        except (ValueError, ArithmeticError, SandboxUnavailableError) as err:
            raise BacktestError(f"backtest failed: {err}") from err
        gate = backtest_gate(run.metrics, thresholds)
        await self._research.insert_backtest(
            inp.backtest_id,
            strategy_id=inp.strategy_id,
            training_run_id=inp.training_run_id,
            session_id=inp.session_id,
            metrics=run.metrics,
            gate=gate,
            params=params,
            equity=EquityCurve(
                ts=list(run.equity.index.to_pydatetime()),
                equity=run.equity.to_numpy(dtype=float).tolist(),
                benchmark=run.benchmark.to_numpy(dtype=float).tolist(),
            ),
        )
        return BacktestResult(backtest_id=inp.backtest_id, metrics=run.metrics, gate=gate)

    def _run(
        self, spec: StrategySpec, params: dict[str, float], model: bytes | None, splits: Splits
    ) -> BacktestRun:
        costs = costs_from(self._settings)
        if spec.kind == "ml":
            if model is None:
                raise ValueError("the training run stored no model")
            entries, exits = ml_signals(spec, model, splits.through("test"))
            return backtest_test_split(spec, splits, entries, exits, costs=costs)
        return backtest_rules(spec, params, splits, costs=costs)
