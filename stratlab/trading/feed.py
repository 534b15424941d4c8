"""Where a paper strategy's bars come from: a replayed historical clock or a live-style feed.

Both read the same sources, one frame per symbol: the file given in ``feed`` (re-read
whenever it changes, so a file that grows is a live feed), else the symbol's data set
(imported, or bundled). The decision calendar is the bars every symbol has, so each
decision sees one bar of each instrument. ``next_bar`` picks the first calendar bar after
the cursor: on the replayed clock bounded by ``replay_from``/``replay_to``; on the live
feed the newest bar when the strategy starts, then each bar that appears later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from stratlab.market.datasets import read_ohlcv_file
from stratlab.models.paper import PaperTradingInput
from stratlab.models.records import SkillRecord
from stratlab.models.trading import Candle, FeatureVector, InstrumentRef, to_utc
from stratlab.store.market import MarketRepo
from stratlab.strategies.rules import rules_signals
from stratlab.trading.features import compute_features

LOOKBACK_BARS = 260
"""Bars of history behind each decision: enough for every feature's warm-up (SMA 50)."""

_file_cache: dict[Path, tuple[tuple[float, int], pd.DataFrame]] = {}


@dataclass(frozen=True)
class NextBar:
    ts: datetime | None
    finished: bool = False
    waiting: str = ""


def _utc_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(frame.index)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def read_feed_file(path: str) -> pd.DataFrame:
    """A feed file's bars, re-read only when its size or mtime changed."""
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    key = (stat.st_mtime, stat.st_size)
    cached = _file_cache.get(resolved)
    if cached is None or cached[0] != key:
        cached = (key, read_ohlcv_file(resolved))
        _file_cache[resolved] = cached
    return cached[1]


async def load_frames(settings: PaperTradingInput, market: MarketRepo) -> dict[str, pd.DataFrame]:
    """Each symbol's bars with a UTC index, oldest first."""
    from stratlab.research.data import load_frame

    frames: dict[str, pd.DataFrame] = {}
    for symbol in settings.symbols:
        path = settings.feed.get(symbol)
        frame = read_feed_file(path) if path else await load_frame(symbol, market)
        frames[symbol] = frame.set_axis(_utc_index(frame))
    return frames


def calendar(frames: Mapping[str, pd.DataFrame]) -> pd.DatetimeIndex:
    """The bars every symbol has, in time order."""
    common: pd.DatetimeIndex | None = None
    for frame in frames.values():
        index = pd.DatetimeIndex(frame.index)
        common = index if common is None else common.intersection(index)
    return common.sort_values() if common is not None else pd.DatetimeIndex([], tz="UTC")


def _day_start(day: date) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize("UTC")


def next_bar(
    settings: PaperTradingInput, frames: Mapping[str, pd.DataFrame], cursor: datetime | None
) -> NextBar:
    bars = calendar(frames)
    if cursor is not None:
        bars = bars[bars > pd.Timestamp(to_utc(cursor))]
    if settings.replay_from is not None:
        bars = bars[bars >= _day_start(settings.replay_from)]
        if settings.replay_to is not None:
            bars = bars[bars < _day_start(settings.replay_to + timedelta(days=1))]
        if len(bars) == 0:
            return NextBar(None, finished=True)
        return NextBar(bars[0].to_pydatetime())
    if len(bars) == 0:
        after = f" after {to_utc(cursor).isoformat()}" if cursor else ""
        return NextBar(None, waiting=f"no new bar{after} in the feed of {_sources(settings)}")
    # Live: the first decision is on the newest bar, never a replay of the past.
    return NextBar((bars[-1] if cursor is None else bars[0]).to_pydatetime())


def _sources(settings: PaperTradingInput) -> str:
    return ", ".join(
        f"{s} ({os.path.basename(settings.feed[s])})" if s in settings.feed else s
        for s in settings.symbols
    )


def candles_until(
    symbol: str, frame: pd.DataFrame, ts: datetime, *, interval: str, lookback: int
) -> list[Candle]:
    window = frame.loc[: pd.Timestamp(to_utc(ts))].tail(lookback)
    ref = InstrumentRef(symbol=symbol)
    volume = window["volume"] if "volume" in window else pd.Series(0.0, index=window.index)
    return [
        Candle(
            ts=stamp.to_pydatetime(),
            instrument=ref,
            open=float(o),
            high=float(h),
            low=float(lo),
            close=float(c),
            volume=0.0 if math.isnan(v) else float(v),
            interval=interval,
        )
        for stamp, o, h, lo, c, v in zip(
            window.index,
            window["open"],
            window["high"],
            window["low"],
            window["close"],
            volume,
            strict=True,
        )
    ]


def skill_position(skill: SkillRecord, frame: pd.DataFrame, ts: datetime) -> float | None:
    """1.0 when the skill's rules hold a long position at ``ts`` (last entry after the
    last exit), 0.0 when flat; None for a skill without rules."""
    if skill.spec.kind != "rules":
        return None
    window = frame.loc[: pd.Timestamp(to_utc(ts))].tail(LOOKBACK_BARS * 2)
    window = window.set_axis(pd.DatetimeIndex(window.index).tz_localize(None))
    entries, exits = rules_signals(skill.spec, window, [skill.params])
    entry_at = np.flatnonzero(entries[:, 0])
    exit_at = np.flatnonzero(exits[:, 0])
    last_entry = entry_at[-1] if len(entry_at) else -1
    last_exit = exit_at[-1] if len(exit_at) else -1
    return 1.0 if last_entry > last_exit else 0.0


def features_at(
    settings: PaperTradingInput,
    frames: Mapping[str, pd.DataFrame],
    ts: datetime,
    skill: SkillRecord | None,
) -> tuple[dict[str, Candle], list[FeatureVector]]:
    """The decision bar of each symbol and its feature vector (plus ``skill_position``)."""
    bars: dict[str, Candle] = {}
    vectors: list[FeatureVector] = []
    for symbol, frame in frames.items():
        candles = candles_until(
            symbol, frame, ts, interval=settings.interval, lookback=LOOKBACK_BARS
        )
        bars[symbol] = candles[-1]
        (vector,) = compute_features(candles, last_only=True)
        if skill is not None:
            held = skill_position(skill, frame, ts)
            if held is not None:
                vector.values["skill_position"] = held
        vectors.append(vector)
    return bars, vectors
