"""Spec validation: valid specs pass, and every problem is named so a designer can fix it."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from stratlab.models.research import IndicatorRef, MlSpec, ParamRange, StrategySpec
from stratlab.strategies.validation import StrategyValidationError, validate_spec


def crossover(**changes: Any) -> StrategySpec:
    spec = StrategySpec(
        name="sma crossover",
        indicators=[
            IndicatorRef(alias="fast", kind="sma", params={"window": "fast_window"}),
            IndicatorRef(alias="slow", kind="sma", params={"window": "slow_window"}),
            IndicatorRef(alias="m", kind="macd", params={"fast": 12, "slow": 26}),
        ],
        entry="crosses_above(fast, slow) and m.hist > 0",
        exit="crosses_below(fast, slow) or close < slow * (1 - drop)",
        parameters=[
            ParamRange(name="fast_window", low=5, high=50, step=5),
            ParamRange(name="slow_window", low=60, high=200, step=20),
            ParamRange(name="drop", low=0.02, high=0.1, step=0.02),
        ],
        stop_loss=0.05,
    )
    return spec.model_copy(update=changes)


def ml_spec(**changes: Any) -> StrategySpec:
    ml = MlSpec(features=["r", "m.hist", "close"]).model_copy(update=changes)
    return StrategySpec(
        name="ml",
        kind="ml",
        indicators=[
            IndicatorRef(alias="r", kind="rsi", params={"window": 14}),
            IndicatorRef(alias="m", kind="macd"),
        ],
        ml=ml,
    )


def problems_of(spec: StrategySpec, **options: Any) -> list[str]:
    with pytest.raises(StrategyValidationError) as info:
        validate_spec(spec, **options)
    return info.value.problems


def test_valid_specs_pass() -> None:
    validate_spec(crossover(), known_symbols={"sp500", "nasdaq"})
    validate_spec(ml_spec())
    validate_spec(
        StrategySpec(name="no params", entry="close > lag(close, 1)", exit="close < open")
    )


def test_error_lists_problems_and_reads_as_one_line() -> None:
    error = StrategyValidationError(["a is wrong", "b is missing"])
    assert str(error) == "invalid strategy: a is wrong; b is missing"
    assert isinstance(error, ValueError)
    assert pickle.loads(pickle.dumps(error)).problems == error.problems


def test_unknown_kind_suggests_and_lists_known_kinds() -> None:
    spec = crossover()
    spec.indicators[0] = IndicatorRef(alias="fast", kind="smaa", params={"window": "fast_window"})
    (problem,) = problems_of(spec)
    assert problem.startswith(
        "indicator 'fast' uses unknown kind 'smaa' (did you mean 'sma'?); known kinds: sma, ema"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "  "}, "name is empty"),
        ({"entry": ""}, "entry condition is empty"),
        ({"exit": "close +"}, "exit condition 'close +' is invalid: expected a number"),
        ({"entry": "crosses_above(fast, slwo)"}, "entry uses unknown name 'slwo' (did you mean"),
        ({"entry": "m.signl > 0"}, "entry uses 'm.signl', but 'm' has outputs: macd, signal, hist"),
        ({"stop_loss": 5.0}, "stop_loss must be a fraction between 0 and 1"),
        ({"take_profit": 0.0}, "take_profit must be a fraction between 0 and 1"),
        ({"symbol": "ftse"}, "symbol 'ftse' is not available; known symbols: nasdaq, sp500"),
    ],
)
def test_spec_level_problems(change: dict[str, Any], expected: str) -> None:
    problems = problems_of(crossover(**change), known_symbols=["sp500", "nasdaq"])
    assert any(p.startswith(expected) for p in problems), problems


def test_alias_and_parameter_naming_problems() -> None:
    spec = crossover()
    spec.indicators.append(IndicatorRef(alias="fast", kind="ema"))
    spec.indicators.append(IndicatorRef(alias="close", kind="ema"))
    spec.indicators.append(IndicatorRef(alias="lag", kind="ema"))
    spec.indicators.append(IndicatorRef(alias="9lives", kind="ema"))
    spec.parameters.append(ParamRange(name="drop", low=0.1, high=0.2, step=0.1))
    problems = problems_of(spec)
    assert "indicator alias 'fast' is used more than once" in problems
    assert "indicator alias 'close' is a reserved word; pick another name" in problems
    assert "indicator alias 'lag' is a reserved word; pick another name" in problems
    assert any(p.startswith("indicator alias '9lives' is not a valid name") for p in problems)
    assert "parameter 'drop' is defined more than once" in problems


def test_indicator_param_problems() -> None:
    spec = crossover()
    spec.indicators[2] = IndicatorRef(
        alias="m", kind="macd", params={"fast": 1, "slwo": 30, "signal": 2.5}
    )
    problems = problems_of(spec)
    assert "indicator 'm' (macd): fast=1 is outside 2..200" in problems
    assert (
        "indicator 'm' (macd) has no param 'slwo'; its params are: fast, slow, signal" in problems
    )
    assert "indicator 'm' (macd): signal must be an integer, got 2.5" in problems


def test_parameter_ranges_must_fit_the_indicator() -> None:
    spec = crossover()
    spec.parameters[0] = ParamRange(name="fast_window", low=1, high=20, step=1)
    spec.parameters[1] = ParamRange(name="slow_window", low=60, high=200, step=0.5)
    problems = problems_of(spec)
    assert (
        "indicator 'fast' (sma) param 'window' allows 2..500, but parameter 'fast_window' "
        "ranges 1..20" in problems
    )
    assert any("must be a whole number, but parameter 'slow_window'" in p for p in problems)


def test_parameter_range_problems_and_unused_parameters() -> None:
    spec = crossover()
    spec.parameters[2] = ParamRange(name="drop", low=0.2, high=0.1, step=0.01)
    spec.parameters.append(ParamRange(name="spare", low=1, high=2, step=0))
    spec.parameters.append(ParamRange(name="unused", low=1, high=2))
    problems = problems_of(spec)
    assert "parameter 'drop' has low 0.2 above high 0.1" in problems
    assert "parameter 'spare' needs a positive step, got 0" in problems
    assert any(p.startswith("parameter 'unused' is never used") for p in problems)
    # The broken parameter is reported once, not again where the exit uses it.
    assert not any("'drop'" in p and "unknown" in p for p in problems)


def test_undefined_parameter_reference() -> None:
    spec = crossover()
    spec.indicators[0] = IndicatorRef(alias="fast", kind="sma", params={"window": "fastwin"})
    problems = problems_of(spec)
    assert any("refers to unknown parameter 'fastwin'" in p for p in problems)
    assert any(p.startswith("parameter 'fast_window' is never used") for p in problems)


def test_grid_size_limit() -> None:
    spec = crossover()
    spec.parameters[0] = ParamRange(name="fast_window", low=2, high=101, step=1)
    (problem,) = problems_of(spec, max_grid_size=1000)
    assert problem.startswith(
        "parameter grid has 4000 combinations (fast_window 100 x slow_window 8 x drop 5); "
        "the limit is 1000"
    )
    validate_spec(spec, max_grid_size=4000)


def test_ml_requirements() -> None:
    validate_spec(ml_spec(features=["r", "m.signal", "volume"]))
    problems = problems_of(
        ml_spec(features=["r", "rsi14"], label_horizon=0, threshold=0.4, epochs=1000)
    )
    assert any(p.startswith("ml feature 'rsi14' is unknown") for p in problems)
    assert "ml.label_horizon must be 1..60 bars, got 0" in problems
    assert "ml.threshold must be at least 0.5 and below 1, got 0.4" in problems
    assert "ml.epochs must be 1..500, got 1000" in problems
    assert problems_of(ml_spec(features=[]))[0].startswith("ml.features is empty")
    missing = StrategySpec(name="ml", kind="ml")
    assert problems_of(missing) == [
        "kind 'ml' needs an 'ml' section (features, label_horizon, threshold...)"
    ]


def test_ml_indicator_params_must_be_numbers() -> None:
    spec = ml_spec()
    spec.indicators[0] = IndicatorRef(alias="r", kind="rsi", params={"window": "w"})
    spec.parameters = [ParamRange(name="w", low=5, high=20)]
    problems = problems_of(spec)
    assert any("names parameter 'w', but ml strategies need fixed numbers" in p for p in problems)
