"""Digest numbers on hand-made trades, round trips from fills, and the composer's features
(kept here because they are the other input the composer reads besides the digest)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from stratlab.market.indicators import compute_indicator
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.trading import Candle, Fill, InstrumentRef, TradeHistoryEntry
from stratlab.trading.digest import (
    build_digest,
    execution_record,
    fills_from_records,
    trades_from_fills,
)
from stratlab.trading.features import FEATURE_NAMES, compute_features

T0 = datetime(2021, 3, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def trade(
    symbol: str, entry: float, exit_: float, pnl: float, pct: float, qty: float, price: float
):
    return TradeHistoryEntry(
        instrument=InstrumentRef(symbol=symbol),
        side="buy",
        type="long",
        entry_ts=day(entry),
        exit_ts=day(exit_),
        quantity=qty,
        entry_price=price,
        realized_pnl=pnl,
        realized_pnl_pct=pct,
        holding_ms=(exit_ - entry) * DAY_MS,
        exit_bar=int(exit_),
    )


TRADES = [
    trade("AAA", 0, 2, 100.0, 0.10, 10, 100.0),
    trade("AAA", 3, 4, -50.0, -0.05, 10, 100.0),
    trade("AAA", 5, 8, 20.0, 0.02, 5, 80.0),
    trade("BBB", 1, 2, -10.0, -2.0, 1, 5.0),
    trade("AAA", 9, 12, 999.0, 0.5, 1, 1.0),  # exits after "now": not seen yet
]


def test_digest_numbers_on_a_hand_made_trade_list() -> None:
    digest = build_digest(TRADES, day(10))
    assert digest.ts == day(10) and sorted(digest.by_instrument) == ["AAA", "BBB"]
    aaa = digest.by_instrument["AAA"]
    assert aaa.trade_count == 3
    assert aaa.realized_pnl == pytest.approx(70.0)
    assert aaa.win_rate == pytest.approx(2 / 3)
    assert aaa.avg_holding_ms == pytest.approx(2 * DAY_MS)
    assert aaa.last_trade_ts == aaa.last_exit_ts == day(8)
    assert aaa.last_exit_bar == 8
    assert aaa.avg_entry_price == pytest.approx(96.0)  # (1000 + 1000 + 400) / 25 units
    # A positive fraction, as everywhere: the trades compounded are 1.10, 1.045, 1.0659.
    assert aaa.max_drawdown == pytest.approx(1 - 1.045 / 1.10)
    assert aaa.recent_performance_score == pytest.approx((0.10 - 0.05 + 0.02) / 3)
    bbb = digest.by_instrument["BBB"]
    assert bbb.max_drawdown == 1.0  # a -200% short loses the whole stake, no more
    assert bbb.recent_performance_score == -1.0  # clipped
    recent = build_digest(TRADES, day(10), recent_trades=2).by_instrument["AAA"]
    assert recent.recent_performance_score == pytest.approx((-0.05 + 0.02) / 2)
    assert build_digest([], day(10)).by_instrument == {}


def fill(n: int, side: str, qty: float, price: float, fee: float, iid: str) -> Fill:
    return Fill.model_validate(
        {
            "instruction_id": iid,
            "compose_id": iid.split(":")[0],
            "symbol": "AAA",
            "ts": day(n),
            "side": side,
            "quantity": qty,
            "price": price,
            "fee": fee,
            "bar_index": n,
        }
    )


FILLS = [
    fill(1, "buy", 10, 100.0, 1.0, "c0:AAA"),
    fill(2, "buy", 10, 110.0, 1.0, "c1:AAA"),  # average 105
    fill(3, "sell", 5, 120.0, 0.5, "c2:AAA"),
    fill(4, "sell", 25, 100.0, 2.5, "c3:AAA"),  # closes 15, opens a short of 10
    fill(6, "buy", 10, 90.0, 1.0, "c5:AAA"),
]


def test_round_trips_from_fills_split_a_flip_and_its_fee() -> None:
    long, short = trades_from_fills(list(reversed(FILLS)))  # any order in, by time out
    assert (long.type, long.side, long.quantity) == ("long", "buy", 20)
    assert (long.entry_price, long.exit_price) == (105.0, 105.0)
    assert long.fees == pytest.approx(1 + 1 + 0.5 + 1.5)  # 15 of the flip's 25 units
    assert long.realized_pnl == pytest.approx(-4.0)
    assert long.realized_pnl_pct == pytest.approx(-4.0 / 2100)
    assert (long.entry_ts, long.exit_ts, long.holding_ms) == (day(1), day(4), 3 * DAY_MS)
    assert (long.trade_id, long.compose_id, long.exit_bar) == ("trade:c0:AAA", "c0", 4)
    assert (short.type, short.side, short.quantity) == ("short", "sell", 10)
    assert (short.entry_price, short.exit_price) == (100.0, 90.0)
    assert short.realized_pnl == pytest.approx(100.0 - 2.0)
    assert short.instruction_id == "c3:AAA"
    [still_open] = trades_from_fills(FILLS[:2], include_open=True)
    assert still_open.exit_ts is None and still_open.realized_pnl is None
    assert trades_from_fills(FILLS[:2]) == []


def test_digest_from_history_records_ignores_a_recorded_retry() -> None:
    records = [
        execution_record("c0", day(1), FILLS[:2]),
        execution_record("c0", day(1), FILLS[:2]),  # the same cycle recorded twice
        execution_record("c3", day(4), FILLS[2:]),
    ]
    assert fills_from_records(records) == FILLS
    from_records = build_digest(records, day(7))
    assert from_records == build_digest(trades_from_fills(FILLS), day(7))
    aaa = from_records.by_instrument["AAA"]
    assert aaa.trade_count == 2 and aaa.realized_pnl == pytest.approx(94.0)
    assert aaa.win_rate == 0.5 and aaa.last_exit_bar == 6


def candles(symbol: str, bars: int, seed: int = 0) -> list[Candle]:
    frame = synthetic_ohlcv(bars=bars, seed=seed)
    return [
        Candle(
            ts=ts.to_pydatetime(),
            instrument=InstrumentRef(symbol=symbol),
            open=row.open,
            high=row.high,
            low=row.low,
            close=row.close,
            volume=row.volume,
        )
        for ts, row in frame.iterrows()
    ]


def test_features_from_the_indicator_registry() -> None:
    given = candles("BBB", 30, seed=1) + list(reversed(candles("AAA", 120)))
    aaa, bbb = compute_features(given)
    frame = synthetic_ohlcv(bars=120, seed=0)
    close = frame["close"].to_numpy()
    assert aaa.instrument.symbol == "AAA" and aaa.ts == frame.index[-1].tz_localize(UTC)
    assert set(aaa.values) == set(FEATURE_NAMES)
    assert aaa.values["ret_1"] == pytest.approx(close[-1] / close[-2] - 1)
    assert aaa.values["ret_20"] == pytest.approx(close[-1] / close[-21] - 1)
    atr = compute_indicator("atr", frame, {"window": 14})["value"][-1]
    assert aaa.values["atr_14_pct"] == pytest.approx(atr / close[-1])
    sma = [np.mean(close[-w:]) for w in (20, 50)]
    assert aaa.values["sma_ratio_20_50"] == pytest.approx(sma[0] / sma[1])
    assert 0 <= aaa.values["rsi_14"] <= 100
    # 30 bars: SMA(50) is still warming up, so the ratio is left out, not sent as NaN.
    assert "sma_ratio_20_50" not in bbb.values and "ret_20" in bbb.values
    every = compute_features(candles("AAA", 25), last_only=False)
    assert len(every) == 25 and set(every[0].values) == {"close"}
    assert all(math.isfinite(v) for fv in every for v in fv.values.values())
