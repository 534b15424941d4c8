"""The training step: fit a strategy on the train split, choose on validation, apply the gate.

``ml`` training runs epoch by epoch, writing a checkpoint row after each; a retried
attempt (the worker died) resumes from the newest checkpoint instead of epoch 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

from stratlab.backtest.engine import Costs
from stratlab.backtest.gates import training_gate
from stratlab.config import Settings
from stratlab.models.research import StrategySpec, TrainingReport, TrainInput, TrainResult
from stratlab.research.data import load_configured_splits
from stratlab.sandbox.executor import SandboxUnavailableError
from stratlab.store.market import MarketRepo
from stratlab.store.research import ResearchRepo
from stratlab.strategies.code import CodeStrategyError, fit_code
from stratlab.strategies.fitting import fit_rules
from stratlab.strategies.ml import MlTrainer

Heartbeat = Callable[[dict[str, Any]], None]


class TrainingError(Exception):
    """The strategy could not be fitted (not a gate failure: the fit itself failed)."""


def costs_from(settings: Settings) -> Costs:
    return Costs.from_bps(settings.fees_bps, settings.slippage_bps)


class Trainer:
    def __init__(self, research: ResearchRepo, market: MarketRepo, settings: Settings) -> None:
        self._research = research
        self._market = market
        self._settings = settings

    async def train(self, inp: TrainInput, *, heartbeat: Heartbeat) -> TrainResult:
        finished = await self._research.get_training_run(inp.training_run_id)
        thresholds = inp.gate or self._settings.training_gate
        if finished is not None and finished.status == "completed" and finished.report:
            return TrainResult(
                training_run_id=inp.training_run_id,
                report=finished.report,
                gate=training_gate(finished.report, thresholds),
            )
        strategy = await self._research.get_strategy(inp.strategy_id)
        if strategy is None:
            raise TrainingError(f"strategy {inp.strategy_id} does not exist")
        spec = strategy.spec
        splits = await load_configured_splits(spec.symbol, self._market, self._settings, inp.period)
        await self._research.upsert_training_run(
            inp.training_run_id,
            strategy_id=inp.strategy_id,
            session_id=inp.session_id,
            status="running",
        )
        started = time.perf_counter()
        model: bytes | None = None
        try:
            if spec.kind == "ml":
                report, model = await self._train_ml(inp, spec, splits, heartbeat)
            elif spec.kind == "code":
                heartbeat({"phase": "sandbox grid"})
                report = await fit_code(
                    spec,
                    splits,
                    costs=costs_from(self._settings),
                    limits=self._settings.sandbox_limits(),
                    mode=self._settings.sandbox_mode,
                    max_grid_size=self._settings.max_grid_size,
                )
            else:
                heartbeat({"phase": "grid"})
                report = await asyncio.to_thread(
                    fit_rules,
                    spec,
                    splits,
                    costs=costs_from(self._settings),
                    max_grid_size=self._settings.max_grid_size,
                )
        except (ValueError, ArithmeticError, SandboxUnavailableError) as err:
            await self._research.upsert_training_run(
                inp.training_run_id,
                strategy_id=inp.strategy_id,
                session_id=inp.session_id,
                status="failed",
            )
            raise TrainingError(_training_error_text(err)) from err
        report = report.model_copy(update={"duration_ms": (time.perf_counter() - started) * 1e3})
        gate = training_gate(report, thresholds)
        await self._research.upsert_training_run(
            inp.training_run_id,
            strategy_id=inp.strategy_id,
            session_id=inp.session_id,
            status="completed",
            report=report,
            gate=gate,
            model=model,
            best_params=report.best_params,
        )
        return TrainResult(training_run_id=inp.training_run_id, report=report, gate=gate)

    async def _train_ml(
        self, inp: TrainInput, spec: Any, splits: Any, heartbeat: Heartbeat
    ) -> tuple[TrainingReport, bytes]:
        checkpoint = await self._research.latest_checkpoint(inp.training_run_id)
        if checkpoint is not None:
            trainer = await asyncio.to_thread(MlTrainer.restore, spec, splits, checkpoint.state)
        else:
            trainer = await asyncio.to_thread(MlTrainer, spec, splits, seed=_seed(spec, inp))
        while not trainer.done:
            stats = await asyncio.to_thread(trainer.train_epoch)
            blob = await asyncio.to_thread(trainer.checkpoint)
            await self._research.save_checkpoint(
                inp.training_run_id, stats.epoch, blob, stats.model_dump()
            )
            heartbeat({"epoch": stats.epoch, "loss": stats.loss})
        return trainer.report(), await asyncio.to_thread(trainer.model_blob)


def _training_error_text(err: Exception) -> str:
    """One line the designer can act on: the kind of failure first (syntax, runtime, ...)."""
    if isinstance(err, CodeStrategyError):
        return f"code failed ({err.kind}): {err.error}"
    return f"training failed: {err}"


def _seed(spec: StrategySpec, inp: TrainInput) -> int:
    """A seed from what is trained: the spec and its data window. The same design on the
    same data fits the same model, in a rerun of this run or in another experiment, which
    is what makes a regression run reproducible."""
    window = inp.period.model_dump_json() if inp.period else ""
    digest = hashlib.sha256(f"{spec.model_dump_json()}|{window}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
