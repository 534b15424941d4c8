"""Market bars in Postgres: exact round trips and whole-set replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratlab.store.db import Pool
from stratlab.store.market import MarketRepo, bars_content_hash, normalise_bars


def synthetic_bars(n: int = 500, seed: int = 7, start: str = "2001-01-02") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.004,
            "low": np.minimum(open_, close) * 0.996,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, n).astype("float64"),
        },
        index=pd.bdate_range(start, periods=n, name="ts").as_unit("ns"),  # as stratlab.market
    )
    return frame


async def test_bars_round_trip_exactly(db_pool: Pool) -> None:
    repo = MarketRepo(db_pool)
    bars = synthetic_bars()
    dataset = await repo.replace_bars("synth", bars, source="synthetic:7")

    loaded = await repo.load_bars("synth")
    assert loaded is not None
    pd.testing.assert_frame_equal(loaded, bars, check_freq=False)
    assert loaded.index.name == "ts" and loaded.index.tz is None
    assert list(loaded.dtypes) == [np.dtype("float64")] * 5

    assert (dataset.symbol, dataset.rows, dataset.source) == ("synth", 500, "synthetic:7")
    assert dataset.first_ts is not None and dataset.last_ts is not None
    assert dataset.first_ts.replace(tzinfo=None) == bars.index[0]
    assert dataset.last_ts.replace(tzinfo=None) == bars.index[-1]
    assert dataset.content_hash == bars_content_hash(normalise_bars(bars))


async def test_reimport_replaces_the_whole_set(db_pool: Pool) -> None:
    repo = MarketRepo(db_pool)
    first = await repo.replace_bars("synth", synthetic_bars(300), source="a.csv")
    newer = synthetic_bars(200, seed=8, start="2010-01-04")
    second = await repo.replace_bars("synth", newer, source="b.csv")
    await repo.replace_bars("other", synthetic_bars(10), source="c.csv")

    loaded = await repo.load_bars("synth")
    assert loaded is not None and len(loaded) == 200
    assert loaded.index[0] == pd.Timestamp("2010-01-04")
    assert second.content_hash != first.content_hash and second.source == "b.csv"
    assert [d.symbol for d in await repo.list_datasets()] == ["other", "synth"]
    assert await repo.load_bars("unknown") is None


async def test_frames_are_normalised_on_the_way_in(db_pool: Pool) -> None:
    repo = MarketRepo(db_pool)
    bars = synthetic_bars(50)
    # Upper-case columns, tz-aware index, a ts column, reversed order, no volume.
    messy = bars.drop(columns="volume").rename(columns=str.upper).iloc[::-1]
    messy.index = messy.index.tz_localize("America/New_York")
    messy = messy.reset_index().rename(columns={"ts": "TS"})
    await repo.replace_bars("messy", messy, source="test")

    loaded = await repo.load_bars("messy")
    assert loaded is not None
    expected_index = bars.index.tz_localize("America/New_York").tz_convert("UTC").tz_localize(None)
    assert list(loaded.index) == list(expected_index)
    assert loaded["close"].tolist() == bars["close"].tolist()
    assert loaded["volume"].isna().all()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (synthetic_bars(5).iloc[:0], "no bars"),
        (pd.concat([synthetic_bars(3), synthetic_bars(3)]), "duplicate bar timestamp"),
        (synthetic_bars(5).drop(columns="close"), "lack columns"),
        (synthetic_bars(5).reset_index(drop=True), "DatetimeIndex"),
        (synthetic_bars(5).assign(open=[1.0, np.nan, 1.0, 1.0, 1.0]), "missing"),
    ],
    ids=["empty", "duplicates", "no-close", "no-timestamps", "nan-open"],
)
async def test_bad_frames_get_a_clear_error_and_change_nothing(
    db_pool: Pool, frame: pd.DataFrame, message: str
) -> None:
    repo = MarketRepo(db_pool)
    await repo.replace_bars("synth", synthetic_bars(20), source="good")
    with pytest.raises(ValueError, match=message):
        await repo.replace_bars("synth", frame, source="bad")
    loaded = await repo.load_bars("synth")
    assert loaded is not None and len(loaded) == 20
