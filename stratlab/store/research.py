"""Research artifacts: strategies, training runs and checkpoints, backtests, assessments.

Ids are made by the workflow, so a retried activity writes the same row again: inserts of
things that are decided once (a strategy, a backtest, an assessment) keep the first row
and return it, so a retry that produced a different answer still reports the stored one;
a training run is upserted to its latest state; a checkpoint overwrites its epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from stratlab.models.records import (
    AssessmentRecord,
    BacktestRecord,
    Checkpoint,
    EquityCurve,
    StrategyRecord,
    TrainingRunRecord,
    TrainingStatus,
)
from stratlab.models.research import (
    Assessment,
    BacktestMetrics,
    GateResult,
    StrategySpec,
    TrainingReport,
)
from stratlab.store._util import fetch_all, fetch_one, jsonb
from stratlab.store.db import ConnectionSource

_INSERT_STRATEGY = """
INSERT INTO strategies (strategy_id, session_id, iteration, name, kind, symbol, spec,
                        created_at)
VALUES (%(strategy_id)s, %(session_id)s, %(iteration)s, %(name)s, %(kind)s, %(symbol)s,
        %(spec)s, COALESCE(%(created_at)s, now()))
ON CONFLICT (strategy_id) DO NOTHING
"""
_GET_STRATEGY = "SELECT * FROM strategies WHERE strategy_id = %(strategy_id)s"
_STRATEGIES_BY_SESSION = """
SELECT * FROM strategies WHERE session_id = %(session_id)s ORDER BY iteration, created_at
"""

# Only what the caller knows overwrites: a final upsert without a model keeps the one
# stored earlier, and the first created_at survives.
_UPSERT_TRAINING_RUN = """
INSERT INTO training_runs AS t (training_run_id, strategy_id, session_id, status, report,
                                gate, model, best_params, finished_at)
VALUES (%(training_run_id)s, %(strategy_id)s, %(session_id)s, %(status)s, %(report)s,
        %(gate)s, %(model)s, %(best_params)s, %(finished_at)s)
ON CONFLICT (training_run_id) DO UPDATE
   SET status = EXCLUDED.status,
       report = COALESCE(EXCLUDED.report, t.report),
       gate = COALESCE(EXCLUDED.gate, t.gate),
       model = COALESCE(EXCLUDED.model, t.model),
       best_params = COALESCE(EXCLUDED.best_params, t.best_params),
       finished_at = COALESCE(EXCLUDED.finished_at, t.finished_at)
"""
# The model bytes stay in the table: listing runs should not drag them along.
_SELECT_TRAINING_RUNS = """
SELECT training_run_id, strategy_id, session_id, status, report, gate, best_params,
       model IS NOT NULL AS has_model, created_at, finished_at
  FROM training_runs
"""
_GET_TRAINING_RUN = _SELECT_TRAINING_RUNS + " WHERE training_run_id = %(training_run_id)s"
_TRAINING_RUNS_BY_SESSION = (
    _SELECT_TRAINING_RUNS + " WHERE session_id = %(session_id)s ORDER BY created_at"
)
_LOAD_MODEL = "SELECT model FROM training_runs WHERE training_run_id = %(training_run_id)s"

# A re-run epoch (after a retry resumed from the one before) replaces the earlier state.
_SAVE_CHECKPOINT = """
INSERT INTO training_checkpoints (training_run_id, epoch, state, metrics)
VALUES (%(training_run_id)s, %(epoch)s, %(state)s, %(metrics)s)
ON CONFLICT (training_run_id, epoch) DO UPDATE
   SET state = EXCLUDED.state, metrics = EXCLUDED.metrics, created_at = now()
"""
_LATEST_CHECKPOINT = """
SELECT epoch, state, metrics FROM training_checkpoints
 WHERE training_run_id = %(training_run_id)s
 ORDER BY epoch DESC LIMIT 1
"""

_INSERT_BACKTEST = """
INSERT INTO backtests (backtest_id, strategy_id, training_run_id, session_id, metrics, gate,
                       statistical_gate, trials, params, equity, created_at)
VALUES (%(backtest_id)s, %(strategy_id)s, %(training_run_id)s, %(session_id)s, %(metrics)s,
        %(gate)s, %(statistical_gate)s, %(trials)s, %(params)s, %(equity)s,
        COALESCE(%(created_at)s, now()))
