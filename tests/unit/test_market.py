"""Bundled data, file import and its error messages, the synthetic generator, splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratlab.market.datasets import (
    BUNDLED_SYMBOLS,
    UnknownSymbolError,
    load_bundled,
    read_ohlcv_file,
)
from stratlab.market.ohlcv import OHLCV_COLUMNS, DataImportError, normalise_ohlcv
from stratlab.market.splits import SPLIT_NAMES, split_by_time
from stratlab.market.synthetic import synthetic_ohlcv


def assert_normalised(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert all(frame[c].dtype == np.float64 for c in OHLCV_COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "ts"
    assert frame.index.tz is None
    assert frame.index.is_monotonic_increasing and frame.index.is_unique


# --- bundled data ----------------------------------------------------------------------


@pytest.mark.parametrize("symbol", sorted(BUNDLED_SYMBOLS))
def test_bundled_data_loads_about_5000_real_bars(symbol: str) -> None:
    frame = load_bundled(symbol)
    assert_normalised(frame)
    assert 4900 <= len(frame) <= 5100
    assert frame.index[0].year == 1999 and frame.index[-1].year == 2018
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()


def test_bundled_data_cache_cannot_be_corrupted_by_callers() -> None:
    first = load_bundled("sp500")
    first.iloc[0, 0] = -1.0
    assert load_bundled("sp500").iloc[0, 0] > 0


def test_unknown_symbol_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'ftse'; bundled symbols: sp500"):
        load_bundled("ftse")
    assert issubclass(UnknownSymbolError, KeyError)


# --- file import ---------------------------------------------------------------------------


def messy(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a broker export might write it: odd headers, newest first, extra column."""
    out = frame.reset_index()
    out.columns = ["Date", " Open ", "HIGH", "low", "Close", "Volume"]
    out["Adj Close"] = out["Close"] * 0.9
    return out.iloc[::-1]


def test_csv_round_trip_with_messy_headers(tmp_path: Path) -> None:
    frame = synthetic_ohlcv(bars=150, seed=1)
    path = tmp_path / "bars.csv"
    messy(frame).to_csv(path, index=False, sep=";")
    loaded = read_ohlcv_file(path)
    assert_normalised(loaded)
    pd.testing.assert_frame_equal(loaded, frame, check_freq=False, rtol=1e-12)


def test_parquet_round_trip_and_missing_volume(tmp_path: Path) -> None:
    frame = synthetic_ohlcv(bars=150, seed=2)
    path = tmp_path / "bars.parquet"
    frame.drop(columns="volume").rename(columns=str.upper).to_parquet(path)
    loaded = read_ohlcv_file(path)
    assert_normalised(loaded)
    assert (loaded["volume"] == 0).all()
    np.testing.assert_allclose(loaded["close"], frame["close"])


def test_timestamp_column_spellings(tmp_path: Path) -> None:
    frame = synthetic_ohlcv(bars=120)
    raw = frame.reset_index().rename(columns={"ts": "timestamp", "open": "o", "close": "c"})
    raw["timestamp"] = raw["timestamp"].dt.strftime("%Y%m%d")
    path = tmp_path / "bars.CSV"
    raw.to_csv(path, index=False)
    assert read_ohlcv_file(path).index.equals(frame.index.rename("ts"))


def write_bad(tmp_path: Path, rows: list[str], name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return path


def good_rows(n: int = 120) -> list[str]:
    days = pd.bdate_range("2020-01-01", periods=n)
    return ["date,open,high,low,close,volume"] + [f"{d:%Y-%m-%d},10,11,9,10.5,1000" for d in days]


def test_garbage_bytes_give_a_one_line_import_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(DataImportError, match=r"garbage\.csv: looks like a binary file"):
        read_ohlcv_file(path)
    path.write_bytes(b"\xff\xfe\x93 not,really\na csv\x85 at all\n" * 3)
    with pytest.raises(DataImportError) as info:
        read_ohlcv_file(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: [r[0].replace(",high", ",hgh"), *r[1:]], r"missing column\(s\): high"),
        (
            lambda r: [*r[:17], r[17].replace(",11,", ",10.2,"), *r[18:]],
            r"row 17 \(2020-01-23\): high 10.2 is below close 10.5",
        ),
        (
            lambda r: [*r[:5], r[5].replace(",11,9,", ",8,9,"), *r[6:]],
            r"row 5 \(2020-01-07\): high 8 is below low 9",
        ),
        (lambda r: [*r[:3], r[2], *r[3:]], r"duplicate timestamp 2020-01-02 at rows 2 and 3"),
        (
            lambda r: [*r[:4], r[4].replace(",10,", ",abc,", 1), *r[5:]],
            r"row 4 \(2020-01-06\): open is not a finite number \('abc'\)",
        ),
        (lambda r: [*r[:4], r[4].replace(",10,", ",-10,", 1), *r[5:]], r"open -10 is not positive"),
        (lambda r: [*r[:4], r[4].replace(",1000", ",-5"), *r[5:]], r"volume -5 is negative"),
        (lambda r: [*r[:4], "not-a-date" + r[4][10:], *r[5:]], r"row 4: cannot parse timestamp"),
        (lambda r: r[:50], r"only 49 rows; need at least 100"),
        (lambda r: r[:1], r"no rows of data"),
    ],
)
def test_corrupt_csv_names_the_problem_on_one_line(
    tmp_path: Path, mutate: Callable[[list[str]], list[str]], message: str
) -> None:
    path = write_bad(tmp_path, mutate(good_rows()))
    with pytest.raises(DataImportError, match=message) as info:
        read_ohlcv_file(path)
    assert "\n" not in str(info.value) and str(info.value).startswith("bad.csv: ")


