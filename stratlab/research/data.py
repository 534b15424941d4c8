"""Market data by symbol: the bundled real data sets, or what a user imported to Postgres."""

from __future__ import annotations

import asyncio

import pandas as pd

from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, UnknownSymbolError, load_bundled
from stratlab.market.splits import Splits, split_by_time
from stratlab.models.research import DataWindow
from stratlab.store.market import MarketRepo

# Fewer bars than this cannot hold a train, validation and test split worth the name.
MIN_WINDOW_BARS = 250


class DataWindowError(ValueError):
    """A cycle's data window holds too few bars of its symbol."""


# Imported data sets are cached per process by their content hash, so a re-import is seen.
_imported_cache: dict[tuple[str, str], pd.DataFrame] = {}


async def load_frame(symbol: str, market: MarketRepo) -> pd.DataFrame:
    """The OHLCV frame of ``symbol``; imported data shadows a bundled set of the same name."""
    datasets = {d.symbol: d for d in await market.list_datasets()}
    if symbol in datasets:
        key = (symbol, datasets[symbol].content_hash)
        if key not in _imported_cache:
            frame = await market.load_bars(symbol)
            if frame is None:
                raise UnknownSymbolError(symbol)
            _imported_cache[key] = frame
        return _imported_cache[key]
    if symbol in BUNDLED_SYMBOLS:
        return await asyncio.to_thread(load_bundled, symbol)
    known = sorted(set(BUNDLED_SYMBOLS) | set(datasets))
    raise UnknownSymbolError(f"unknown symbol {symbol!r}; known: {', '.join(known)}")


def in_window(frame: pd.DataFrame, period: DataWindow | None, symbol: str) -> pd.DataFrame:
    """The bars of ``frame`` inside ``period`` (all of them when there is none)."""
    if period is None or (period.start is None and period.end is None):
        return frame
    index = frame.index.tz_localize(None) if frame.index.tz is not None else frame.index
    mask = pd.Series(True, index=frame.index)
    if period.start is not None:
        mask &= index >= pd.Timestamp(period.start)
    if period.end is not None:
        mask &= index < pd.Timestamp(period.end) + pd.Timedelta(days=1)
    sliced = frame.loc[mask.to_numpy()]
    if len(sliced) < MIN_WINDOW_BARS:
        raise DataWindowError(
            f"{symbol} has {len(sliced)} bars from {period.describe()}; "
            f"a cycle needs at least {MIN_WINDOW_BARS}"
        )
    return sliced


async def load_configured_splits(
    symbol: str, market: MarketRepo, settings: Settings, period: DataWindow | None = None
) -> Splits:
    """The splits every step of a cycle uses: the fractions come from ``Settings``, the
    bars from ``period`` when the cycle has one."""
    frame = in_window(await load_frame(symbol, market), period, symbol)
    return split_by_time(
        frame, train=settings.train_fraction, validation=settings.validation_fraction
    )


async def known_symbols(market: MarketRepo) -> list[str]:
    return sorted(set(BUNDLED_SYMBOLS) | {d.symbol for d in await market.list_datasets()})
