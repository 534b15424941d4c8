"""Stale opens: bars whose open is only a copy of the previous close, found and reported."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from stratlab.cli.read import _bundled_row, _dataset_row, data_table
from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled
from stratlab.market.quality import (
    stale_open_notes,
    stale_open_share,
    stale_open_stretches,
    stale_opens,
)
from stratlab.market.synthetic import synthetic_ohlcv


def with_stale_opens(frame: pd.DataFrame, positions: Iterable[int]) -> pd.DataFrame:
    """``frame`` with the open of each bar at ``positions`` set to the previous close."""
    out = frame.copy()
    opens = out["open"].to_numpy().copy()
    closes = out["close"].to_numpy()
    for i in positions:
        opens[i] = closes[i - 1]
    out["open"] = opens
    out["high"] = np.maximum(out["high"], opens)
    out["low"] = np.minimum(out["low"], opens)
    return out


@pytest.fixture
def bars() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1000, seed=7)


def test_synthetic_bars_have_no_stale_opens(bars: pd.DataFrame) -> None:
    assert stale_open_share(bars) == 0.0
    assert stale_open_stretches(bars) == []
    assert stale_open_notes(bars) == []


def test_a_block_of_stale_opens_is_one_stretch_with_exact_edges(bars: pd.DataFrame) -> None:
    frame = with_stale_opens(bars, range(200, 400))
    assert stale_open_share(frame) == pytest.approx(200 / 999)
    [stretch] = stale_open_stretches(frame)
    assert (stretch.start, stretch.end) == (frame.index[200], frame.index[399])
    assert stretch.bars == 200 and stretch.share == 1.0


def test_the_tolerance_is_relative_to_the_price(bars: pd.DataFrame) -> None:
    frame = with_stale_opens(bars, range(1, 3))
    frame.iloc[1, frame.columns.get_loc("open")] *= 1 + 1e-12  # rounding noise: still stale
    frame.iloc[2, frame.columns.get_loc("open")] *= 1 + 1e-6  # a real (tiny) gap
    assert stale_opens(frame)[:4].tolist() == [False, True, False, False]


def test_scattered_stale_opens_make_no_stretch(bars: pd.DataFrame) -> None:
    frame = with_stale_opens(bars, range(1, 1000, 4))  # a quarter of the bars
    assert stale_open_share(frame) == pytest.approx(0.25, abs=0.01)
    assert stale_open_stretches(frame) == []
    assert stale_open_stretches(frame, min_share=0.2)  # ... unless asked for less


def test_blocks_merge_across_a_short_gap_not_a_long_one(bars: pd.DataFrame) -> None:
    short_gap = with_stale_opens(bars, [*range(100, 300), *range(310, 500)])
    [merged] = stale_open_stretches(short_gap)
    assert merged.bars == 400 and merged.share == pytest.approx(390 / 400)

    long_gap = with_stale_opens(bars, [*range(100, 300), *range(500, 700)])
    assert [s.bars for s in stale_open_stretches(long_gap)] == [200, 200]


def test_a_frame_shorter_than_the_window_is_one_window() -> None:
    frame = with_stale_opens(synthetic_ohlcv(bars=30, seed=1), range(1, 30))
    [stretch] = stale_open_stretches(frame, window=60)
    assert stretch.bars == 29 and stretch.start == frame.index[1]
    assert stale_open_stretches(frame.iloc[:1]) == []
    assert stale_open_share(frame.iloc[:1]) == 0.0


def test_options_are_checked(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="window"):
        stale_open_stretches(bars, window=0)
    with pytest.raises(ValueError, match="min_share"):
        stale_open_stretches(bars, min_share=0.0)


def test_notes_say_where_next_open_fills_are_close_fills(bars: pd.DataFrame) -> None:
    frame = with_stale_opens(bars, range(200, 400))
    start, end = f"{frame.index[200]:%Y-%m-%d}", f"{frame.index[399]:%Y-%m-%d}"
    assert stale_open_notes(frame) == [
        f"open equals the previous close on 100% of bars from {start} to {end}: "
        "fills at the next open are close fills there"
    ]


def test_bundled_sp500_opens_are_stale_from_1999_to_2006() -> None:
    frame = load_bundled("sp500")
    stale = pd.Series(stale_opens(frame), index=frame.index)
    by_year = stale.groupby(stale.index.year).mean()
    assert (by_year.loc[1999:2005] > 0.94).all()
    assert (by_year.loc[2016:2018] == 0.0).all()
    assert 0.35 < stale_open_share(frame) < 0.45

    first, *rest = stale_open_stretches(frame)
    assert first.start == pd.Timestamp("1999-01-05")  # the first bar that has a previous close
    assert pd.Timestamp("2006-01-01") < first.end < pd.Timestamp("2007-01-01")
    assert first.share > 0.9
    assert all(s.start.year >= 2012 and s.share < 0.9 for s in rest)
    assert stale_open_notes(frame)[0].startswith(
        "open equals the previous close on 95% of bars from 1999-01-05 to 2006-"
    )


def test_bundled_nasdaq_opens_are_real() -> None:
    frame = load_bundled("nasdaq")
    assert stale_open_share(frame) < 0.01
    assert stale_open_stretches(frame) == []


def test_data_list_table_fits_80_columns_and_shows_the_stretches() -> None:
    rows = [_bundled_row(symbol, text) for symbol, text in BUNDLED_SYMBOLS.items()]
    rows.append(_dataset_row("mine", "/a/long/path/to/mine.csv", "600 bars, imported", None))
    console = Console(width=80, record=True, color_system=None)
    console.print(data_table(rows))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "stale opens" in text
    assert "95% 1999-01..2006-06" in text and "<1% of bars" in text and "n/a" in text
    sp500 = rows[0]
    assert sp500["stale_open_stretches"][0]["start"] == "1999-01-05T00:00:00"
    assert sp500["notes"] and rows[1]["notes"] == []
