"""Market data sets: the bundled daily bars (real, and synthetic noise) and import of
users' CSV/Parquet files.

Every frame that leaves this module has the same shape: a tz-naive, sorted, unique
``DatetimeIndex`` named ``ts`` and float64 columns exactly ``open, high, low, close,
volume``, validated by :func:`normalise_ohlcv`.
"""

from __future__ import annotations

import csv
import functools
import importlib
import importlib.util
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from stratlab.market.planted import planted_edge_ohlcv
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.optimizer_slice import NOISE_SEEDS, PLANTED_SETS

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = (*PRICE_COLUMNS, "volume")
MIN_ROWS = 100
MAX_PRICE = 1e9
"""No price above this is plausible (the dearest listed shares trade near 1e6); a larger
one is a unit mix-up or a corrupt cell."""
MAX_BAR_CHANGE = 1000.0
"""A close more than this many times the previous one (or below its 1/1000th), or a high
that many times the bar's low, is a data error, not a market move."""
# Timestamps are stored with nanosecond precision, which spans these dates.
_FIRST_DATE, _LAST_DATE = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")

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

# Header spellings accepted on import, after lower-casing and dropping non-alphanumerics;
# earlier entries win when a file has several candidates for one column.
_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "datetime", "date", "time", "dt", "day"),
    "open": ("open", "o", "openprice", "opening"),
    "high": ("high", "h", "highprice", "max"),
    "low": ("low", "l", "lowprice", "min"),
    "close": ("close", "c", "closeprice", "closing", "last"),
    "volume": ("volume", "vol", "v", "qty", "quantity"),
}
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


class UnknownSymbolError(KeyError):
    """A symbol that is not bundled; the message lists the bundled ones."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class DataImportError(ValueError):
    """A file or frame that is not usable OHLCV; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


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
        raise DataImportError(f"{path.name}: cannot read as {fmt}: {_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def normalise_ohlcv(df: pd.DataFrame) -> pd.DataFrame:
    """Validate and normalise bars; DataImportError names the first problem found.

    Row numbers in messages count data rows from 1 in the order they were given.
    """
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise DataImportError("no rows of data")
    frame = _select_columns(df)
    ts = _parse_timestamps(frame["ts"])
    rows = np.arange(1, len(frame) + 1)
    order = np.argsort(ts.to_numpy(), kind="stable")
    ts, frame, rows = ts[order], frame.iloc[order], rows[order]
    duplicated = np.flatnonzero(ts.duplicated())
    if len(duplicated):
        i = duplicated[0]
        raise DataImportError(
            f"duplicate timestamp {_stamp(ts[i])} at rows {rows[i - 1]} and {rows[i]}"
        )
    values = {name: _numbers(frame[name], name, rows, ts) for name in OHLCV_COLUMNS}
    _check_prices(values, rows, ts)
    if len(ts) < MIN_ROWS:
        raise DataImportError(f"only {len(ts)} rows; need at least {MIN_ROWS}")
    out = pd.DataFrame(values, index=pd.DatetimeIndex(ts, name="ts"))
    return out.astype(np.float64)


def _canonical(header: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).lower())


def _select_columns(df: pd.DataFrame) -> pd.DataFrame:
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        raise DataImportError(f"repeated column name(s): {', '.join(repeated)}")
    _check_renamed_repeats(df.columns)
    by_key: dict[str, object] = {}
    for column in df.columns:
        key = _canonical(column)
        if key in by_key and key in _ALL_SPELLINGS:
            raise DataImportError(
                f"columns {by_key[key]!r} and {column!r} both name the same column; keep one"
            )
        by_key.setdefault(key, column)
    if isinstance(df.index, pd.DatetimeIndex) or _canonical(df.index.name) in _ALIASES["ts"]:
        by_key.setdefault(_canonical(df.index.name or "ts"), None)  # None: use the index
    chosen: dict[str, object] = {}
    for target, spellings in _ALIASES.items():
        found = next((by_key[s] for s in spellings if s in by_key), _MISSING)
        if found is not _MISSING:
            chosen[target] = found
    missing = [c for c in ("ts", *PRICE_COLUMNS) if c not in chosen]
    if missing:
        names = ["timestamp" if c == "ts" else c for c in missing]
        found_names = ", ".join(str(c) for c in df.columns[:12]) or "none"
        raise DataImportError(f"missing column(s): {', '.join(names)}; found: {found_names}")
    columns = {
        target: (df.index.to_series() if source is None else df[source]).reset_index(drop=True)
        for target, source in chosen.items()
    }
    out = pd.DataFrame(columns)
    if "volume" not in out:
        out["volume"] = 0.0
    return out


