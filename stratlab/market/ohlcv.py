"""The shape of a frame of bars and its validation: what every OHLCV frame in stratlab is.

A frame that passes :func:`normalise_ohlcv` has a tz-naive, sorted, unique
``DatetimeIndex`` named ``ts`` and float64 columns exactly ``open, high, low, close,
volume``. Bundled data sets and imported files (``stratlab.market.datasets``) both go
through it; a frame that does not fit raises ``DataImportError`` with a one-line message
naming the first problem by row.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

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


class DataImportError(ValueError):
    """A file or frame that is not usable OHLCV; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none): what a
    one-line ``DataImportError`` quotes of a reader's or parser's error."""
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
        raise DataImportError(f"a timestamp is out of range: {first_line(exc)}") from None
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
