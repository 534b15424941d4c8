"""The benchmark suite prompts are measured on: tasks, their success criteria and the
verdict on one task's result."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from stratlab.models.research import StrategyKind, ThresholdOp

Regime = Literal["bust", "boom", "crash", "recovery", "sideways", "noise", "planted"]
Expectation = Literal["discovery", "no-discovery"]


class Criterion(BaseModel):
    """One success condition on a task's out-of-sample result: the walk-forward
    out-of-sample metrics of the development period (never the holdout).

    ``metric`` is a ``BacktestMetrics`` field, or ``excess_return`` (total return minus
    the buy-and-hold return of the same bars)."""

    metric: str
    op: ThresholdOp
    value: float

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class BenchmarkTask(BaseModel):
    """A research task: design a strategy of ``kind`` for ``symbol`` on the bars between
    ``start`` and ``end`` (split into a development period and a holdout as in any cycle).

    A ``discovery`` task passes when the cycle succeeds and every criterion holds on the
    walk-forward out-of-sample metrics. A ``no-discovery`` task runs on synthetic noise
    (regime ``noise``), where nothing can be found: it passes when the lab judged a
    strategy and did not call it a discovery. ``expect`` follows from the regime, so a
    stored task (whose row has no such column) reads back the same."""

    task_id: str
    suite_version: int = 1
    symbol: str
    kind: StrategyKind | None = None
    start: date
    end: date
    regime: Regime
    objective: str = Field(description="short name of what is asked, e.g. risk-adjusted")
    description: str = ""
    criteria: list[Criterion] = Field(default_factory=list)
    expect: Expectation = Field(
        "discovery", description="no-discovery: synthetic noise, the right result is nothing"
    )

    def describe_objective(self) -> str:
        """The objective in words, as the designer is told it: what is asked and the
        criteria the walk-forward result is judged by (never whether the data is noise)."""
        criteria = ", ".join(c.describe() for c in self.criteria)
        return f"{self.objective}: {criteria} (walk-forward out-of-sample)"

    @model_validator(mode="after")
    def _expect_follows_the_regime(self) -> BenchmarkTask:
        noise = self.regime == "noise"
        if "expect" not in self.model_fields_set and noise:
            self.expect = "no-discovery"
        if noise != (self.expect == "no-discovery"):
            raise ValueError(
                f"expect {self.expect!r} does not fit regime {self.regime!r}: only a task on "
                "synthetic noise (regime noise) expects no-discovery, and it always does"
            )
        return self


class BenchmarkSuite(BaseModel):
    version: int
    tasks: list[BenchmarkTask]


class TaskVerdict(BaseModel):
    passed: bool
    reasons: list[str] = Field(
        default_factory=list, description="why it failed: the outcome or each failed criterion"
    )
    score: float = Field(0.0, ge=0.0, le=1.0, description="graded: see benchmarks.task_score")
