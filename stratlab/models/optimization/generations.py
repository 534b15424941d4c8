"""What one generation of prompt evolution did: its members, its offspring and why each
is or is not a candidate, the stored record and the summary the workflow returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.llm import Role
from stratlab.models.optimization.fitness import Fitness, OptimizableRole, Search


class Individual(BaseModel):
    """A member of a generation: a registered prompt with the fitness it was measured at."""

    prompt_id: str
    fitness: Fitness | None = None
    experiment_id: str | None = None
    origin: Literal["prod", "survivor", "offspring"] = "offspring"
    operator: str = ""
    parent_ids: list[str] = Field(default_factory=list)
    rank: int | None = Field(None, description="NSGA-II front, 0 = non-dominated")
    crowding: float | None = None
    raced_out: str | None = Field(
        None, description="why its run stopped early: dominated by prod with confidence"
    )


class OffspringRecord(BaseModel):
    """A child the breeder proposed, and whether the checks let it in."""

    prompt_id: str | None = None
    operator: str
    parent_ids: list[str] = Field(default_factory=list)
    accepted: bool = True
    reason: str = ""
    content_hash: str = ""


NotCandidateCause = Literal[
    "candidate",
    "failed_checks",
    "same_as_parent",
    "not_measured",
    "no_prod_run",
    "dominated",
    "no_targets",
    "not_better_on_targets",
    "not_significant_on_targets",
    "loses_control",
    "worse_on_controls",
    "raced_out",
]


class OffspringVerdict(BaseModel):
    """Why one offspring of a generation is, or is not, a candidate: the first failed rule
    is ``cause``; ``reason`` is a short sentence naming every rule it failed."""

    prompt_id: str | None = Field(None, description="None: rejected before registration")
    operator: str = ""
    candidate: bool = False
    cause: NotCandidateCause
    reason: str


class GenerationRecord(BaseModel):
    """A row of ``generations``: what one generation of a role did."""

    role: Role = "designer"
    generation: int
    campaign_id: str = ""
    search: Search = "nsga2"
    seed: int
    task_ids: list[str] = Field(default_factory=list)
    population: list[Individual] = Field(
        default_factory=list, description="the survivors: next generation's parents"
    )
    offspring: list[OffspringRecord] = Field(default_factory=list)
    front: list[str] = Field(default_factory=list, description="prompt ids of front 0")
    archive: list[Individual] = Field(
        default_factory=list, description="every non-dominated individual seen so far"
    )
    hypervolume: float = 0.0
    archive_hypervolume: float = 0.0
    best_success_rate: float = 0.0
    best_score: float = 0.0
    prod_prompt_id: str | None = None
    prod_fitness: Fitness | None = None
    evaluations: int = Field(
        0,
        description="research cycles measured for this generation: baseline, parents and "
        "offspring (a reused run adds none; a cycle skipped for budget is not measured)",
    )
    evaluations_saved: int = Field(
        0, description="planned cycles not run because racing stopped a dominated offspring"
    )
    cost_usd: float = Field(
        0.0,
        description="every LLM call made for the generation: its research cycles, the "
        "mutator and the sanity checks",
    )
    llm_calls_cost_usd: float = Field(
        0.0, description="of cost_usd, the mutator's and the sanity checks' calls"
    )
    candidates: list[str] = Field(default_factory=list)
    verdicts: list[OffspringVerdict] = Field(
        default_factory=list, description="each offspring: why it is or is not a candidate"
    )
    stopped_reason: str | None = None
    logbook: list[dict[str, float | int | str]] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class GenerationResult(BaseModel):
    role: OptimizableRole
    generation: int
    seed: int
    search: Search = "nsga2"
    hypervolume: float
    archive_hypervolume: float
    best_success_rate: float
    best_score: float = 0.0
    front: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)
    verdicts: list[OffspringVerdict] = Field(default_factory=list)
    evaluations: int = Field(0, description="research cycles measured for the generation")
    stopped_reason: str | None = None

    @classmethod
    def of(cls, record: GenerationRecord) -> GenerationResult:
        """The summary of a recorded generation (what the workflow returns)."""
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))
