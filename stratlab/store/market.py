"""Market data in Postgres: one ``datasets`` row per symbol and its ``market_bars``.

A data set is replaced as a whole in one transaction (upsert the ``datasets`` row, delete
the old bars, COPY the new ones), so readers see either the old bars or the new ones,
never a mix; deleting the ``datasets`` row deletes its bars (ON DELETE CASCADE). Bars are
stored as timestamptz in UTC and come back as a tz-naive
``DatetimeIndex`` named ``ts`` with float64 ``open, high, low, close, volume`` columns.
"""

from __future__ import annotations

import hashlib
from math import isnan
from typing import Any

import numpy as np
import pandas as pd

from stratlab.models.records import DatasetRecord
from stratlab.store._util import fetch_all, fetch_one
from stratlab.store.db import ConnectionSource

COLUMNS = ("open", "high", "low", "close", "volume")

# Upserting the datasets row first also locks it, so two imports of one symbol queue up
# instead of interleaving their DELETE and COPY.
_UPSERT_DATASET = """
INSERT INTO datasets (symbol, source, rows, first_ts, last_ts, content_hash, imported_at)
VALUES (%(symbol)s, %(source)s, %(rows)s, %(first_ts)s, %(last_ts)s, %(content_hash)s, now())
ON CONFLICT (symbol) DO UPDATE
   SET source = EXCLUDED.source, rows = EXCLUDED.rows, first_ts = EXCLUDED.first_ts,
       last_ts = EXCLUDED.last_ts, content_hash = EXCLUDED.content_hash,
       imported_at = EXCLUDED.imported_at
"""
# A first import only: nothing is overwritten, and no row back means the symbol is taken.
_INSERT_DATASET = """
INSERT INTO datasets (symbol, source, rows, first_ts, last_ts, content_hash, imported_at)
VALUES (%(symbol)s, %(source)s, %(rows)s, %(first_ts)s, %(last_ts)s, %(content_hash)s, now())
ON CONFLICT (symbol) DO NOTHING
RETURNING symbol
"""
_DELETE_BARS = "DELETE FROM market_bars WHERE symbol = %(symbol)s"
_DELETE_DATASET = "DELETE FROM datasets WHERE symbol = %(symbol)s RETURNING *"
# What in the store still reads a symbol: research sessions not finished and paper
# strategies not stopped (their workflows load the bars again on every step).
_USERS = """
SELECT 'research session' AS what, session_id AS id, workflow_id
  FROM agent_sessions WHERE status = 'running' AND symbol = %(symbol)s
UNION ALL
SELECT 'paper strategy', strategy_id, COALESCE(workflow_id, 'paper-' || strategy_id)
  FROM paper_strategies
 WHERE status IN ('running', 'paused') AND %(symbol)s = ANY (symbols)
 ORDER BY 1, 2
"""
_COPY_BARS = """
COPY market_bars (symbol, ts, open, high, low, close, volume) FROM STDIN (FORMAT BINARY)
"""
_COPY_TYPES = ["text", "timestamptz", "float8", "float8", "float8", "float8", "float8"]

# One row of arrays instead of one row per bar: far fewer Python objects to build.
# Epoch microseconds are exact (extract returns numeric); a missing volume reads as NaN.
_LOAD_BARS = """
SELECT array_agg((extract(epoch FROM ts) * 1000000)::bigint ORDER BY ts) AS ts_us,
       array_agg(open ORDER BY ts) AS open,
       array_agg(high ORDER BY ts) AS high,
       array_agg(low ORDER BY ts) AS low,
       array_agg(close ORDER BY ts) AS close,
       array_agg(COALESCE(volume, 'NaN'::float8) ORDER BY ts) AS volume
  FROM market_bars WHERE symbol = %(symbol)s
"""
_GET_DATASET = "SELECT * FROM datasets WHERE symbol = %(symbol)s"
_LIST_DATASETS = "SELECT * FROM datasets ORDER BY symbol"


class DatasetExistsError(ValueError):
    """An import onto a symbol that already has one, without asking to replace it."""