ON CONFLICT (backtest_id) DO NOTHING
"""
# The equity curve is thousands of points: only load_equity reads it.
_SELECT_BACKTESTS = """
SELECT backtest_id, strategy_id, training_run_id, session_id, metrics, gate,
       statistical_gate, trials, params, created_at
  FROM backtests
"""
_GET_BACKTEST = _SELECT_BACKTESTS + " WHERE backtest_id = %(backtest_id)s"
_BACKTESTS_BY_SESSION = _SELECT_BACKTESTS + " WHERE session_id = %(session_id)s ORDER BY created_at"
_LOAD_EQUITY = "SELECT equity FROM backtests WHERE backtest_id = %(backtest_id)s"

_INSERT_ASSESSMENT = """
INSERT INTO assessments (assessment_id, session_id, iteration, strategy_id, backtest_id,
                         assessment, created_at)
VALUES (%(assessment_id)s, %(session_id)s, %(iteration)s, %(strategy_id)s, %(backtest_id)s,
        %(assessment)s, COALESCE(%(created_at)s, now()))
ON CONFLICT (assessment_id) DO NOTHING
"""
_GET_ASSESSMENT = "SELECT * FROM assessments WHERE assessment_id = %(assessment_id)s"
_ASSESSMENTS_BY_SESSION = """
SELECT * FROM assessments WHERE session_id = %(session_id)s ORDER BY iteration, created_at
"""


class ResearchRepo:
    """Strategies and what became of them: training, backtests, assessments."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    # --- strategies -------------------------------------------------------------------

    async def insert_strategy(
        self,
        strategy_id: str,
        spec: StrategySpec,
        *,
        session_id: str | None = None,
        iteration: int = 0,
        created_at: datetime | None = None,
    ) -> StrategyRecord:
        """Store a designed strategy once; returns the stored row (the first one written
        under this id, even if a retried design produced another spec)."""
        params = {
            "strategy_id": strategy_id,
            "session_id": session_id,
            "iteration": iteration,
            "name": spec.name,
            "kind": spec.kind,
            "symbol": spec.symbol,
            "spec": jsonb(spec),
            "created_at": created_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_STRATEGY, params)
            row = await (await conn.execute(_GET_STRATEGY, params)).fetchone()
        return StrategyRecord.model_validate(row)

    async def get_strategy(self, strategy_id: str) -> StrategyRecord | None:
        return await fetch_one(
            self._pool, _GET_STRATEGY, {"strategy_id": strategy_id}, StrategyRecord
        )

    async def strategies_by_session(self, session_id: str) -> list[StrategyRecord]:
        return await fetch_all(
            self._pool, _STRATEGIES_BY_SESSION, {"session_id": session_id}, StrategyRecord
        )

    # --- training ---------------------------------------------------------------------

    async def upsert_training_run(
        self,
        training_run_id: str,
        *,
        strategy_id: str,
        status: TrainingStatus,
        session_id: str | None = None,
        report: TrainingReport | None = None,
        gate: GateResult | None = None,
        model: bytes | None = None,
        best_params: Mapping[str, Any] | None = None,
        finished_at: datetime | None = None,
    ) -> TrainingRunRecord:
        """Create or update a training run: call it with ``status="running"`` when
        training starts and with the final status, report and gate when it ends. Fields
        passed as ``None`` keep their stored value."""
        params = {
            "training_run_id": training_run_id,
            "strategy_id": strategy_id,
            "session_id": session_id,
            "status": status,
            "report": jsonb(report),
            "gate": jsonb(gate),
            "model": model,
            "best_params": jsonb(best_params),
            "finished_at": finished_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_UPSERT_TRAINING_RUN, params)
            row = await (await conn.execute(_GET_TRAINING_RUN, params)).fetchone()
        return TrainingRunRecord.model_validate(row)

    async def get_training_run(self, training_run_id: str) -> TrainingRunRecord | None:
        params = {"training_run_id": training_run_id}
        return await fetch_one(self._pool, _GET_TRAINING_RUN, params, TrainingRunRecord)

    async def training_runs_by_session(self, session_id: str) -> list[TrainingRunRecord]:
        params = {"session_id": session_id}
        return await fetch_all(self._pool, _TRAINING_RUNS_BY_SESSION, params, TrainingRunRecord)

    async def load_model(self, training_run_id: str) -> bytes | None:
        """The fitted model's bytes, or ``None`` (unknown run, or a rules strategy)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LOAD_MODEL, {"training_run_id": training_run_id})
            row = await cur.fetchone()
        return None if row is None or row["model"] is None else bytes(row["model"])

    async def save_checkpoint(
        self,
        training_run_id: str,
        epoch: int,
        state: bytes,
        metrics: BaseModel | Mapping[str, Any] | None = None,
    ) -> None:
        params = {
            "training_run_id": training_run_id,
            "epoch": epoch,
            "state": state,
            "metrics": jsonb(metrics if metrics is not None else {}),
        }
        async with self._pool.connection() as conn:
            await conn.execute(_SAVE_CHECKPOINT, params)

    async def latest_checkpoint(self, training_run_id: str) -> Checkpoint | None:
        """The highest saved epoch as ``(epoch, state, metrics)``, or ``None``."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LATEST_CHECKPOINT, {"training_run_id": training_run_id})
            row = await cur.fetchone()
        if row is None:
            return None
        return Checkpoint(epoch=row["epoch"], state=bytes(row["state"]), metrics=row["metrics"])

    # --- backtests --------------------------------------------------------------------

    async def insert_backtest(
        self,
        backtest_id: str,
        *,
        strategy_id: str,
        metrics: BacktestMetrics,
        training_run_id: str | None = None,
        session_id: str | None = None,
        gate: GateResult | None = None,
        params: Mapping[str, Any] | None = None,
        equity: EquityCurve | None = None,
        created_at: datetime | None = None,
        statistical_gate: GateResult | None = None,
        trials: int | None = None,
    ) -> BacktestRecord:
        """Store a backtest once (with its equity curve); returns the stored row."""
        values = {
            "backtest_id": backtest_id,
            "strategy_id": strategy_id,
            "training_run_id": training_run_id,
            "session_id": session_id,
            "metrics": jsonb(metrics),
            "gate": jsonb(gate),
            "statistical_gate": jsonb(statistical_gate),
            "trials": trials,
            "params": jsonb(params if params is not None else {}),
            "equity": jsonb(equity),
            "created_at": created_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_BACKTEST, values)
            row = await (await conn.execute(_GET_BACKTEST, values)).fetchone()
        return BacktestRecord.model_validate(row)

    async def get_backtest(self, backtest_id: str) -> BacktestRecord | None:
        return await fetch_one(
            self._pool, _GET_BACKTEST, {"backtest_id": backtest_id}, BacktestRecord
        )

    async def backtests_by_session(self, session_id: str) -> list[BacktestRecord]:
        return await fetch_all(
            self._pool, _BACKTESTS_BY_SESSION, {"session_id": session_id}, BacktestRecord
        )

    async def load_equity(self, backtest_id: str) -> EquityCurve | None:
        """The equity curve and benchmark of a backtest, or ``None`` if it has none."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_LOAD_EQUITY, {"backtest_id": backtest_id})).fetchone()
        if row is None or row["equity"] is None:
            return None
        return EquityCurve.model_validate(row["equity"])

    # --- assessments ------------------------------------------------------------------

    async def insert_assessment(
        self,
        assessment_id: str,
        *,
        strategy_id: str,
        assessment: Assessment,
        session_id: str | None = None,
        iteration: int = 0,
        backtest_id: str | None = None,
        created_at: datetime | None = None,
    ) -> AssessmentRecord:
        """Store an assessment once; returns the stored row."""
        params = {
            "assessment_id": assessment_id,
            "session_id": session_id,
            "iteration": iteration,
            "strategy_id": strategy_id,
            "backtest_id": backtest_id,
            "assessment": jsonb(assessment),
            "created_at": created_at,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_ASSESSMENT, params)
            row = await (await conn.execute(_GET_ASSESSMENT, params)).fetchone()
        return AssessmentRecord.model_validate(row)

    async def get_assessment(self, assessment_id: str) -> AssessmentRecord | None:
        params = {"assessment_id": assessment_id}
        return await fetch_one(self._pool, _GET_ASSESSMENT, params, AssessmentRecord)

    async def assessments_by_session(self, session_id: str) -> list[AssessmentRecord]:
        params = {"session_id": session_id}
        return await fetch_all(self._pool, _ASSESSMENTS_BY_SESSION, params, AssessmentRecord)
