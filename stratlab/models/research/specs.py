"""What a strategy is: the spec the designer proposes (or a user writes) and its parts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

StrategyKind = Literal["rules", "ml", "code"]


class IndicatorRef(BaseModel):
    """One indicator instance of a strategy, e.g. ``{"alias": "fast", "kind": "sma",
    "params": {"window": "fast_window"}}``. A param value that is a string names a
    strategy parameter (searched over its range); a number is a fixed value."""

    alias: str = Field(description="name used in expressions and ML features")
    kind: str = Field(description="indicator registry name: sma, ema, rsi, macd, bbands, atr...")
    params: dict[str, float | int | str] = Field(default_factory=dict)


class ParamRange(BaseModel):
    """An inclusive grid ``low, low+step, ..., high`` searched during training."""

    name: str
    low: float
    high: float
    step: float = 1.0


class MlSpec(BaseModel):
    """The ``ml`` kind: classify whether the close ``label_horizon`` bars ahead is higher."""

    features: list[str] = Field(description="indicator aliases or alias.output, or price columns")
    label_horizon: int = 5
    classifier: Literal["logistic", "mlp"] = "logistic"
    threshold: float = Field(0.55, description="enter when P(up) >= threshold")
    exit_threshold: float = Field(0.5, description="exit when P(up) < exit_threshold")
    epochs: int = 20


class StrategySpec(BaseModel):
    """What the designer proposes. ``rules`` uses entry/exit expressions over indicators;
    ``ml`` uses ``ml``; both are validated by ``stratlab.strategies.validation``."""

    name: str
    kind: StrategyKind = "rules"
    symbol: str = "sp500"
    rationale: str = ""
    indicators: list[IndicatorRef] = Field(default_factory=list)
    entry: str = ""
    exit: str = ""
    parameters: list[ParamRange] = Field(default_factory=list)
    stop_loss: float | None = Field(None, description="fraction below entry, e.g. 0.05")
    take_profit: float | None = Field(None, description="fraction above entry")
    ml: MlSpec | None = None
    code: str | None = Field(
        None,
        description="kind code: Python source defining signals(data, params) -> "
        "(entries, exits); data is an OHLCV DataFrame, params a dict of the parameters",
    )
