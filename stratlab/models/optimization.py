"""DTOs of prompt evolution (seed 003): benchmark tasks, experiments, fitness, generations.

They cross Temporal (pydantic data converter) and the database (jsonb), so every field
added later gets a default: saved workflow histories must still decode.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from stratlab.models.llm import Role
from stratlab.models.research import BacktestMetrics, GateResult, Outcome, StrategyKind

Regime = Literal["bust", "boom", "crash", "recovery", "sideways", "noise", "planted"]
Expectation = Literal["discovery", "no-discovery"]
ExperimentStatus = Literal["running", "completed", "stopped_budget", "raced_out", "failed"]
OptimizableRole = Literal["designer", "assessor"]
OPTIMIZABLE_ROLES: tuple[str, ...] = ("designer", "assessor")

# --- benchmark suite ---------------------------------------------------------------------


class Criterion(BaseModel):
    """One success condition on a task's out-of-sample result: the walk-forward
    out-of-sample metrics of the development period (never the holdout).

    ``metric`` is a ``BacktestMetrics`` field, or ``excess_return`` (total return minus
    the buy-and-hold return of the same bars)."""

    metric: str
    op: Literal[">=", "<="]
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


# --- experiments (regression runs) ---------------------------------------------------------


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


class TaskResult(BaseModel):
    """One task × rollout of an experiment: a row of ``experiment_results``."""

    experiment_id: str
    task_id: str
    rollout: int = 1
    prompt_id: str
    session_id: str | None = None
    passed: bool
    score: float = Field(0.0, description="graded task score in [0, 1]")
    outcome: Outcome | None = None
    reasons: list[str] = Field(default_factory=list)
    metrics: BacktestMetrics | None = Field(
        None, description="walk-forward out-of-sample metrics of the judged iteration"
    )
    tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    created_at: datetime | None = None


class ExperimentRecord(BaseModel):
    """A row of ``experiments``: one prompt measured on one task set."""

    experiment_id: str
    prompt_id: str
    role: Role = "designer"
    generation: int | None = None
    task_ids: list[str] = Field(default_factory=list)
    task_set_hash: str = ""
    rollouts: int = 1
    status: ExperimentStatus = "running"
    fitness: Fitness | None = None
    stopped_reason: str | None = None
    workflow_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


# --- generations ---------------------------------------------------------------------------


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


# --- LLM answers of the optimizer's own roles ------------------------------------------


class PromptVariation(BaseModel):
    rationale: str = Field(description="which failure this variation addresses, and how")
    content: str = Field(description="the complete new prompt template (Jinja2)")


class PromptVariations(BaseModel):
    """The mutator's answer: whole new templates, each addressing the failure summary."""

    variations: list[PromptVariation] = Field(default_factory=list)


class SanityVerdict(BaseModel):
    """The sanity checker's answer on a candidate prompt."""

    safe: bool
    reason: str = ""


# --- workflow and activity payloads --------------------------------------------------------


class RaceAgainst(BaseModel):
    """What a run races against (prod on the same task set): once the prompt is dominated
    with confidence, its run stops starting cycles (``stratlab.evolution.racing``)."""

    prompt_id: str
    scores: dict[str, float] = Field(description="mean graded score per task")
    mean_tokens: float
    mean_latency_ms: float
    min_tasks: int = Field(5, ge=1, description="tasks measured before it may stop")
    significance: float = Field(0.05, gt=0, le=1)


class RegressionRunInput(BaseModel):
    """Input of ``RegressionRunWorkflow``: measure one prompt on benchmark tasks."""

    prompt_id: str = Field(min_length=1, description="the prompt to measure (required)")
    role: OptimizableRole = "designer"
    task_ids: list[str] = Field(
        default_factory=list, description="empty: the suite's tasks on the optimizer's own data"
    )
    rollouts: int = Field(1, ge=1, le=10, description="cycles per task")
    experiment_id: str = Field("", description="empty: made by the workflow")
    generation: int | None = None
    max_parallel: int = Field(8, ge=1, le=64, description="research cycles at once")
    reuse: bool = Field(True, description="reuse a completed run of this prompt on these tasks")
    race: RaceAgainst | None = Field(
        None, description="stop early once dominated by this with confidence (racing)"
    )


class ExperimentPlan(BaseModel):
    """What ``begin_experiment`` found: a finished run to reuse, or the tasks to run."""

    experiment: ExperimentRecord
    reused: bool = False
    tasks: list[BenchmarkTask] = Field(default_factory=list)


class RecordTaskInput(BaseModel):
    experiment_id: str
    task_id: str
    rollout: int
    prompt_id: str
    role: OptimizableRole = "designer"
    session_id: str | None = None
    cycle_outcome: Outcome | None = None
    metrics: BacktestMetrics | None = None
    verdict: Literal["accept", "refine", "reject"] | None = None
    error: str | None = Field(None, description="why the cycle itself failed, if it did")
    gates: list[GateResult] = Field(
        default_factory=list, description="the seed gates (training, backtest) it reached"
    )
    statistical_gate: GateResult | None = Field(
        None, description="the judged iteration's statistical gate (its deflated Sharpe)"
    )
    training_run_id: str | None = Field(
        None, description="the judged iteration's fit, whose own trials deflate the score"
    )