def with_row(n: int, text: str) -> Callable[[list[str]], list[str]]:
    """Replace data row ``n`` (1-based) by ``text``."""
    return lambda r: [*r[:n], text, *r[n + 1 :]]


def epoch_rows(r: list[str]) -> list[str]:
    """The rows with their dates as epoch seconds."""
    return [r[0]] + [f"{int(pd.Timestamp(x[:10]).timestamp())}{x[10:]}" for x in r[1:]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        *[
            (
                with_row(50, f"{day},10,11,9,10.5,1000"),
                rf"row 50: timestamp '{day}' is outside the supported dates 1677-09-22 to "
                "2262-04-11",
            )
            for day in ("9999-12-31", "1600-01-01", "2263-01-01")
        ],
        (
            lambda r: with_row(61, "2020-03-25,10,11,9,10.5,1000")(epoch_rows(r)),
            r"row 61: timestamp '2020-03-25' is a text date while the other rows are epoch "
            "numbers",
        ),
        (
            lambda r: with_row(7, epoch_rows(r)[7])(r),
            r"row 7: timestamp '1578528000' is an epoch number while the other rows are text "
            "dates",
        ),
        (
            lambda r: [r[0] + ",close"] + [x + ",10.4" for x in r[1:]],
            r"repeated column name 'close' \(the repeat was read as 'close.1'\)",
        ),
        (
            lambda r: [r[0] + ",Close"] + [x + ",10.4" for x in r[1:]],
            r"columns 'close' and 'Close' both name the same column",
        ),
        (
            with_row(30, "2020-02-11,1e300,1e300,1e300,1e300,1000"),
            r"row 30 \(2020-02-11\): open 1e\+300 is above 1e\+09, not a plausible price",
        ),
        (
            with_row(30, "2020-02-11,10,2e9,9,10.5,1000"),
            r"row 30 \(2020-02-11\): high 2e\+09 is above 1e\+09",
        ),
        (with_row(30, "2020-02-11,0,11,9,10.5,1000"), r"open 0 is not positive"),
        (
            with_row(30, "2020-02-11,10,15000,9,12000,1000"),
            r"row 30 \(2020-02-11\): high 15000 is more than 1000x the low 9",
        ),
        (
            with_row(30, "2020-02-11,0.005,0.006,0.004,0.005,1000"),
            r"row 30 \(2020-02-11\): close 0.005 is more than 1000x away from the previous "
            r"bar's 10.5 \(row 29 \(2020-02-10\)\)",
        ),
    ],
)
def test_implausible_files_get_one_clear_line(
    tmp_path: Path, mutate: Callable[[list[str]], list[str]], message: str
) -> None:
    path = write_bad(tmp_path, mutate(good_rows()))
    with pytest.raises(DataImportError, match=message) as info:
        read_ohlcv_file(path)
    assert "\n" not in str(info.value) and str(info.value).startswith("bad.csv: ")


@pytest.mark.parametrize("day", ["9999-12-31", "1600-01-01", "2263-01-01"])
def test_out_of_range_dates_in_parquet_get_one_line(tmp_path: Path, day: str) -> None:
    frame = synthetic_ohlcv(bars=120).reset_index()
    stamps = frame["ts"].astype("datetime64[s]").to_numpy().copy()
    stamps[10] = np.datetime64(day, "s")
    frame["ts"] = stamps
    path = tmp_path / "far.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataImportError, match=r"row 11: timestamp .* is outside the supported"):
        read_ohlcv_file(path)


