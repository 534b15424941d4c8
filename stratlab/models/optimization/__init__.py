"""DTOs of prompt evolution (seed 003): benchmark tasks, experiments, fitness, generations.

They cross Temporal (pydantic data converter) and the database (jsonb), so every field
added later gets a default: saved workflow histories must still decode. The data
converter serialises by field, so which submodule holds a class is not part of a payload.

Submodules, by concept: ``fitness`` (roles, search, the objectives), ``benchmarks`` (the
task suite), ``experiments`` (regression runs and racing), ``generations`` (what a
generation did), ``breeding`` (parents, children, mutator and sanity checks), ``steps``
(the generation workflow's payloads) and ``review`` (the human decision). Import from
this package.
"""

from stratlab.models.optimization.benchmarks import (
    BenchmarkSuite,
    BenchmarkTask,
    Criterion,
    Expectation,
    Regime,
    TaskVerdict,
)
from stratlab.models.optimization.breeding import (
    LLM_MUTATION,
    CheckedChild,
    CheckInput,
    MutateInput,
    ParentSpec,
    PromptVariation,
    PromptVariations,
    ProposedChild,
    ProposeInput,
    RegisterInput,
    SanityVerdict,
)
from stratlab.models.optimization.experiments import (
    ExperimentPlan,
    ExperimentRecord,
    ExperimentStatus,
    FinishExperimentInput,
    RaceAgainst,
    RecordTaskInput,
    RegressionProgress,
    RegressionRunInput,
    RegressionRunResult,
    TaskResult,
)
from stratlab.models.optimization.fitness import (
    FITNESS_VERSION,
    OBJECTIVE_NAMES,
    OPTIMIZABLE_ROLES,
    Fitness,
    OptimizableRole,
    Search,
    Significance,
)
from stratlab.models.optimization.generations import (
    GenerationRecord,
    GenerationResult,
    Individual,
    NotCandidateCause,
    OffspringRecord,
    OffspringVerdict,
)
from stratlab.models.optimization.review import (
    ApplyReviewInput,
    ReviewDecision,
    ReviewInput,
    ReviewOutcome,
    ReviewResolution,
    ReviewStatus,
)
from stratlab.models.optimization.steps import (
    GenerationPlan,
    LoadParentsInput,
    OptimizationInput,
    OptimizationProgress,
    ParentsLoaded,
    RecordGenerationInput,
    SelectInput,
    SelectResult,
    SelectTasksInput,
    TaskSelection,
)

__all__ = [
    "FITNESS_VERSION",
    "LLM_MUTATION",
    "OBJECTIVE_NAMES",
    "OPTIMIZABLE_ROLES",
    "ApplyReviewInput",
    "BenchmarkSuite",
    "BenchmarkTask",
    "CheckInput",
    "CheckedChild",
    "Criterion",
    "Expectation",
    "ExperimentPlan",
    "ExperimentRecord",
    "ExperimentStatus",
    "FinishExperimentInput",
    "Fitness",
    "GenerationPlan",
    "GenerationRecord",
    "GenerationResult",
    "Individual",
    "LoadParentsInput",
    "MutateInput",
    "NotCandidateCause",
    "OffspringRecord",
    "OffspringVerdict",
    "OptimizableRole",
    "OptimizationInput",
    "OptimizationProgress",
    "ParentSpec",
    "ParentsLoaded",
    "PromptVariation",
    "PromptVariations",
    "ProposeInput",
    "ProposedChild",
    "RaceAgainst",
    "RecordGenerationInput",
    "RecordTaskInput",
    "Regime",
    "RegisterInput",
    "RegressionProgress",
    "RegressionRunInput",
    "RegressionRunResult",
    "ReviewDecision",
    "ReviewInput",
    "ReviewOutcome",
    "ReviewResolution",
    "ReviewStatus",
    "SanityVerdict",
    "Search",
    "SelectInput",
    "SelectResult",
    "SelectTasksInput",
    "Significance",
    "TaskResult",
    "TaskSelection",
    "TaskVerdict",
]
