"""The training step: fit a strategy on the development period, walk-forward, and gate it.

``rules`` and ``code`` grids are evaluated walk-forward (``stratlab.strategies.fitting``);
an ``ml`` model is fitted on the train split and judged on the validation split (one
fold, labels purged by the fit). Every fit adds its trials to the research universe's
ledger and stores its out-of-sample series for the backtest step, both keyed by the
training run's id so a retry adds nothing.

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
from stratlab.backtest.statistical_gate import with_lookahead
from stratlab.backtest.walkforward import anchored_folds
from stratlab.config import Settings
from stratlab.market.quality import stale_open_notes
from stratlab.market.splits import Splits
from stratlab.models.research import (
    GateResult,
    StrategySpec,
    TrainingGateThresholds,
    TrainingReport,
    TrainInput,
    TrainResult,
)
from stratlab.research.data import load_configured_splits
from stratlab.sandbox.executor import SandboxUnavailableError
from stratlab.store.market import MarketRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.trials import IntegrityRepo, universe_key
from stratlab.strategies.code import CodeStrategyError, fit_code_grid
from stratlab.strategies.fitting import GridFit, WalkForwardSettings, fit_grid, fit_rules_grid
from stratlab.strategies.lookahead import cut_points, probe_ml
from stratlab.strategies.ml import MlTrainer, walk_forward_signals

Heartbeat = Callable[[dict[str, Any]], None]


class TrainingError(Exception):
    """The strategy could not be fitted (not a gate failure: the fit itself failed)."""


def costs_from(settings: Settings) -> Costs:
    return Costs.from_bps(settings.fees_bps, settings.slippage_bps)


def walk_settings(settings: Settings) -> WalkForwardSettings:
    return WalkForwardSettings(
        folds=settings.walk_forward_folds,
        first_test=settings.walk_forward_first_test,
        fill_order=settings.fill_order,
    )


def universe_of(symbol: str, report: TrainingReport) -> str:
    """The research universe a report's trials belong to: the symbol and the first and
    last bar of its development period (train and validation splits)."""
    dev = [s for s in report.splits if s.name != "test"]
    if not dev:
        return universe_key(symbol, "?", "?")
    return universe_key(symbol, dev[0].start, dev[-1].end)


class ResearchStep:
    """A compute step of a cycle: it reads strategies and market data, and writes the
    research and integrity rows (training, backtest, holdout share this)."""

    def __init__(
        self,
        research: ResearchRepo,
        market: MarketRepo,
        settings: Settings,
        integrity: IntegrityRepo,
    ) -> None:
        self._research = research
        self._market = market
        self._settings = settings
        self._integrity = integrity


class Trainer(ResearchStep):
    async def train(self, inp: TrainInput, *, heartbeat: Heartbeat) -> TrainResult:
        finished = await self._research.get_training_run(inp.training_run_id)
        thresholds = inp.gate or self._settings.training_gate
        if finished is not None and finished.status == "completed" and finished.report:
            return TrainResult(
                training_run_id=inp.training_run_id,
                report=finished.report,
                gate=_gate(finished.report, thresholds),
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
            fitted, model = await self._fit(inp, spec, splits, heartbeat)
        except (ValueError, ArithmeticError, SandboxUnavailableError) as err:
            await self._research.upsert_training_run(
                inp.training_run_id,
                strategy_id=inp.strategy_id,
                session_id=inp.session_id,
                status="failed",
            )
            raise TrainingError(_training_error_text(err)) from err
        report = fitted.report.model_copy(
            update={
                "duration_ms": (time.perf_counter() - started) * 1e3,
                "notes": [*fitted.report.notes, *stale_open_notes(splits.through("validation"))],
            }
        )
        gate = _gate(report, thresholds)
        await self._record_integrity(inp, spec, fitted, report)
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

    async def _fit(
        self, inp: TrainInput, spec: StrategySpec, splits: Splits, heartbeat: Heartbeat
    ) -> tuple[GridFit, bytes | None]:
        costs, walk = costs_from(self._settings), walk_settings(self._settings)
        if spec.kind == "ml":
            report, model = await self._train_ml(inp, spec, splits, heartbeat)
            heartbeat({"phase": "validation"})
            fitted = await asyncio.to_thread(
                ml_fit, spec, splits, report, model, costs=costs, walk=walk, seed=_seed(spec, inp)
            )
            return fitted, model
        if spec.kind == "code":
            heartbeat({"phase": "sandbox grid"})
            fitted = await fit_code_grid(
                spec,
                splits,
                costs=costs,
                limits=self._settings.sandbox_limits(),
                mode=self._settings.sandbox_mode,
                max_grid_size=self._settings.max_grid_size,
                walk=walk,
            )
            return fitted, None
        heartbeat({"phase": "grid"})
        fitted = await asyncio.to_thread(
            fit_rules_grid,
            spec,
            splits,
            costs=costs,
            max_grid_size=self._settings.max_grid_size,
            walk=walk,
        )
        return fitted, None

    async def _record_integrity(
        self, inp: TrainInput, spec: StrategySpec, fitted: GridFit, report: TrainingReport
    ) -> None:
        """The fit's trials go to the ledger and its OOS series to the store, before the
        run is marked completed: a retry after a crash repeats both, and adds nothing."""
        oos = fitted.oos
        await self._integrity.save_series(
            inp.training_run_id,
            {
                "ts": [t.isoformat() for t in oos.ts],
                "returns": oos.returns.tolist(),
                "benchmark": oos.benchmark.tolist(),
            },
        )
        if report.trials is not None:
            await self._integrity.record_trials(
                inp.training_run_id,
                universe=universe_of(spec.symbol, report),
                symbol=spec.symbol,
                source=inp.trial_source,
                stats=report.trials,
                session_id=inp.session_id,
                strategy_id=inp.strategy_id,
                oos_sharpe=None
                if report.walk_forward is None
                else report.walk_forward.sharpe_per_bar,
            )

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


def ml_fit(
    spec: StrategySpec,
    splits: Splits,
    report: TrainingReport,
    model: bytes,
    *,
    costs: Costs,
    seed: int,
    walk: WalkForwardSettings = WalkForwardSettings(),
) -> GridFit:
    """An ml design's out-of-sample record, walk-forward like a grid's: in the same
    anchored folds over the development period, a model refitted on each fold's past alone
    (labels that reach into the test block purged) signals the next block
    (:func:`walk_forward_signals`); the design is one trial. ``model``, fitted on the
    train split (the training gate's skill checks), is what the look-ahead probe, the
    holdout and paper trading run."""
    history = splits.through("validation")
    folds = anchored_folds(len(history), folds=walk.folds, first_test=walk.first_test)
    entries, exits = walk_forward_signals(spec, history, folds, seed=seed)
    entries, exits = entries.reshape(-1, 1), exits.reshape(-1, 1)
    horizon = spec.ml.label_horizon if spec.ml else 0
    fitted = fit_grid(spec, splits, [{}], entries, exits, costs=costs, walk=walk, folds=folds)
    start, _ = splits.bounds("validation")
    probe = probe_ml(spec, model, history, cut_points(len(history), first=start))
    walked = fitted.report.walk_forward
    merged = report.model_copy(
        update={
            "best_params": {},
            "train_metrics": fitted.report.train_metrics,
            "validation_metrics": fitted.report.validation_metrics,
            "walk_forward": None
            if walked is None
            else walked.model_copy(update={"purge_bars": horizon}),
            "trials": fitted.report.trials,
            "lookahead": probe,
        }
    )
    return GridFit(report=merged, oos=fitted.oos)


def _gate(report: TrainingReport, thresholds: TrainingGateThresholds) -> GateResult:
    return with_lookahead(training_gate(report, thresholds), report.lookahead)


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
