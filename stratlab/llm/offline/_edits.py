"""Pure edits the offline designer makes to a draft spec: lookbacks scaled, entry
thresholds loosened, a stop tightened, a long-term trend filter added, a grid cut to
three values per range. Each returns a new spec or range of the same family.
"""

from __future__ import annotations

import random

from stratlab.llm.offline._code import has_trend_filter, with_trend_filter
from stratlab.llm.offline._families import (
    MAX_MA_WINDOW,
    MAX_WINDOW,
    Knobs,
    fit_window_range,
    fixed_window,
    is_window_key,
    values_in,
)
from stratlab.models.research import IndicatorRef, ParamRange, StrategySpec

# Threshold parameters of the families and the shift that lets more trades through.
_LOOSEN = {
    "oversold": 5.0,
    "entry_pctb": 0.1,
    "entry_z": 0.5,
    "band": -0.25,
    "bb_k": -0.5,
    "entry_gap": -0.005,
    "breakout_buffer": -0.005,
    "entry_roc": -1.0,
}
_LOOSEN_FLOOR = {"band": 0.0, "bb_k": 0.5, "entry_gap": 0.0, "breakout_buffer": 0.0}


def tighter_stop(current: float | None, rng: random.Random) -> float:
    if current is None:
        return round(rng.uniform(0.05, 0.08), 3)
    return round(max(0.02, current * 0.7), 3)


def spec_has_trend_filter(spec: StrategySpec) -> bool:
    if spec.kind == "code":
        return has_trend_filter(spec.code)
    return any(ref.alias == "trend" for ref in spec.indicators)


def add_trend_filter(spec: StrategySpec, knobs: Knobs) -> StrategySpec:
    length = fixed_window(200, knobs, cap=MAX_MA_WINDOW)
    if spec.kind == "code":
        return spec.model_copy(update={"code": with_trend_filter(spec.code or "", length)})
    trend = IndicatorRef(alias="trend", kind="sma", params={"window": length})
    return spec.model_copy(
        update={
            "indicators": [*spec.indicators, trend],
            "entry": f"({spec.entry}) and close > trend",
        }
    )


def scale_windows(spec: StrategySpec, factor: float) -> StrategySpec:
    """Scale every lookback: window parameter ranges and fixed window params."""
    # Code reads its lookbacks from params by name; rules reach them through indicators.
    window_params = {p.name for p in spec.parameters if is_window_key(p.name)}
    window_params = window_params if spec.kind == "code" else set()
    indicators = []
    for ref in spec.indicators:
        params: dict[str, float | int | str] = {}
        for key, value in ref.params.items():
            if is_window_key(key) and isinstance(value, str):
                window_params.add(value)
            elif is_window_key(key) and isinstance(value, int | float):
                cap = MAX_MA_WINDOW if ref.kind in ("sma", "ema") else MAX_WINDOW
                value = min(cap, max(2, round(value * factor)))
            params[key] = value
        indicators.append(IndicatorRef(alias=ref.alias, kind=ref.kind, params=params))
    parameters = [
        _scale_range(p, factor) if p.name in window_params else p for p in spec.parameters
    ]
    update: dict[str, object] = {"indicators": indicators, "parameters": parameters}
    if spec.ml is not None:
        horizon = max(1, round(spec.ml.label_horizon * factor))
        update["ml"] = spec.ml.model_copy(update={"label_horizon": horizon})
    return spec.model_copy(update=update)


def _scale_range(param: ParamRange, factor: float) -> ParamRange:
    return fit_window_range(
        param.name, round(param.low * factor), round(param.step * factor), values_in(param)
    )


def loosen(spec: StrategySpec) -> StrategySpec:
    """Move entry thresholds so that more bars qualify (known parameter names only)."""
    parameters = []
    for param in spec.parameters:
        shift = _LOOSEN.get(param.name, 0.0)
        floor = _LOOSEN_FLOOR.get(param.name)
        low, high = param.low + shift, param.high + shift
        if floor is not None and low < floor:
            low, high = floor, max(floor, high)
        parameters.append(replace_range(param, low=round(low, 4), high=round(high, 4)))
    update: dict[str, object] = {"parameters": parameters}
    if spec.ml is not None:
        threshold = max(0.5, spec.ml.threshold - 0.03)
        exit_threshold = min(spec.ml.exit_threshold, threshold) - 0.02
        update["ml"] = spec.ml.model_copy(
            update={"threshold": round(threshold, 3), "exit_threshold": round(exit_threshold, 3)}
        )
    return spec.model_copy(update=update)


def three_values(param: ParamRange) -> ParamRange:
    """The same span with at most three grid values."""
    if values_in(param) <= 3:
        return param
    integral = all(float(v).is_integer() for v in (param.low, param.high, param.step))
    step = (param.high - param.low) / 2
    step = max(1.0, float(round(step))) if integral else round(step, 6)
    return replace_range(param, high=param.low + 2 * step, step=step)


def replace_range(param: ParamRange, **changes: float) -> ParamRange:
    return param.model_copy(update=changes)
