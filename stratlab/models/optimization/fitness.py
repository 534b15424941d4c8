"""What prompt evolution optimizes: the roles it evolves, how a generation searches,
and the fitness a regression run measures (NSGA-II's objectives)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

OptimizableRole = Literal["designer", "assessor"]
OPTIMIZABLE_ROLES: tuple[str, ...] = OptimizableRole.__args__  # type: ignore[attr-defined]

Search = Literal["nsga2", "random"]
"""How a generation chooses: NSGA-II (tournament parents, non-dominated survivors), or the
random-search baseline (the same operators and budget, parents and survivors drawn
uniformly at random: no selection pressure)."""

Significance = Annotated[float, Field(gt=0, le=1)]
"""A significance level in (0, 1]: what racing stops at and the candidate rule judges by."""

OBJECTIVE_NAMES: tuple[str, str, str] = ("score", "tokens", "latency")

FITNESS_VERSION = 1
"""1: ``score`` (graded task scores) is the first objective. A fitness of an older
version (0: success rate only, judged on the test split) is shown but never reused."""


class Fitness(BaseModel):
    """What a regression run measured: score ↑, tokens per task ↓, latency per task ↓.

    ``score`` is the mean graded task score (``benchmarks.task_score``) over the measured
    tasks; ``success_rate`` the share of them passed, kept for people: under honest
    gates it is near zero almost everywhere and gives selection nothing to climb.
    Latency is the LLM latency recorded for the task's calls (simulated for the offline
    provider, which makes it reproducible), not wall time."""

    score: float = 0.0
    success_rate: float = 0.0
    mean_tokens: float = 0.0
    mean_latency_ms: float = 0.0
    tasks: int = 0
    passed: int = 0
    cost_usd: float = 0.0
    version: int = Field(0, description="FITNESS_VERSION it was measured under")
    score_low: float | None = Field(
        None, description="95% interval of score from the rollouts' spread within each task "
        "(stratlab.evolution.intervals); None with one rollout per task: noise not measured"
    )  # fmt: skip
    score_high: float | None = None

    def objectives(self) -> tuple[float, float, float]:
        """(score ↑, tokens ↓, latency ↓): the NSGA-II fitness values."""
        return (self.score, self.mean_tokens, self.mean_latency_ms)

    def better_on(self, other: Fitness) -> list[str]:
        """The objectives (``score``, ``tokens``, ``latency``) on which this fitness is
        strictly better than ``other``."""
        mine, theirs = self.objectives(), other.objectives()
        signs = (1.0, -1.0, -1.0)  # score up, tokens and latency down
        return [
            name
            for name, a, b, sign in zip(OBJECTIVE_NAMES, mine, theirs, signs, strict=True)
            if sign * a > sign * b
        ]

    def dominates(self, other: Fitness) -> bool:
        """No worse on every objective and better on one (NSGA-II's dominance)."""
        return bool(self.better_on(other)) and not other.better_on(self)
