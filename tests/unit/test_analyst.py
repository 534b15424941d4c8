"""The data-driven analyst relaxes thresholds the training data never reaches, and only those."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stratlab.llm.offline.inspect import CODE_FAMILIES, Knobs
from stratlab.market.datasets import load_bundled
from stratlab.market.indicators import compute_indicator
from stratlab.market.splits import Splits, split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec
from stratlab.research.analyst import analyse_conditions, render_suggestions
from tests.fixtures.offline_requests import design, designer_request


@pytest.fixture(scope="module")
def synthetic() -> Splits:
    return split_by_time(synthetic_ohlcv(bars=1500, seed=0), train=0.6, validation=0.2)


@pytest.fixture(scope="module")
def sp500() -> Splits:
    return split_by_time(load_bundled("sp500"), train=0.6, validation=0.2)


def rsi_rules(entry: str, exit_: str, window: int | str, *params: ParamRange) -> StrategySpec:
    return StrategySpec(
        name="rsi-test",
        kind="rules",
        indicators=[IndicatorRef(alias="rsi", kind="rsi", params={"window": window})],
        entry=entry,
        exit=exit_,
        parameters=list(params),
    )


def test_a_threshold_the_synthetic_data_never_reaches_is_relaxed(synthetic: Splits) -> None:
    # RSI over 21..28 bars never drops below about 26 on this train split.
    spec = rsi_rules(
        "rsi < oversold",
        "rsi > 60",
        "rsi_window",
        ParamRange(name="rsi_window", low=21, high=28, step=7),
        ParamRange(name="oversold", low=10, high=20, step=5),
    )
    (suggestion,) = analyse_conditions(spec, synthetic)
    rsi = np.concatenate(
        [compute_indicator("rsi", synthetic.train, {"window": w})["value"] for w in (21, 28)]
    )
    rsi = rsi[np.isfinite(rsi)]
    assert suggestion.parameter == "oversold" and suggestion.op == "<"
    assert suggestion.hits == 0 and suggestion.label == "RSI(21..28)"
    assert suggestion.data_min == pytest.approx(rsi.min())
    assert suggestion.data_p5 == pytest.approx(np.percentile(rsi, 5))
    assert suggestion.proposed >= suggestion.data_p5 > suggestion.parameter_high  # type: ignore[operator]
    assert suggestion.proposed - suggestion.data_p5 <= 1.0  # rounded up to a whole RSI point
    assert (rsi < suggestion.proposed).mean() >= 0.05  # the data does reach the proposal


def test_reachable_thresholds_get_no_suggestion(synthetic: Splits, sp500: Splits) -> None:
    spec = rsi_rules(
        "rsi < oversold",
        "rsi > exit_level",
        14,
        ParamRange(name="oversold", low=25, high=35, step=5),
        ParamRange(name="exit_level", low=55, high=75, step=10),
    )
    assert analyse_conditions(spec, synthetic) == []
    assert analyse_conditions(spec, sp500) == []
    assert render_suggestions([]) == ""


def test_a_real_threshold_on_sp500_is_relaxed_to_its_5th_percentile(sp500: Splits) -> None:
    # On the sp500 train split (1999-2010) RSI(28) never goes below 23.6.
    spec = rsi_rules(
        "rsi < oversold",
        "rsi > 55",
        28,
        ParamRange(name="oversold", low=10, high=20, step=5),
    )
    (suggestion,) = analyse_conditions(spec, sp500)
    assert suggestion.data_min == pytest.approx(23.58, abs=0.01)
    assert suggestion.proposed == 40.0  # its 5th percentile, 39.08, rounded up
    assert render_suggestions([suggestion]) == (
        "Data check on the training split (deterministic analyst):\n"
        "- RSI(28) never goes below 23.6 on the training data; relax oversold to about 40 "
        "(its 5th percentile)"
    )


def test_fixed_numbers_crossings_and_above_conditions(synthetic: Splits) -> None:
    spec = rsi_rules("crosses_above(rsi, 5)", "rsi > 95 or close > 100000", 14)
    found = {s.condition: s for s in analyse_conditions(spec, synthetic)}
    assert set(found) == {"crosses_above(rsi, 5)", "rsi > 95", "close > 100000"}
    assert (
        found["crosses_above(rsi, 5)"].op == "<=" and found["crosses_above(rsi, 5)"].threshold == 5
    )
    assert (
        found["rsi > 95"].percentile == 95
        and found["rsi > 95"].proposed <= found["rsi > 95"].data_p95
    )
    text = render_suggestions(list(found.values()))
    assert "never goes above" in text and "relax the threshold 95 in 'rsi > 95'" in text


def test_the_analyst_is_deterministic_and_ignores_ml(synthetic: Splits) -> None:
    spec = rsi_rules("rsi < 3", "rsi > 50", 14)
    assert analyse_conditions(spec, synthetic) == analyse_conditions(spec, synthetic)
    assert analyse_conditions(StrategySpec(name="m", kind="ml"), synthetic) == []


@pytest.mark.parametrize(
    ("family", "param", "low", "high", "label"),
    [
        ("rsi_reversion", "oversold", 0, 1, "RSI("),  # RSI(7) bottoms at 1.6
        ("zscore_reversion", "entry_z", -9, -7, "ZSCORE("),
        ("momentum", "entry_roc", 80, 90, "ROC("),
        ("bollinger_reversion", "entry_pctb", -3, -2, "BBANDS("),
    ],
)
def test_code_thresholds_are_checked_against_the_obvious_indicator(
    synthetic: Splits, family: str, param: str, low: float, high: float, label: str
) -> None:
    draft = CODE_FAMILIES[family][1](random.Random(0), Knobs())
    parameters = [
        p.model_copy(update={"low": low, "high": high, "step": 1.0}) if p.name == param else p
        for p in draft.parameters
    ]
    spec = StrategySpec(name=family, kind="code", code=draft.code, parameters=parameters)
    (suggestion,) = [s for s in analyse_conditions(spec, synthetic) if s.parameter == param]
    assert suggestion.source == "code" and suggestion.label.startswith(label)
    assert suggestion.hits == 0
    # The same family with its own, reachable ranges raises nothing about that parameter.
    plain = spec.model_copy(update={"parameters": draft.parameters})
    assert [s for s in analyse_conditions(plain, synthetic) if s.parameter == param] == []


async def test_the_offline_designer_follows_the_analyst(sp500: Splits) -> None:
    spec = rsi_rules(
        "rsi < oversold",
        "rsi > 55",
        28,
        ParamRange(name="oversold", low=10, high=20, step=5),
    ).model_copy(update={"name": "sp500-rsi-reversion-00aa"})
    feedback = "Out-of-sample: sharpe 0.00, trades 12.\n" + render_suggestions(
        analyse_conditions(spec, sp500)
    )
    revised = await design(
        designer_request(kind="rules", previous=spec, feedback=feedback, iteration=2)
    )
    (oversold,) = [p for p in revised.parameters if p.name == "oversold"]
    assert (oversold.low, oversold.high, oversold.step) == (30, 40, 5)
    assert analyse_conditions(revised, sp500) == []
