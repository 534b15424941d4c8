"""The data-driven analyst (seed 004): conditions the train split never meets, and the
values it does reach, fed back to the next design."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.research.windows import DataWindow


class AnalystSuggestion(BaseModel):
    """A condition the train split (almost) never satisfies, and a value it does reach.

    Made by ``stratlab.research.analyst.analyse_conditions``: ``indicator`` is what the
    condition compares (an alias, ``alias.output``, a price column, or for code specs the
    indicator the heuristic recomputed), ``threshold`` the fixed number or ``parameter``
    the parameter whose range ``parameter_low..parameter_high`` it searched; ``data_*``
    describe that indicator on the train split and ``proposed`` is its ``percentile``-th
    percentile, rounded towards the permissive side.
    """

    condition: str = ""
    indicator: str = ""
    label: str = Field("", description="human name of the series, e.g. RSI(14)")
    op: Literal["<", "<=", ">", ">="] = "<"
    threshold: float | None = None
    parameter: str | None = None
    parameter_low: float | None = None
    parameter_high: float | None = None
    hits: int = Field(0, description="train bars meeting the loosest version of the condition")
    bars: int = Field(0, description="train bars where the series is defined")
    data_min: float = 0.0
    data_max: float = 0.0
    data_p5: float = 0.0
    data_p50: float = 0.0
    data_p95: float = 0.0
    percentile: float = 5.0
    proposed: float = 0.0
    source: Literal["rules", "code"] = "rules"


class AnalyseInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    period: DataWindow | None = None


class AnalyseResult(BaseModel):
    suggestions: list[AnalystSuggestion] = Field(default_factory=list)
    text: str = Field("", description="the suggestions as feedback for the next design")
