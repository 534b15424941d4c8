"""The research-integrity rows: the trial ledger, walk-forward series and holdouts.

Every write is keyed by an id the workflow made (a training run, a holdout), so a retried
activity adds nothing: the ledger never counts a fit twice and a holdout is evaluated
and stored once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratlab.models.records import EquityCurve
from stratlab.models.research import HoldoutResult, TrialLedger, TrialStats
from stratlab.store._util import jsonb
from stratlab.store.db import ConnectionSource

_INSERT_TRIAL = """
INSERT INTO trials (trial_id, universe, symbol, source, session_id, strategy_id, n_trials,
                    n_effective, sharpe_sum, sharpe_sq_sum, bars, oos_sharpe)
VALUES (%(trial_id)s, %(universe)s, %(symbol)s, %(source)s, %(session_id)s,
        %(strategy_id)s, %(n_trials)s, %(n_effective)s, %(sharpe_sum)s,
        %(sharpe_sq_sum)s, %(bars)s, %(oos_sharpe)s)
ON CONFLICT (trial_id) DO NOTHING
"""
# Sums per universe; the Sharpe variance is the pooled sample variance of every trial.
_LEDGERS = """
SELECT universe, min(symbol) AS symbol, count(*) AS fits,
       coalesce(sum(n_trials), 0) AS n, coalesce(sum(n_effective), 0) AS n_effective,
       coalesce(sum(sharpe_sum), 0) AS s1, coalesce(sum(sharpe_sq_sum), 0) AS s2,
       coalesce(var_samp(oos_sharpe), 0) AS oos_var,
       jsonb_object_agg(source, source_n) AS by_source,
       min(first_at) AS first_at, max(last_at) AS last_at
  FROM (SELECT universe, symbol, source, n_trials, n_effective, sharpe_sum, sharpe_sq_sum,
               oos_sharpe,
               sum(n_trials) OVER (PARTITION BY universe, source) AS source_n,
               recorded_at AS first_at, recorded_at AS last_at
          FROM trials
         WHERE (%(universe)s::text IS NULL OR universe = %(universe)s)
           AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
           AND (%(session_id)s::text IS NULL OR session_id = %(session_id)s)) t
 GROUP BY universe
 ORDER BY max(last_at) DESC
"""
_SAVE_SERIES = """
INSERT INTO walk_forward_series (training_run_id, series)
VALUES (%(training_run_id)s, %(series)s)
ON CONFLICT (training_run_id) DO UPDATE SET series = EXCLUDED.series
"""
_LOAD_SERIES = "SELECT series FROM walk_forward_series WHERE training_run_id = %(id)s"
_INSERT_HOLDOUT = """
INSERT INTO holdout_evaluations (holdout_id, session_id, strategy_id, training_run_id,
                                 result, equity)
VALUES (%(holdout_id)s, %(session_id)s, %(strategy_id)s, %(training_run_id)s,
        %(result)s, %(equity)s)
ON CONFLICT (holdout_id) DO NOTHING
"""
_GET_HOLDOUT = "SELECT result FROM holdout_evaluations WHERE holdout_id = %(id)s"
_HOLDOUTS_BY_SESSION = """
SELECT result FROM holdout_evaluations WHERE session_id = %(id)s ORDER BY created_at
"""
_HOLDOUT_EQUITY = "SELECT equity FROM holdout_evaluations WHERE holdout_id = %(id)s"


def universe_key(symbol: str, first_bar: Any, last_bar: Any) -> str:
    """``symbol|first|last``: trials on other bars of a symbol are another universe."""
    return f"{symbol}|{_day(first_bar)}|{_day(last_bar)}"


def _day(value: Any) -> str:
    return value.date().isoformat() if hasattr(value, "date") else str(value)


class IntegrityRepo:
    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def record_trials(
        self,
        trial_id: str,
        *,
        universe: str,
        symbol: str,
        source: str,
        stats: TrialStats,
        session_id: str | None = None,
        strategy_id: str | None = None,
        oos_sharpe: float | None = None,
    ) -> None:
        """Add one fit's trials to the ledger; a second call with the same id adds nothing."""
        params = {
            "trial_id": trial_id,
            "universe": universe,
            "symbol": symbol,
            "source": source,
            "session_id": session_id,
            "strategy_id": strategy_id,
            "n_trials": stats.n_trials,
            "n_effective": stats.n_effective,
            "sharpe_sum": stats.sharpe_sum,
            "sharpe_sq_sum": stats.sharpe_sq_sum,
            "bars": stats.bars,
            "oos_sharpe": oos_sharpe,
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_TRIAL, params)

    async def ledgers(
        self,
        *,
        universe: str | None = None,
        symbol: str | None = None,
        session_id: str | None = None,
    ) -> list[TrialLedger]:
        """The ledger of every universe (of ``symbol``; of one session's fits only with
        ``session_id``), most recently used first."""
        params = {"universe": universe, "symbol": symbol, "session_id": session_id}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_LEDGERS, params)).fetchall()
        return [_ledger(row) for row in rows]

    async def ledger(
        self, universe: str, symbol: str, *, session_id: str | None = None
    ) -> TrialLedger:
        found = await self.ledgers(universe=universe, session_id=session_id)
        return found[0] if found else TrialLedger(universe=universe, symbol=symbol)

    async def save_series(self, training_run_id: str, series: Mapping[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _SAVE_SERIES, {"training_run_id": training_run_id, "series": jsonb(series)}
            )

    async def load_series(self, training_run_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_LOAD_SERIES, {"id": training_run_id})).fetchone()
        return None if row is None else dict(row["series"])

    async def insert_holdout(
        self,
        result: HoldoutResult,
        *,
        session_id: str | None,
        training_run_id: str | None,
        equity: EquityCurve | None,
    ) -> HoldoutResult:
        """Store a holdout once; a retry returns the first stored result."""
        params = {
            "holdout_id": result.holdout_id,
            "session_id": session_id,
            "strategy_id": result.strategy_id,
            "training_run_id": training_run_id,
            "result": jsonb(result),
            "equity": jsonb(equity),
        }
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_HOLDOUT, params)
        stored = await self.get_holdout(result.holdout_id)
        assert stored is not None
        return stored

    async def get_holdout(self, holdout_id: str) -> HoldoutResult | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_GET_HOLDOUT, {"id": holdout_id})).fetchone()
        return None if row is None else HoldoutResult.model_validate(row["result"])

    async def holdouts_by_session(self, session_id: str) -> list[HoldoutResult]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_HOLDOUTS_BY_SESSION, {"id": session_id})).fetchall()
        return [HoldoutResult.model_validate(r["result"]) for r in rows]

    async def holdout_equity(self, holdout_id: str) -> EquityCurve | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_HOLDOUT_EQUITY, {"id": holdout_id})).fetchone()
        if row is None or row["equity"] is None:
            return None
        return EquityCurve.model_validate(row["equity"])


def _ledger(row: Mapping[str, Any]) -> TrialLedger:
    n, s1, s2 = int(row["n"]), float(row["s1"]), float(row["s2"])
    mean = s1 / n if n else 0.0
    var = max(s2 / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else 0.0
    return TrialLedger(
        universe=row["universe"],
        symbol=row["symbol"],
        fits=int(row["fits"]),
        n=n,
        n_effective=float(row["n_effective"]),
        sharpe_mean=mean,
        sharpe_var=var,
        oos_sharpe_var=float(row["oos_var"]),
        by_source={k: int(v) for k, v in (row["by_source"] or {}).items()},
        first_at=row["first_at"],
        last_at=row["last_at"],
    )
