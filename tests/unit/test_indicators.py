"""Indicators against values worked out by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratlab.market.indicators import (
    INDICATORS,
    compute_indicator,
    describe_indicators,
    resolve_params,
)
from stratlab.market.synthetic import synthetic_ohlcv

NAN = math.nan


def closes(values: list[float]) -> pd.DataFrame:
    array = np.asarray(values, dtype=float)
    return pd.DataFrame({"open": array, "high": array, "low": array, "close": array})


def assert_values(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=0, atol=1e-9)


def test_sma_of_one_to_five() -> None:
    out = compute_indicator("sma", closes([1, 2, 3, 4, 5]), {"window": 3})
    assert_values(out["value"], [NAN, NAN, 2, 3, 4])


def test_ema_recursion_with_alpha_one_half() -> None:
    # span 3 -> alpha 2/(3+1) = 0.5, started at the first close: 1, 1.5, 2.25, 3.125, 4.0625.
    out = compute_indicator("ema", closes([1, 2, 3, 4, 5]), {"window": 3})
    assert_values(out["value"], [NAN, NAN, 2.25, 3.125, 4.0625])


# Wilder's own RSI example (also on StockCharts, which rounds the averages and so prints
# 70.53 / 66.32; the exact values are below).
RSI_CLOSES = [44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08]
RSI_CLOSES += [45.89, 46.03, 45.61, 46.28, 46.28, 46.00]


def test_rsi_matches_wilder_by_hand() -> None:
    out = compute_indicator("rsi", closes(RSI_CLOSES), {"window": 14})["value"]
    # The 14 changes up to bar 14: gains 0.06+0.72+0.50+0.27+0.32+0.42+0.24+0.14+0.67,
    # losses 0.25+0.54+0.19+0.42.
    gains, losses = 3.34, 1.40
    first = 100 * gains / (gains + losses)
    # Bar 15 changes by -0.28: Wilder's recursion avg = (13 * avg + x) / 14.
    avg_gain = (13 * gains / 14 + 0.0) / 14
    avg_loss = (13 * losses / 14 + 0.28) / 14
    second = 100 * avg_gain / (avg_gain + avg_loss)
    assert np.isnan(out[:14]).all()
    assert out[14] == pytest.approx(first, abs=1e-9)
    assert out[15] == pytest.approx(second, abs=1e-9)
    assert round(out[14], 2) == 70.46 and round(out[15], 2) == 66.25


def test_rsi_of_flat_and_rising_series() -> None:
    assert compute_indicator("rsi", closes([5.0] * 6), {"window": 3})["value"][3] == 50.0
    assert compute_indicator("rsi", closes([1, 2, 3, 4, 5, 6]), {"window": 3})["value"][5] == 100


def test_macd_is_difference_of_emas_and_its_signal() -> None:
    data = closes([1, 2, 3, 4, 5, 6])
    out = compute_indicator("macd", data, {"fast": 2, "slow": 3, "signal": 2})
    # EMA(2): alpha 2/3 -> 1, 5/3, 23/9, 95/27, ...; EMA(3): alpha 1/2 -> 1, 1.5, 2.25, 3.125.
    assert out["macd"][2] == pytest.approx(23 / 9 - 2.25)
    assert out["macd"][3] == pytest.approx(95 / 27 - 3.125)
    # The signal EMA(2) starts at the first MACD value (bar 2) and is defined from bar 3.
    signal3 = out["macd"][2] + 2 / 3 * (out["macd"][3] - out["macd"][2])
    assert np.isnan(out["signal"][2])
    assert out["signal"][3] == pytest.approx(signal3)
    assert out["hist"][3] == pytest.approx(out["macd"][3] - signal3)


def test_bbands_use_population_std() -> None:
    out = compute_indicator("bbands", closes([1, 2, 3, 4, 5]), {"window": 3, "k": 2})
    s = math.sqrt(2 / 3)  # population std of (1, 2, 3)
    assert_values(out["middle"], [NAN, NAN, 2, 3, 4])
    assert_values(out["upper"], [NAN, NAN, 2 + 2 * s, 3 + 2 * s, 4 + 2 * s])
    assert_values(out["lower"], [NAN, NAN, 2 - 2 * s, 3 - 2 * s, 4 - 2 * s])
    assert out["pctb"][2] == pytest.approx((1 + 2 * s) / (4 * s))


def test_atr_seeds_with_mean_true_range_then_wilder() -> None:
    frame = pd.DataFrame(
        {
            "open": [10.0, 11, 12, 11],
            "high": [11.0, 12, 14, 12],
            "low": [9.0, 10, 11, 9],
            "close": [10.0, 11, 13, 10],
        }
    )
    # True ranges: 2 (high-low), 2, max(3, |14-11|, |11-11|) = 3, max(3, |12-13|, |9-13|) = 4.
    out = compute_indicator("atr", frame, {"window": 3})["value"]
    assert_values(out, [NAN, NAN, 7 / 3, (2 * 7 / 3 + 4) / 3])


def test_roc_zscore_stoch_donchian() -> None:
    assert_values(
        compute_indicator("roc", closes([1, 2, 4, 8]), {"window": 2})["value"],
        [NAN, NAN, 300, 300],
    )
    z = compute_indicator("zscore", closes([1, 2, 3, 4, 5]), {"window": 3})["value"]
    assert_values(z, [NAN, NAN, 1 / math.sqrt(2 / 3)] + [1 / math.sqrt(2 / 3)] * 2)
    frame = pd.DataFrame(
        {"high": [10.0, 12, 11, 13], "low": [8.0, 9, 9, 10], "close": [9.0, 11, 10, 12]}
    )
    stoch = compute_indicator("stoch", frame, {"k_window": 2, "d_window": 2})
    # k at bar 1: (11-8)/(12-8); bar 2: (10-9)/(12-9); bar 3: (12-9)/(13-9).
    assert_values(stoch["k"], [NAN, 75, 100 / 3, 75])
    assert_values(stoch["d"], [NAN, NAN, (75 + 100 / 3) / 2, (100 / 3 + 75) / 2])
    donchian = compute_indicator("donchian", frame, {"window": 2})
    assert_values(donchian["upper"], [NAN, 12, 12, 13])
    assert_values(donchian["lower"], [NAN, 8, 9, 9])


def test_missing_params_use_defaults() -> None:
    frame = synthetic_ohlcv(bars=300)
    default = compute_indicator("sma", frame, {})["value"]
    explicit = compute_indicator("sma", frame, {"window": 20})["value"]
    np.testing.assert_array_equal(default, explicit)
    assert resolve_params("macd", {"fast": 5}) == {"fast": 5.0, "slow": 26.0, "signal": 9.0}


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("smaa", {}, r"unknown indicator kind 'smaa'; known kinds: sma, ema"),
        ("sma", {"window": 1}, r"window=1 is outside 2\.\.500"),
        ("sma", {"window": 10.5}, r"window must be an integer"),
        ("sma", {"length": 10}, r"sma has no parameter 'length'; parameters: window"),
        ("bbands", {"k": float("nan")}, r"k must be finite"),
    ],
)
def test_bad_kind_or_params_raise_value_error(
    kind: str, params: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compute_indicator(kind, closes([1.0] * 10), params)


def test_every_indicator_is_float64_aligned_and_never_looks_ahead() -> None:
    frame = synthetic_ohlcv(bars=400, seed=3)
    for kind, definition in INDICATORS.items():
        full = compute_indicator(kind, frame, {})
        head = compute_indicator(kind, frame.iloc[:250], {})
        assert tuple(full) == definition.outputs
        for name, values in full.items():
            assert values.dtype == np.float64 and values.shape == (400,), (kind, name)
            assert np.isfinite(values[-50:]).all(), (kind, name)
            # Values up to bar 249 must not change when later bars are added.
            np.testing.assert_allclose(head[name], values[:250], rtol=1e-12, err_msg=kind)


def test_catalogue_names_every_indicator_and_its_outputs() -> None:
    text = describe_indicators()
    for name in INDICATORS:
        assert f"- {name}(" in text
    assert "macd(fast=12 [2..200], slow=26 [3..400], signal=9 [2..200]) -> macd, signal, hist" in (
        text
    )