class FinishExperimentInput(BaseModel):
    experiment_id: str
    stopped_reason: str | None = None
    raced_out: str | None = Field(None, description="why racing stopped the run early")
    saved: int = Field(0, ge=0, description="planned cycles racing did not start")


class RegressionRunResult(BaseModel):
    experiment_id: str
    prompt_id: str
    status: ExperimentStatus
    fitness: Fitness | None = None
    reused: bool = False
    stopped_reason: str | None = None
    raced_out: str | None = None
    saved: int = Field(0, description="planned cycles racing did not start")


class RegressionProgress(BaseModel):
    """Answer of the regression run's ``progress`` query."""

    done: int = Field(0, description="research cycles finished, failed ones included")
    planned: int = Field(
        0, description="tasks x rollouts; 0 until planned, and for a run that reused a measurement"
    )
    stopped: str | None = Field(None, description="why it stopped starting cycles early, if it did")


Search = Literal["nsga2", "random"]
"""How a generation chooses: NSGA-II (tournament parents, non-dominated survivors), or the
random-search baseline (the same operators and budget, parents and survivors drawn
uniformly at random: no selection pressure)."""


class OptimizationInput(BaseModel):
    """Input of ``OptimizationGenerationWorkflow``; ``{}`` runs one designer generation."""

    role: OptimizableRole = "designer"
    search: Search = Field(
        "nsga2", description="nsga2, or random: the baseline with no selection pressure"
    )
    significance: float = Field(
        0.05,
        gt=0,
        le=1,
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


class ParentSpec(BaseModel):
    prompt_id: str
    system: str
    content: str
    fitness: Fitness | None = None


class ProposedChild(BaseModel):
    system: str
    content: str
    parent_ids: list[str]
    operator: str
    rationale: str = ""


class ProposeInput(BaseModel):
    role: OptimizableRole
    generation: int
    seed: int
    search: Search = "nsga2"
    count: int
    parents: list[ParentSpec]
    exclude_hashes: list[str] = Field(default_factory=list)
    taken: list[ProposedChild] = Field(
        default_factory=list, description="children already proposed (by the LLM mutator)"
    )


class MutateInput(BaseModel):
    role: OptimizableRole
    generation: int
    parent: ParentSpec
    failure_summary: str
    count: int
    action_id: str = Field(description="made by the workflow: the LLM call's idempotency key")
    exclude_hashes: list[str] = Field(default_factory=list, description="registered already")


class CheckInput(BaseModel):
    role: OptimizableRole
    generation: int
    children: list[ProposedChild]
    parents: list[ParentSpec]
    action_id: str


class CheckedChild(BaseModel):
    child: ProposedChild
    accepted: bool
    reason: str = ""


class RegisterInput(BaseModel):
    role: OptimizableRole
    generation: int
    children: list[CheckedChild]
    prompt_ids: list[str] = Field(
        default_factory=list, description="unused: ids follow from role and text"
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


class ReviewInput(BaseModel):
    """Input of ``PromptReviewWorkflow``: a candidate waiting for a human decision."""

    prompt_id: str = Field(min_length=1, description="the candidate prompt (required)")
    role: OptimizableRole = "designer"
    generation: int | None = None
    summary: str = ""
    timeout_days: float = Field(14.0, gt=0)


class ReviewDecision(BaseModel):
    """The ``decide`` signal: approve tags the prompt prod, reject archives it. The
    workflow also takes a bare ``true`` or ``false`` as ``{"approve": ...}``."""

    approve: bool
    reason: str = ""
    actor: str = "human"


class ReviewStatus(BaseModel):
    """Answer of ``PromptReviewWorkflow``'s ``status`` query."""

    review: ReviewInput
    decision: ReviewDecision | None = Field(None, description="None: still waiting")
    ignored_signals: list[str] = Field(
        default_factory=list, description="decide signals whose payload was unusable, and why"
    )


class ReviewOutcome(BaseModel):
    prompt_id: str
    decision: Literal["approved", "rejected", "expired"]
    reason: str = ""
    actor: str = ""
    previous_prod_id: str | None = None


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
    significance: float = Field(0.05, gt=0, le=1, description="the level racing stops at")


class ParentsLoaded(BaseModel):
    parents: list[ParentSpec] = Field(description="best first: score ↓, tokens ↑")
    mutation_parent: int = Field(0, description="index of the parent the LLM mutates")
    failure_summary: str = Field("", description="the mutation parent's failures")
    known_hashes: list[str] = Field(default_factory=list)
    race: RaceAgainst | None = Field(
        None, description="prod on this task set, for the offspring's runs to race against"
    )


class ApplyReviewInput(BaseModel):
    prompt_id: str
    decision: Literal["approved", "rejected", "expired"]
    reason: str = ""
    actor: str = "human"