class MarketRepo:
    """Imported OHLCV data sets."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def replace_bars(
        self, symbol: str, frame: pd.DataFrame, source: str, *, replace: bool = True
    ) -> DatasetRecord:
        """Replace ``symbol``'s bars with ``frame`` (a DatetimeIndex, or a ``ts`` column,
        and open/high/low/close[/volume] columns, any case) in one transaction. Raises
        ``ValueError`` for a frame that is empty, has duplicate timestamps or missing
        prices; with ``replace=False``, ``DatasetExistsError`` when ``symbol`` already
        has bars (and changes nothing)."""
        bars = normalise_bars(frame)
        ts = pd.DatetimeIndex(bars.index).tz_localize("UTC")
        params = {
            "symbol": symbol,
            "source": source,
            "rows": len(bars),
            "first_ts": ts[0].to_pydatetime(),
            "last_ts": ts[-1].to_pydatetime(),
            "content_hash": bars_content_hash(bars),
        }
        rows = zip(ts.to_pydatetime(), *(bars[c].tolist() for c in COLUMNS), strict=True)
        async with self._pool.connection() as conn, conn.transaction():
            if replace:
                await conn.execute(_UPSERT_DATASET, params)
            elif await (await conn.execute(_INSERT_DATASET, params)).fetchone() is None:
                raise DatasetExistsError(f"{symbol} is already imported")
            await conn.execute(_DELETE_BARS, params)
            async with conn.cursor() as cur, cur.copy(_COPY_BARS) as copy:
                copy.set_types(_COPY_TYPES)
                for when, o, h, lo, c, v in rows:
                    await copy.write_row((symbol, when, o, h, lo, c, None if isnan(v) else v))
        dataset = await self.get_dataset(symbol)
        assert dataset is not None  # written above
        return dataset

    async def load_bars(self, symbol: str) -> pd.DataFrame | None:
        """The symbol's bars, oldest first, or ``None`` if it was never imported."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_LOAD_BARS, {"symbol": symbol})).fetchone()
        if row is None or row["ts_us"] is None:
            return None
        index = pd.DatetimeIndex(np.asarray(row["ts_us"], dtype="datetime64[us]"), name="ts")
        data = {c: np.asarray(row[c], dtype="float64") for c in COLUMNS}
        return pd.DataFrame(data, index=index.as_unit("ns"))

    async def get_dataset(self, symbol: str) -> DatasetRecord | None:
        return await fetch_one(self._pool, _GET_DATASET, {"symbol": symbol}, DatasetRecord)

    async def list_datasets(self) -> list[DatasetRecord]:
        return await fetch_all(self._pool, _LIST_DATASETS, {}, DatasetRecord)

    async def delete_dataset(self, symbol: str) -> DatasetRecord | None:
        """Delete an imported data set and its bars; the deleted row, or ``None`` when
        ``symbol`` was never imported."""
        return await fetch_one(self._pool, _DELETE_DATASET, {"symbol": symbol}, DatasetRecord)

    async def users(self, symbol: str) -> list[dict[str, str]]:
        """What the store says still reads ``symbol``: running research sessions and
        running or paused paper strategies, each as ``{what, id, workflow_id}``."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_USERS, {"symbol": symbol})).fetchall()
        return [dict(r) for r in rows]


def normalise_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as stored: sorted tz-naive UTC ``ts`` index (ns), float64 OHLCV columns
    (volume NaN where the source has none)."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        lowered = {str(c).lower(): c for c in frame.columns}
        if "ts" not in lowered:
            raise ValueError("bars need a DatetimeIndex or a 'ts' column")
        frame = frame.set_index(lowered["ts"])
    by_name = {str(c).lower(): c for c in frame.columns}
    missing = [c for c in COLUMNS[:4] if c not in by_name]
    if missing:
        raise ValueError(f"bars lack columns {missing}; they have {list(frame.columns)}")
    if frame.empty:
        raise ValueError("no bars to import")
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    data: dict[str, Any] = {
        c: pd.to_numeric(frame[by_name[c]], errors="raise").to_numpy(dtype="float64")
        for c in COLUMNS[:4]
    }
    if "volume" in by_name:
        data["volume"] = pd.to_numeric(frame[by_name["volume"]]).to_numpy(dtype="float64")
    else:
        data["volume"] = np.full(len(frame), np.nan)
    bars = pd.DataFrame(data, index=index.as_unit("ns").rename("ts")).astype("float64")
    bars = bars.sort_index()
    if bars.index.has_duplicates:
        dup = bars.index[bars.index.duplicated()][0]
        raise ValueError(f"duplicate bar timestamp {dup}")
    if bars[list(COLUMNS[:4])].isna().to_numpy().any():
        raise ValueError("bars have missing open/high/low/close values")
    return bars


def bars_content_hash(bars: pd.DataFrame) -> str:
    """sha256 of normalised bars (timestamps and values as raw bytes): the same bars hash
    the same however they were read."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(bars.index.asi8, dtype="<i8").tobytes())
    for c in COLUMNS:
        values = bars[c].to_numpy(dtype="float64")
        # Every NaN hashes alike, whatever payload bits the source gave it.
        values = np.where(np.isnan(values), np.nan, values)
        digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()
