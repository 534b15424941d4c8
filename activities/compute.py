"""Compute-pool activities: training and backtests, CPU work off the event loop.

Training heartbeats every epoch (ml) or every second (rules grid) so a dead worker is
noticed within the heartbeat timeout and the retry resumes from the last checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities._phases import recorded_phase
from stratlab.market.datasets import UnknownSymbolError
from stratlab.models.research import (
    AnalyseInput,
    AnalyseResult,
    BacktestInput,
    BacktestResult,
    HoldoutInput,
    HoldoutResult,
    TrainInput,
    TrainResult,
)
from stratlab.research.analysis import AnalysisStep
from stratlab.research.data import DataWindowError
from stratlab.research.evaluation import Backtester, BacktestError, HoldoutEvaluator
from stratlab.research.training import Trainer, TrainingError
from stratlab.store.sessions import SessionRepo
from stratlab.telemetry.instruments import current


@asynccontextmanager
async def _keepalive(details: dict[str, Any], every: float = 1.0) -> AsyncIterator[None]:
    """Heartbeat the latest details while CPU work runs in a thread."""

    async def beat() -> None:
        while True:
            activity.heartbeat(dict(details))
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class ComputeActivities:
    def __init__(
        self,
        trainer: Trainer,
        backtester: Backtester,
        analysis: AnalysisStep,
        sessions: SessionRepo,
        holdout: HoldoutEvaluator,
    ) -> None:
        self._trainer = trainer
        self._backtester = backtester
        self._analysis = analysis
        self._sessions = sessions
        self._holdout = holdout

    @activity.defn(name=names.ANALYSE_STRATEGY)
    async def analyse_strategy(self, inp: AnalyseInput) -> AnalyseResult:
        async with recorded_phase(self._sessions, inp.session_id, inp.iteration, "analyse") as d:
            result = await self._analysis.analyse(inp)
            d.update(suggestions=[s.model_dump(mode="json") for s in result.suggestions])
            return result

    @activity.defn(name=names.TRAIN_STRATEGY)
    async def train_strategy(self, inp: TrainInput) -> TrainResult:
        details: dict[str, Any] = {"training_run_id": inp.training_run_id}
        async with (
            recorded_phase(self._sessions, inp.session_id, inp.iteration, "train") as d,
            _keepalive(details),
        ):
            try:
                result = await self._trainer.train(inp, heartbeat=details.update)
            except (TrainingError, UnknownSymbolError, DataWindowError) as err:
                raise ApplicationError(str(err), type="TrainingError", non_retryable=True) from err
            current().gate(result.gate)
            d.update(
                gate_passed=result.gate.passed,
                resumed_from_epoch=result.report.resumed_from_epoch,
                attempt=activity.info().attempt,
            )
            return result

    @activity.defn(name=names.RUN_BACKTEST)
    async def run_backtest(self, inp: BacktestInput) -> BacktestResult:
        async with (
            recorded_phase(self._sessions, inp.session_id, inp.iteration, "backtest") as d,
            _keepalive({"backtest_id": inp.backtest_id}),
        ):
            try:
                result = await self._backtester.backtest(inp)
            except (BacktestError, UnknownSymbolError, DataWindowError) as err:
                raise ApplicationError(str(err), type="BacktestError", non_retryable=True) from err
            current().gate(result.gate)
            d.update(gate_passed=result.gate.passed, sharpe=result.metrics.sharpe)
            return result

    @activity.defn(name=names.EVALUATE_HOLDOUT)
    async def evaluate_holdout(self, inp: HoldoutInput) -> HoldoutResult:
        """The chosen strategy on the final holdout, once (a retry returns the stored one)."""
        async with _keepalive({"holdout_id": inp.holdout_id}):
            try:
                return await self._holdout.evaluate(inp)
            except (BacktestError, UnknownSymbolError, DataWindowError) as err:
                raise ApplicationError(str(err), type="BacktestError", non_retryable=True) from err
