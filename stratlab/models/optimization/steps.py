"""Payloads of ``OptimizationGenerationWorkflow`` and its activities: the campaign's input,
the generation's plan, task selection, parents, survivor selection, the record step and
the progress query."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from stratlab.models.optimization.breeding import ParentSpec
from stratlab.models.optimization.experiments import RaceAgainst
from stratlab.models.optimization.fitness import OptimizableRole, Search, Significance
from stratlab.models.optimization.generations import (
    GenerationResult,
    Individual,
    OffspringRecord,
)


class OptimizationInput(BaseModel):
    """Input of ``OptimizationGenerationWorkflow``; ``{}`` runs one designer generation."""

    role: OptimizableRole = "designer"
    search: Search = Field(
        "nsga2", description="nsga2, or random: the baseline with no selection pressure"
    )
    significance: Significance = Field(
        0.05,
        description="the candidate rule's level: better than prod on the targets with a "
        "p-value below it (paired randomization test), not worse on the controls",
    )
    racing: bool = Field(
        True,
        description="stop measuring an offspring once prod dominates it with confidence "
        "(worse score at the significance level, no fewer tokens, no lower latency)",
    )
    generations: int = Field(1, ge=1, le=100, description="generations left in this campaign")
    population: int = Field(16, ge=2, le=64, description="offspring per generation, survivors")
    seed: int = Field(0, description="campaign seed; each generation derives its own from it")
    rollouts: int = Field(1, ge=1, le=10)
    targets: int = Field(20, ge=0, description="tasks prod fails, to improve on")
    controls: int = Field(5, ge=0, description="tasks prod passes, not to lose")
    task_ids: list[str] = Field(
        default_factory=list, description="a fixed task set instead of targets and controls"
    )
    meta_mutations: int = Field(4, ge=0, description="offspring asked of the LLM mutator")
    max_parallel: int = Field(16, ge=1, le=128, description="research cycles at once")
    campaign_id: str = Field("", description="empty: made by the workflow")
    generation: int | None = Field(None, description="empty: the role's next generation")


class GenerationPlan(BaseModel):
    """What ``begin_generation`` loaded: the generation's number, seed and parents."""

    role: OptimizableRole
    generation: int
    seed: int
    campaign_id: str
    search: Search = "nsga2"
    significance: float = 0.05
    prod_prompt_id: str
    parent_ids: list[str] = Field(description="prod first, then the last survivors")
    suite_task_ids: list[str]
    previous_archive: list[Individual] = Field(default_factory=list)
    previous_task_ids: list[str] = Field(default_factory=list)


class TaskSelection(BaseModel):
    task_ids: list[str]
    targets: list[str] = Field(default_factory=list)
    controls: list[str] = Field(default_factory=list)


class SelectTasksInput(BaseModel):
    role: OptimizableRole
    prod_prompt_id: str
    baseline_experiment_id: str
    targets: int
    controls: int
    task_ids: list[str] = Field(default_factory=list)
    seed: int = 0


class LoadParentsInput(BaseModel):
    role: OptimizableRole
    prompt_ids: list[str]
    experiment_ids: list[str] = Field(description="each parent's run on this task set")
    generation: int = 0
    search: Search = "nsga2"
    seed: int = Field(0, description="the generation's: random search picks the LLM's parent")
    significance: Significance = Field(0.05, description="the level racing stops at")


class ParentsLoaded(BaseModel):
    parents: list[ParentSpec] = Field(description="best first: score ↓, tokens ↑")
    mutation_parent: int = Field(0, description="index of the parent the LLM mutates")
    failure_summary: str = Field("", description="the mutation parent's failures")
    known_hashes: list[str] = Field(default_factory=list)
    race: RaceAgainst | None = Field(
        None, description="prod on this task set, for the offspring's runs to race against"
    )


class SelectInput(BaseModel):
    role: OptimizableRole
    generation: int
    population: int
    search: Search = "nsga2"
    seed: int = Field(0, description="the generation's: random search draws survivors with it")
    individuals: list[Individual]
    previous_archive: list[Individual] = Field(default_factory=list)


class SelectResult(BaseModel):
    survivors: list[Individual]
    front: list[str]
    archive: list[Individual]
    hypervolume: float
    archive_hypervolume: float
    logbook: dict[str, float | int | str] = Field(default_factory=dict)


class RecordGenerationInput(BaseModel):
    plan: GenerationPlan
    selection: TaskSelection
    offspring: list[OffspringRecord]
    evaluated: list[Individual]
    selected: SelectResult
    prod_experiment_id: str | None = None
    stopped_reason: str | None = None
    started_at: datetime
    experiment_ids: list[str] = Field(
        default_factory=list,
        description="every regression run the generation started (the progress query's); "
        "empty (older runs): count the evaluated members' runs",
    )
    llm_action_ids: list[str] = Field(
        default_factory=list,
        description="the keys of the generation's own LLM steps (mutation, checks): their "
        "calls' cost is part of the generation's",
    )


class OptimizationProgress(BaseModel):
    """Answer of the generation workflow's ``progress`` query."""

    role: OptimizableRole
    generation: int | None = None
    generations_left: int = 1
    phase: str = "starting"
    experiment_ids: list[str] = Field(
        default_factory=list, description="every regression run started, reused ones included"
    )
    planned_evaluations: int = Field(
        0,
        description="research cycles planned: each run's tasks x rollouts, less the runs that "
        "reused an earlier measurement (known once they return)",
    )
    reused_runs: int = Field(0, description="runs that reused an earlier measurement")
    hypervolume: float | None = None
    best_success_rate: float | None = None
    best_score: float | None = None
    candidates: list[str] = Field(default_factory=list)
    history: list[GenerationResult] = Field(
        default_factory=list, description="the generations this run finished (this campaign)"
    )
