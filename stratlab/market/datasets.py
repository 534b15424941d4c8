"""Market data sets: the bundled daily bars (real, and synthetic noise and planted edges)
and import of users' CSV/Parquet files.

Every frame that leaves this module is normalised by
:func:`stratlab.market.ohlcv.normalise_ohlcv`, so it has the one shape stratlab's bars
have (``stratlab.market.ohlcv``).
"""

from __future__ import annotations

import csv
import functools
import importlib
import importlib.util
from pathlib import Path

import pandas as pd

from stratlab.market.ohlcv import DataImportError, first_line, normalise_ohlcv
from stratlab.market.planted import planted_edge_ohlcv
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.optimizer_slice import NOISE_SEEDS, PLANTED_SETS

REAL_SYMBOLS: dict[str, str] = {
    "sp500": "S&P 500 index, daily OHLCV, 1999-01-04 to 2018-12-31 (~5,000 bars)",
    "nasdaq": "NASDAQ Composite index, daily OHLCV, 1999-01-04 to 2018-12-31 (~5,000 bars)",
}
"""Real daily bars shipped in the PyPI package ``arch`` (``arch.data.sp500`` and
``arch.data.nasdaq``, originally from Yahoo Finance). Prices are index levels; the
unadjusted ``Close`` is used (``Adj Close`` is identical for these indices and dropped)."""

# Synthetic sets (``stratlab.models.optimizer_slice``: the prompt optimizer's own data).
# Noise: a driftless geometric random walk per seed, ``synthetic_ohlcv(regimes=False,
# drift=0.0, bars=NOISE_BARS, seed=..., start=NOISE_START)`` with 1.2 % daily volatility;
# nothing in it can be predicted, so the right verdict on it is "no discovery". Planted:
# trend regimes with an edge of known size (``planted_set_ohlcv``), where the right verdict
# is a discovery. Both span the real sets' years on business days, are made up (never
# evidence about real markets) and the same on every machine (seeded, built on first use
# and cached).
NOISE_BARS = 5_000
NOISE_START = "1999-01-04"

BUNDLED_SYMBOLS: dict[str, str] = {
    **REAL_SYMBOLS,
    **{
        symbol: f"synthetic random walk, no drift (seed {seed}), 5,000 business days "
        "from 1999-01-04: noise, not market data"
        for symbol, seed in NOISE_SEEDS.items()
    },
    **{
        symbol: f"synthetic trend regimes with a planted edge (causal Sharpe {p.sharpe:g}, "
        f"seed {p.seed}), 5,000 business days from 1999-01-04: not market data"
        for symbol, p in PLANTED_SETS.items()
    },
}
"""Every data set a cycle can use without an import: the real ``REAL_SYMBOLS`` and the
synthetic ``NOISE_SEEDS`` and ``PLANTED_SETS`` (the optimizer's own); the values describe
them (``stratlab data list`` shows them)."""

_SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


class UnknownSymbolError(KeyError):
    """A symbol that is not bundled; the message lists the bundled ones."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def load_bundled(symbol: str) -> pd.DataFrame:
    """The bundled data set ``symbol`` as a normalised frame (a fresh copy per call)."""
    return _load_bundled_cached(symbol).copy()


@functools.lru_cache(maxsize=len(BUNDLED_SYMBOLS))
def _load_bundled_cached(symbol: str) -> pd.DataFrame:
    if symbol not in BUNDLED_SYMBOLS:
        known = ", ".join(BUNDLED_SYMBOLS)
        raise UnknownSymbolError(f"unknown symbol {symbol!r}; bundled symbols: {known}")
    if symbol in NOISE_SEEDS:
        return normalise_ohlcv(noise_ohlcv(NOISE_SEEDS[symbol]))
    if symbol in PLANTED_SETS:
        return normalise_ohlcv(planted_set_ohlcv(symbol))
    return normalise_ohlcv(_read_arch_data(symbol).drop(columns=["Adj Close"], errors="ignore"))


def noise_ohlcv(seed: int) -> pd.DataFrame:
    """The driftless random walk a noise symbol of ``NOISE_SEEDS`` is built from."""
    return synthetic_ohlcv(bars=NOISE_BARS, seed=seed, start=NOISE_START, drift=0.0, regimes=False)


def planted_set_ohlcv(symbol: str) -> pd.DataFrame:
    """The bars of a planted-edge set of ``PLANTED_SETS``."""
    seed, sharpe = PLANTED_SETS[symbol]
    frame, _ = planted_edge_ohlcv(
        bars=NOISE_BARS, seed=seed, sharpe=sharpe, start=NOISE_START, edge="causal"
    )
    return frame


def _read_arch_data(symbol: str) -> pd.DataFrame:
    """Read ``arch``'s bundled CSV directly: ``import arch`` alone takes over a second."""
    spec = importlib.util.find_spec("arch")
    if spec is not None and spec.origin:
        data_file = Path(spec.origin).parent / "data" / symbol / f"{symbol}.csv.gz"
        if data_file.is_file():
            return pd.read_csv(data_file, index_col="Date", parse_dates=["Date"])
    return importlib.import_module(f"arch.data.{symbol}").load()


def read_ohlcv_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file of bars and normalise it; DataImportError otherwise."""
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        allowed = ", ".join(_SUFFIXES)
        raise DataImportError(f"{path.name}: unsupported file type {path.suffix!r}; use {allowed}")
    if not path.is_file():
        raise DataImportError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataImportError(f"{path.name}: file is empty")
    try:
        frame = pd.read_parquet(path) if fmt == "parquet" else _read_csv(path)
    except DataImportError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types on corrupt input
        raise DataImportError(f"{path.name}: cannot read as {fmt}: {first_line(exc)}") from None
    try:
        return normalise_ohlcv(frame)
    except DataImportError as exc:
        raise DataImportError(f"{path.name}: {exc}") from None


def _read_csv(path: Path) -> pd.DataFrame:
    head = path.read_bytes()[:8192]
    if b"\x00" in head:
        raise DataImportError(f"{path.name}: looks like a binary file, not CSV text")
    encoding = "utf-8-sig"
    try:
        sample = head.decode(encoding)
    except UnicodeDecodeError:
        encoding, sample = "latin-1", head.decode("latin-1")
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    # Everything stays text until normalise_ohlcv, which reports bad cells by row.
    return pd.read_csv(path, sep=sep, dtype=str, encoding=encoding, skipinitialspace=True)
