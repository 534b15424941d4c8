"""The look-ahead probe: cut points, prefix comparison, the in-process probe of rules and
ml strategies, and the host's checks of the probe a sandboxed run sends back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratlab.market.indicators import INDICATORS
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import IndicatorRef, MlSpec, ParamRange, StrategySpec
from stratlab.sandbox import _result
from stratlab.sandbox.limits import SandboxLimits
from stratlab.sandbox.probe import probe_outcome
from stratlab.strategies.lookahead import (
    compare_prefix,
    cut_points,
    probe_ml,
    probe_rules,
    probe_signals,
    signal_cut_points,
)
from stratlab.strategies.ml import MlTrainer
from stratlab.strategies.rules import parameter_grid
from tests.fixtures.specs import sma_crossover

Signals = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1200, seed=5)


@pytest.fixture(scope="module")
def cuts(frame: pd.DataFrame) -> list[int]:
    return cut_points(len(frame))


def close_rule(close_fn: Callable[[pd.Series], pd.Series]) -> Callable[[pd.DataFrame], Signals]:
    def signals_of(data: pd.DataFrame) -> Signals:
        close = data["close"]
        level = close_fn(close)
        return (close > level).to_numpy(), (close < level).to_numpy()

    return signals_of


# --- cut points and comparison -----------------------------------------------------------


def test_cut_points_spread_over_the_bars_after_the_warm_up() -> None:
    points = cut_points(1000)
    assert len(points) == 20 and points == sorted(set(points))
    assert points[0] == 50 and points[-1] == 998  # the last bar (999) is the full run
    gaps = np.diff(points)
    assert gaps.max() - gaps.min() <= 1
    assert cut_points(1000, first=600)[0] == 600
    assert cut_points(1000, first=10, warmup=80)[0] == 80
    assert cut_points(1000, count=3) == [50, 524, 998]


def test_cut_points_on_short_data_repeat_nothing_and_may_be_empty() -> None:
    assert cut_points(60) == list(range(50, 59))
    assert cut_points(52) == [50]
    assert cut_points(51) == [] and cut_points(10) == []
    assert cut_points(1000, count=0) == []
    assert cut_points(1000, count=1) == [998]


def test_signal_cuts_take_the_first_signal_and_spread_over_the_rest() -> None:
    full = np.zeros(100, dtype=bool)
    full[[3, 10, 20, 30, 40, 50, 99]] = True
    assert signal_cut_points(full, count=3) == [3, 20, 50]  # 99 is the last bar
    assert signal_cut_points(full, count=50) == [3, 10, 20, 30, 40, 50]
    assert signal_cut_points(np.zeros(10, dtype=bool)) == []
    assert signal_cut_points(full, count=0) == []


def test_compare_prefix_names_the_first_bar_and_series() -> None:
    full_e = np.array([False, True, False, True, False])
    full_x = np.array([True, False, False, False, True])
    assert compare_prefix(full_e, full_x, full_e[:4], full_x[:4], 3) is None
    assert compare_prefix(full_e, full_x, full_e[:4], ~full_x[:4], 3) == (0, "exits")
    changed = full_e[:4].copy()
    changed[3] = False
    assert compare_prefix(full_e, full_x, changed, full_x[:4], 3) == (3, "entries")
    both = np.array([True, True, False, True])
    flipped = np.array([False, False, False, False])
    assert compare_prefix(full_e, full_x, both, flipped, 3) == (0, "entries")


def test_compare_prefix_reads_nan_and_none_as_false() -> None:
    full_e = np.array([False, True, False])
    full_x = np.array([False, False, False])
    prefix_e = pd.Series([np.nan, 1.0, np.nan])
    prefix_x = np.array([None, False, None], dtype=object)
    assert compare_prefix(full_e, full_x, prefix_e, prefix_x, 2) is None
    assert compare_prefix(full_e, full_x, np.array([None, None, None]), prefix_x, 2) == (
        1,
        "entries",
    )


def test_compare_prefix_refuses_a_prefix_of_the_wrong_length() -> None:
    full = np.zeros(10, dtype=bool)
    with pytest.raises(ValueError, match="needs 5 values"):
        compare_prefix(full, full, full[:4], full[:5], 4)
    with pytest.raises(ValueError, match="needs 5 values"):
        compare_prefix(full, full, full[:6], full[:5], 4)


# --- the generic probe -------------------------------------------------------------------


@pytest.mark.parametrize(
    "level",
    [
        lambda c: c.shift(-1),
        lambda c: c.rolling(21, center=True).mean(),
        lambda c: pd.Series(c.mean(), index=c.index),
        lambda c: c.rolling(20).mean().bfill(),
        lambda c: pd.Series(c.iloc[-1], index=c.index),
    ],
    ids=["shift(-1)", "centred", "whole mean", "bfill", "iloc[-1]"],
)
def test_look_ahead_is_found_at_its_earliest_bar(
    frame: pd.DataFrame, cuts: list[int], level: Callable[[pd.Series], pd.Series]
) -> None:
    signals_of = close_rule(level)
    probe = probe_signals(signals_of, frame, cuts)
    assert not probe.passed and probe.first_bar is not None and probe.cut is not None
    assert probe.first_bar <= probe.cut and probe.series in ("entries", "exits")
    assert probe.first_ts == frame.index[probe.first_bar].to_pydatetime()
    date = frame.index[probe.first_bar].date().isoformat()
    assert f"signal at bar {probe.first_bar} ({date}) changed" in probe.detail
    assert "shift(-n)" in probe.detail
    # Earliest over all cuts: no prefix shows an earlier change.
    entries, exits = signals_of(frame)
    for cut in cuts:
        prefix = signals_of(frame.iloc[: cut + 1])
        change = compare_prefix(entries, exits, *prefix, cut)
        assert change is None or change[0] >= probe.first_bar


def test_honest_signals_pass_and_say_how_many_prefixes_matched(
    frame: pd.DataFrame, cuts: list[int]
) -> None:
    probe = probe_signals(close_rule(lambda c: c.rolling(30).mean()), frame, cuts)
    assert probe.passed and probe.first_bar is None and probe.cut is None
    assert probe.cuts >= len(cuts)
    assert f"signals on {probe.cuts} prefixes" in probe.detail


def test_a_sparse_one_bar_peek_is_caught_by_the_cuts_at_signals(
    frame: pd.DataFrame, cuts: list[int]
) -> None:
    def peeking(data: pd.DataFrame) -> Signals:
        close = data["close"]
        up = close.rolling(10).mean() > close.rolling(40).mean()
        cross = up & ~up.shift(1, fill_value=False)
        return (cross & (close.shift(-1) > close)).to_numpy(), (~up).to_numpy()

    assert probe_signals(peeking, frame, cuts, signal_cuts=0).passed  # evenly spread: missed
    probe = probe_signals(peeking, frame, cuts)
    assert not probe.passed and probe.series == "entries"


def test_the_given_full_run_is_not_recomputed(frame: pd.DataFrame, cuts: list[int]) -> None:
    lengths: list[int] = []
    honest = close_rule(lambda c: c.ewm(span=10).mean())

    def counted(data: pd.DataFrame) -> Signals:
        lengths.append(len(data))
        return honest(data)

    probe = probe_signals(counted, frame, cuts, full=honest(frame))
    assert probe.passed and len(frame) not in lengths and len(lengths) == probe.cuts


def test_a_failure_past_the_warm_up_means_the_check_could_not_be_made(
    frame: pd.DataFrame, cuts: list[int]
) -> None:
    honest = close_rule(lambda c: c.rolling(20).mean())

    def needs_history(data: pd.DataFrame) -> Signals:
        if len(data) < 300:
            raise ValueError("need 300 bars")
        return honest(data)

    probe = probe_signals(needs_history, frame, cuts)
    assert not probe.passed and probe.first_bar is None
    assert probe.cut == cuts[0]
    assert "failed on a shorter history" in probe.detail
    assert "ValueError: need 300 bars" in probe.detail


def test_a_failure_inside_the_warm_up_is_skipped(frame: pd.DataFrame, cuts: list[int]) -> None:
    honest = close_rule(lambda c: c.shift(1))
    skipped: list[int] = []

    def needs_history(data: pd.DataFrame) -> Signals:
        if len(data) < 40:
            skipped.append(len(data) - 1)
            raise ValueError("need 40 bars")
        return honest(data)

    probe = probe_signals(needs_history, frame, cuts)
    assert skipped and max(skipped) < cuts[0]  # the first signal sits in the warm-up
    assert probe.passed and probe.cuts >= len(cuts)


def test_no_cut_points_is_not_run_never_passed(frame: pd.DataFrame) -> None:
    probe = probe_signals(close_rule(lambda c: c.shift(1)), frame.iloc[:40], [])
    assert not probe.passed and probe.cuts == 0 and probe.detail.startswith("not run")


def test_outcome_without_dates_for_a_plain_index() -> None:
    probe = probe_outcome(pd.RangeIndex(10), cuts=5, first_bar=3, series="exits", cut=7)
    assert probe.first_ts is None
    assert "the exits signal at bar 3 changed" in probe.detail
    assert "(prefix ending at bar 7)" in probe.detail


def test_outcome_keeps_intraday_times() -> None:
    index = pd.date_range("2024-01-02 09:30", periods=10, freq="h", tz="UTC")
    probe = probe_outcome(index, cuts=5, first_bar=2, series="entries", cut=4)
    assert probe.first_ts == datetime.fromisoformat("2024-01-02T11:30:00+00:00")
    assert "(2024-01-02T11:30:00+00:00)" in probe.detail


# --- rules and ml ------------------------------------------------------------------------


def test_rules_crossover_passes_for_every_grid_point(frame: pd.DataFrame, cuts: list[int]) -> None:
    spec = sma_crossover(fast=(5, 15, 5), slow=(20, 60, 20))
    for params in parameter_grid(spec):
        probe = probe_rules(spec, params, frame, cuts)
        assert probe.passed, (params, probe.detail)


@pytest.mark.parametrize("kind", sorted(INDICATORS))
def test_every_registry_indicator_passes_in_a_rule(
    frame: pd.DataFrame, cuts: list[int], kind: str
) -> None:
    outputs = INDICATORS[kind].outputs
    entry = " or ".join(f"x.{o} > lag(x.{o}, 1)" for o in outputs)
    exit_ = " or ".join(f"crosses_below(x.{o}, lag(x.{o}, 3))" for o in outputs)
    spec = StrategySpec(
        name=f"{kind} rule",
        indicators=[IndicatorRef(alias="x", kind=kind)],
        entry=f"({entry}) and close > lag(close, 2)",
        exit=exit_,
    )
    probe = probe_rules(spec, {}, frame, cuts)
    assert probe.passed, probe.detail
    assert probe.cuts >= len(cuts)


def test_rules_with_a_parameterised_threshold(frame: pd.DataFrame, cuts: list[int]) -> None:
    spec = StrategySpec(
        name="rsi band",
        indicators=[
            IndicatorRef(alias="r", kind="rsi", params={"window": "w"}),
            IndicatorRef(alias="bb", kind="bbands", params={"window": 20, "k": 2}),
        ],
        entry="r < low and close < bb.lower",
        exit="r > 70 or crosses_above(close, bb.middle)",
        parameters=[
            ParamRange(name="w", low=7, high=21, step=7),
            ParamRange(name="low", low=30, high=40, step=5),
        ],
    )
    assert probe_rules(spec, {"w": 14, "low": 35}, frame, cuts).passed


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_ml_signals_pass(classifier: str) -> None:
    frame = synthetic_ohlcv(bars=1500, seed=7)
    spec = StrategySpec(
        name=f"ml-{classifier}",
        kind="ml",
        indicators=[
            IndicatorRef(alias="r", kind="rsi", params={"window": 14}),
            IndicatorRef(alias="z", kind="zscore", params={"window": 20}),
            IndicatorRef(alias="bb", kind="bbands", params={"window": 20, "k": 2}),
        ],
        ml=MlSpec(
            features=["r", "z", "bb.pctb"],
            classifier=classifier,  # type: ignore[arg-type]
            epochs=3,
            threshold=0.5,
            exit_threshold=0.5,
        ),
    )
    trainer = MlTrainer(spec, split_by_time(frame))
    while not trainer.done:
        trainer.train_epoch()
    probe = probe_ml(spec, trainer.model_blob(), frame, cut_points(len(frame)))
    assert probe.passed, probe.detail


# --- the host's checks of a sandboxed probe ----------------------------------------------

N_BARS = 100
PLAN = _result.ProbePlan(cuts=(50, 70, 98), signal_cuts=2)
OK_PROBE: dict[str, Any] = {"cuts": 5, "first_bar": None, "series": "", "cut": None, "error": None}


def interpret(tmp_path: Path, probe: Any, plan: _result.ProbePlan | None = PLAN) -> _result.Parsed:
    bits = np.zeros(N_BARS, dtype=bool)
    bits[10] = True
    packed = base64.b64encode(np.packbits(bits).tobytes()).decode()
    document: dict[str, Any] = {
        "status": "ok",
        "n_bars": N_BARS,
        "n_sets": 1,
        "entries": packed,
        "exits": packed,
    }
    if probe is not None:
        document["probe"] = probe
    (tmp_path / "result.json").write_text(json.dumps(document))
    outcome = _result.Outcome(returncode=0, killed=None, elapsed=0.1, bwrap=True)
    return _result.interpret(outcome, tmp_path, N_BARS, 1, SandboxLimits(), plan)


@pytest.mark.parametrize(
    "probe",
    [
        OK_PROBE,
        {**OK_PROBE, "first_bar": 12, "series": "exits", "cut": 50},
        {**OK_PROBE, "cuts": 2, "cut": 70, "error": "ValueError: short"},
        {**OK_PROBE, "cuts": 7},
    ],
)
def test_a_consistent_probe_is_accepted(tmp_path: Path, probe: dict[str, Any]) -> None:
    parsed = interpret(tmp_path, probe)
    assert parsed.error_kind is None, parsed.error
    assert parsed.probe == _result.ProbeAnswer(**probe)


@pytest.mark.parametrize(
    "probe",
    [
        {**OK_PROBE, "cuts": "5"},
        {**OK_PROBE, "cuts": 5.0},
        {**OK_PROBE, "cuts": True},
        {**OK_PROBE, "cuts": -1},
        {**OK_PROBE, "cuts": 8},  # more than 3 cuts + 2 x 2 added
        {**OK_PROBE, "cuts": 2},  # a clean probe compared every caller cut
        {**OK_PROBE, "extra": 1},
        {k: v for k, v in OK_PROBE.items() if k != "error"},
        {**OK_PROBE, "first_bar": 60, "series": "exits", "cut": 50},  # after its cut
        {**OK_PROBE, "first_bar": 12, "series": "", "cut": 50},
        {**OK_PROBE, "first_bar": 12, "series": "exits", "cut": None},
        {**OK_PROBE, "first_bar": 12, "series": "exits", "cut": 99},  # the last bar
        {**OK_PROBE, "first_bar": -1, "series": "exits", "cut": 50},
        {**OK_PROBE, "first_bar": 12, "series": "signals", "cut": 50},
        {**OK_PROBE, "first_bar": 12, "series": "exits", "cut": 50, "error": "x"},
        {**OK_PROBE, "cut": 20, "error": "ValueError: short"},  # inside the warm-up
        {**OK_PROBE, "error": "ValueError: short"},
        {**OK_PROBE, "cut": 70},
        {**OK_PROBE, "cut": 70, "error": "x" * 10_001},
        [],
        None,  # asked for, not sent
    ],
)
def test_a_malformed_probe_is_a_bad_result(tmp_path: Path, probe: Any) -> None:
    parsed = interpret(tmp_path, probe)
    assert parsed.error_kind == "bad_result" and parsed.probe is None
    assert parsed.entries is None


def test_a_probe_nobody_asked_for_is_a_bad_result(tmp_path: Path) -> None:
    assert interpret(tmp_path, OK_PROBE, plan=None).error_kind == "bad_result"
    unasked = interpret(tmp_path, None, plan=None)
    assert unasked.error_kind is None and unasked.probe is None