_MISSING = object()
_ALL_SPELLINGS = frozenset(s for spellings in _ALIASES.values() for s in spellings)
# pandas' CSV reader renames a repeated header: the second "close" becomes "close.1".
_RENAMED_REPEAT = re.compile(r"(.+)\.(\d+)")


def _check_renamed_repeats(columns: pd.Index) -> None:
    names = {str(c) for c in columns}
    for column in columns:
        match = _RENAMED_REPEAT.fullmatch(str(column))
        if match and match.group(1) in names:
            raise DataImportError(
                f"repeated column name {match.group(1)!r} (the repeat was read as "
                f"{str(column)!r}); keep one"
            )


def _parse_timestamps(values: pd.Series) -> pd.DatetimeIndex:
    """Naive timestamps. One time zone keeps its wall-clock time (a daily bar keeps its
    trading date); mixed UTC offsets and epoch numbers become UTC."""
    try:
        parsed = _parsed_timestamps(values)
    except (pd.errors.OutOfBoundsDatetime, OverflowError) as exc:
        # an epoch number too large for any unit, or a date pandas cannot represent
        raise DataImportError(f"a timestamp is out of range: {_first_line(exc)}") from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = bad[0]
        raise DataImportError(f"row {i + 1}: cannot parse timestamp {values.iloc[i]!r}")
    outside = np.flatnonzero(((parsed < _FIRST_DATE) | (parsed > _LAST_DATE)).to_numpy())
    if len(outside):
        i = outside[0]
        raise DataImportError(
            f"row {i + 1}: timestamp {values.iloc[i]!r} is outside the supported dates "
            f"{_FIRST_DATE:%Y-%m-%d} to {_LAST_DATE:%Y-%m-%d}"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _parsed_timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed = pd.to_datetime(values, unit=_epoch_unit(values), errors="coerce")
    else:
        parsed = _parse_text_timestamps(values.astype("string").str.strip())
    if not pd.api.types.is_datetime64_any_dtype(parsed):
        parsed = pd.to_datetime(parsed, errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_text_timestamps(text: pd.Series) -> pd.Series:
    if text.str.fullmatch(r"\d{8}").fillna(False).all():
        return pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    epoch = text.str.fullmatch(r"\d{9,19}(\.\d*)?").fillna(False).to_numpy(dtype=bool)
    if epoch.all():
        numbers = pd.to_numeric(text, errors="coerce")
        return pd.to_datetime(numbers, unit=_epoch_unit(numbers), errors="coerce")
    if epoch.any():
        # Name the odd one out: a text date among epoch numbers, or the other way round.
        odd = np.flatnonzero(~epoch if epoch.sum() > len(epoch) / 2 else epoch)[0]
        kind = "a text date" if epoch.sum() > len(epoch) / 2 else "an epoch number"
        others = "epoch numbers" if kind == "a text date" else "text dates"
        raise DataImportError(
            f"row {odd + 1}: timestamp {text.iloc[odd]!r} is {kind} while the other rows "
            f"are {others}; use one format"
        )
    # pandas warns when it cannot infer one format and parses element by element; that
    # fallback is what we want for odd files, and unparseable cells are reported by row.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError):  # mixed UTC offsets
            return pd.to_datetime(text, errors="coerce", utc=True, format="mixed")


def _epoch_unit(values: pd.Series) -> str:
    """Guess the unit of epoch timestamps from their magnitude."""
    biggest = float(np.nanmax(np.abs(values.to_numpy(dtype=np.float64)))) if len(values) else 0
    for unit, threshold in (("ns", 1e17), ("us", 1e14), ("ms", 1e11)):
        if biggest >= threshold:
            return unit
    return "s"


def _numbers(values: pd.Series, name: str, rows: np.ndarray, ts: pd.DatetimeIndex) -> np.ndarray:
    if name == "volume":
        blank = values.isna() | (values.astype("string").str.strip() == "")
        values = values.where(~blank.fillna(True), 0)  # missing volume counts as 0
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        i = bad[0]
        raw = values.iloc[i]
        what = "is missing" if _is_blank(raw) else f"is not a finite number ({raw!r})"
        raise DataImportError(f"{_where(rows[i], ts[i])}: {name} {what}")
    return numbers


def _is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == ""


def _check_prices(values: dict[str, np.ndarray], rows: np.ndarray, ts: pd.DatetimeIndex) -> None:
    o, h, lo, c, v = (values[name] for name in OHLCV_COLUMNS)
    for name in PRICE_COLUMNS:
        bad = np.flatnonzero(values[name] <= 0)
        if len(bad):
            i = bad[0]
            raise DataImportError(
                f"{_where(rows[i], ts[i])}: {name} {values[name][i]:g} is not positive"
            )
    for name in PRICE_COLUMNS:
        _fail_first(values[name] > MAX_PRICE, rows, ts, _too_dear(name, values[name]))
    _fail_first(h < lo, rows, ts, lambda i: f"high {h[i]:g} is below low {lo[i]:g}")
    _fail_first(h < o, rows, ts, lambda i: f"high {h[i]:g} is below open {o[i]:g}")
    _fail_first(h < c, rows, ts, lambda i: f"high {h[i]:g} is below close {c[i]:g}")
    _fail_first(lo > o, rows, ts, lambda i: f"low {lo[i]:g} is above open {o[i]:g}")
    _fail_first(lo > c, rows, ts, lambda i: f"low {lo[i]:g} is above close {c[i]:g}")
    _fail_first(v < 0, rows, ts, lambda i: f"volume {v[i]:g} is negative")
    _fail_first(
        h > lo * MAX_BAR_CHANGE,
        rows,
        ts,
        lambda i: f"high {h[i]:g} is more than {MAX_BAR_CHANGE:g}x the low {lo[i]:g}",
    )
    _check_jumps(c, rows, ts)


def _too_dear(name: str, prices: np.ndarray) -> Callable[[int], str]:
    def describe(i: int) -> str:
        return (
            f"{name} {prices[i]:g} is above {MAX_PRICE:g}, not a plausible price (a unit "
            "mix-up or a corrupt cell?)"
        )

    return describe


def _check_jumps(close: np.ndarray, rows: np.ndarray, ts: pd.DatetimeIndex) -> None:
    """A close more than ``MAX_BAR_CHANGE`` times the previous bar's, or below its share."""
    if len(close) < 2:
        return
    ratio = close[1:] / close[:-1]
    jumps = np.flatnonzero((ratio > MAX_BAR_CHANGE) | (ratio < 1.0 / MAX_BAR_CHANGE))
    if len(jumps):
        i = jumps[0] + 1
        raise DataImportError(
            f"{_where(rows[i], ts[i])}: close {close[i]:g} is more than {MAX_BAR_CHANGE:g}x "
            f"away from the previous bar's {close[i - 1]:g} ({_where(rows[i - 1], ts[i - 1])})"
        )


def _fail_first(
    mask: np.ndarray, rows: np.ndarray, ts: pd.DatetimeIndex, describe: Callable[[int], str]
) -> None:
    bad = np.flatnonzero(mask)
    if len(bad):
        # Report the earliest bar in time, which is what a user scrolling the file expects.
        i = bad[0]
        raise DataImportError(f"{_where(rows[i], ts[i])}: {describe(i)}")


def _where(row: int, stamp: pd.Timestamp) -> str:
    return f"row {row} ({_stamp(stamp)})"


def _stamp(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
