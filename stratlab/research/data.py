"""Market data by symbol: the bundled real data sets, or what a user imported to Postgres."""

from __future__ import annotations

import asyncio

import pandas as pd

from stratlab.config import Settings
from stratlab.market.datasets import BUNDLED_SYMBOLS, UnknownSymbolError, load_bundled
from stratlab.market.splits import Splits, split_by_time
from stratlab.store.market import MarketRepo

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


async def load_splits(
    symbol: str, market: MarketRepo, *, train: float, validation: float
) -> Splits:
    return split_by_time(await load_frame(symbol, market), train=train, validation=validation)


async def load_configured_splits(symbol: str, market: MarketRepo, settings: Settings) -> Splits:
    """The splits every step of a cycle uses: the fractions come from ``Settings``."""
    return await load_splits(
        symbol, market, train=settings.train_fraction, validation=settings.validation_fraction
    )


async def known_symbols(market: MarketRepo) -> list[str]:
    return sorted(set(BUNDLED_SYMBOLS) | {d.symbol for d in await market.list_datasets()})