def test_an_epoch_number_beyond_any_date_gets_one_line() -> None:
    frame = synthetic_ohlcv(bars=120).reset_index()
    frame["ts"] = (frame["ts"].astype("int64") // 10**9).astype("float64")
    frame.loc[5, "ts"] = 1e30
    with pytest.raises(DataImportError) as info:
        normalise_ohlcv(frame)
    assert "\n" not in str(info.value)


def test_a_real_crash_and_a_real_rally_are_still_accepted(tmp_path: Path) -> None:
    rows = good_rows()
    rows[40] = rows[40][:10] + ",1,1.2,0.9,1.1,1000"  # -90 % in a day
    rows[41] = rows[41][:10] + ",10,80,9,75,1000"  # then x68
    assert len(read_ohlcv_file(write_bad(tmp_path, rows))) == 120


def test_empty_missing_and_unsupported_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataImportError, match=r"empty\.csv: file is empty"):
        read_ohlcv_file(empty)
    with pytest.raises(DataImportError, match="no such file"):
        read_ohlcv_file(tmp_path / "absent.csv")
    with pytest.raises(DataImportError, match=r"unsupported file type '\.xlsx'"):
        read_ohlcv_file(write_bad(tmp_path, good_rows(), "bars.xlsx"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataImportError, match=r"corrupt\.parquet: cannot read as parquet"):
        read_ohlcv_file(corrupt)


def test_time_zones_keep_wall_time_and_mixed_offsets_become_utc() -> None:
    frame = synthetic_ohlcv(bars=100).reset_index()
    frame["ts"] = frame["ts"].dt.tz_localize("Asia/Tokyo")
    out = normalise_ohlcv(frame)
    assert out.index.tz is None and out.index[0] == pd.Timestamp("2000-01-03")
    text = frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+09:00"))
    text.loc[0, "ts"] = "2000-01-02T12:00:00-05:00"
    mixed = normalise_ohlcv(text)
    assert mixed.index[0] == pd.Timestamp("2000-01-02 17:00")
    assert mixed.index[1] == pd.Timestamp("2000-01-03 15:00")


def test_epoch_seconds_are_utc() -> None:
    frame = synthetic_ohlcv(bars=100).reset_index()
    frame["ts"] = frame["ts"].astype("int64") // 10**9
    assert normalise_ohlcv(frame).index[0] == pd.Timestamp("2000-01-03")


# --- synthetic -----------------------------------------------------------------------------


def test_synthetic_is_seeded_valid_and_on_business_days() -> None:
    first, again = synthetic_ohlcv(seed=7), synthetic_ohlcv(seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(synthetic_ohlcv(seed=8))
    assert len(first) == 1500 and (first.index.dayofweek < 5).all()
    pd.testing.assert_frame_equal(normalise_ohlcv(first), first, check_freq=False)


def test_synthetic_regimes_trend_both_ways() -> None:
    frame = synthetic_ohlcv(bars=3000, seed=0)
    returns = np.log(frame["close"]).diff(60).dropna()
    assert returns.max() > 0.1 and returns.min() < -0.1


# --- splits ----------------------------------------------------------------------------------


def test_splits_are_ordered_contiguous_and_cover_the_frame() -> None:
    frame = synthetic_ohlcv(bars=1000)
    splits = split_by_time(frame, train=0.6, validation=0.2)
    parts = [getattr(splits, name) for name in SPLIT_NAMES]
    assert [len(p) for p in parts] == [600, 200, 200]
    pd.testing.assert_frame_equal(pd.concat(parts), frame)
    assert parts[0].index[-1] < parts[1].index[0] and parts[1].index[-1] < parts[2].index[0]
    test_stamps = set(splits.test.index)
    assert not test_stamps & set(splits.train.index) and not test_stamps & set(
        splits.validation.index
    )
    assert splits.bounds("validation") == (600, 800)
    assert splits.through("validation").index[-1] == splits.validation.index[-1]
    assert len(splits.through("train")) == 600 and len(splits.through("test")) == 1000


def test_describe_gives_data_split_dtos() -> None:
    splits = split_by_time(synthetic_ohlcv(bars=500), train=0.5, validation=0.3)
    described = splits.describe()
    assert [(d.name, d.bars) for d in described] == [
        ("train", 250),
        ("validation", 150),
        ("test", 100),
    ]
    assert described[1].start == splits.validation.index[0].to_pydatetime()
    assert described[2].end == splits.test.index[-1].to_pydatetime()


@pytest.mark.parametrize(
    ("bars", "train", "validation", "message"),
    [
        (1000, 0.8, 0.2, "nothing for the test split"),
        (1000, 0.6, 0.0, "the validation split would have 0 bars"),
        (100, 0.6, 0.3, "the test split would have 10 bars"),
        (1000, 0.0, 0.2, "train fraction must be between 0 and 1"),
    ],
)
def test_bad_fractions_name_the_split(
    bars: int, train: float, validation: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        split_by_time(synthetic_ohlcv(bars=bars), train=train, validation=validation)
