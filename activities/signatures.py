"""Typed references to every activity: name, pool, input model and result model.

The contract between the workflows and the worker pools. A workflow calls an activity
through its reference (``workflows.calls.execute(signatures.TRAIN_STRATEGY, inp, ...)``),
so the input is type-checked against the activity and the result type is inferred,
without importing the implementations: this module imports names, pydantic models and
the pool names only, which are safe in the workflow sandbox. The classes in
``activities/`` implement these signatures; ``tests/unit/test_activity_signatures.py``
holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from activities import names
from stratlab.models.optimization import (
    ApplyReviewInput,
    CheckedChild,
    CheckInput,
    ExperimentPlan,
    FinishExperimentInput,
    GenerationPlan,
    GenerationResult,
    LoadParentsInput,
    MutateInput,
    OffspringRecord,
    OptimizationInput,
    ParentsLoaded,
    ProposedChild,
    ProposeInput,
    RecordGenerationInput,
    RecordTaskInput,
    RegisterInput,
    RegressionRunInput,
    RegressionRunResult,
    ReviewOutcome,
    SelectInput,
    SelectResult,
    SelectTasksInput,
    TaskResult,
    TaskSelection,
)
from stratlab.models.paper import (
    ComposeStep,
    CycleStepInput,
    DecisionStep,
    ExecutionStep,
    MarketStep,
    MarketStepInput,
    PaperOpened,
    PaperOpenInput,
    StatusInput,
)
from stratlab.models.research import (
    AnalyseInput,
    AnalyseResult,
    AssessInput,
    AssessResult,
    BacktestInput,
    BacktestResult,
    DesignInput,
    DesignResult,
    FinishSessionInput,
    HoldoutInput,
    HoldoutResult,
    RegisterStrategyInput,
    RegisterStrategyResult,
    ResearchCycleResult,
    SessionStarted,
    StartSessionInput,
    TrainInput,
    TrainResult,
)
from stratlab.temporal_names import COMPUTE, LLM, OPTIMIZER, ORCHESTRATOR

InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT", covariant=True)  # a ref to a list[X] result is one to Iterable[X]


@dataclass(frozen=True)
class ActivityRef(Generic[InputT, ResultT]):
    """One activity as a workflow sees it: registered ``name`` on ``pool``'s workers, one
    ``input_type`` in, one ``result_type`` out (None for an activity that returns nothing)."""

    name: str
    pool: str
    input_type: type[InputT]
    result_type: type[ResultT] | None


# orchestrator pool: sessions and a user's own strategy
START_SESSION = ActivityRef(names.START_SESSION, ORCHESTRATOR, StartSessionInput, SessionStarted)
FINISH_SESSION = ActivityRef(
    names.FINISH_SESSION, ORCHESTRATOR, FinishSessionInput, ResearchCycleResult
)
REGISTER_STRATEGY = ActivityRef(
    names.REGISTER_STRATEGY, ORCHESTRATOR, RegisterStrategyInput, RegisterStrategyResult
)

# llm pool: design and assess
DESIGN_STRATEGY = ActivityRef(names.DESIGN_STRATEGY, LLM, DesignInput, DesignResult)
ASSESS_STRATEGY = ActivityRef(names.ASSESS_STRATEGY, LLM, AssessInput, AssessResult)

# compute pool: fit, analyse, backtest, holdout
TRAIN_STRATEGY = ActivityRef(names.TRAIN_STRATEGY, COMPUTE, TrainInput, TrainResult)
ANALYSE_STRATEGY = ActivityRef(names.ANALYSE_STRATEGY, COMPUTE, AnalyseInput, AnalyseResult)
RUN_BACKTEST = ActivityRef(names.RUN_BACKTEST, COMPUTE, BacktestInput, BacktestResult)
EVALUATE_HOLDOUT = ActivityRef(names.EVALUATE_HOLDOUT, COMPUTE, HoldoutInput, HoldoutResult)

# orchestrator pool: prompt evolution's store work
BEGIN_EXPERIMENT = ActivityRef(
    names.BEGIN_EXPERIMENT, ORCHESTRATOR, RegressionRunInput, ExperimentPlan
)
RECORD_TASK_RESULT = ActivityRef(
    names.RECORD_TASK_RESULT, ORCHESTRATOR, RecordTaskInput, TaskResult
)
FINISH_EXPERIMENT = ActivityRef(
    names.FINISH_EXPERIMENT, ORCHESTRATOR, FinishExperimentInput, RegressionRunResult
)
BEGIN_GENERATION = ActivityRef(
    names.BEGIN_GENERATION, ORCHESTRATOR, OptimizationInput, GenerationPlan
)
SELECT_TASKS = ActivityRef(names.SELECT_TASKS, ORCHESTRATOR, SelectTasksInput, TaskSelection)
LOAD_PARENTS = ActivityRef(names.LOAD_PARENTS, ORCHESTRATOR, LoadParentsInput, ParentsLoaded)
REGISTER_OFFSPRING: ActivityRef[RegisterInput, list[OffspringRecord]] = ActivityRef(
    names.REGISTER_OFFSPRING, ORCHESTRATOR, RegisterInput, list[OffspringRecord]
)
RECORD_GENERATION = ActivityRef(
    names.RECORD_GENERATION, ORCHESTRATOR, RecordGenerationInput, GenerationResult
)
APPLY_REVIEW = ActivityRef(names.APPLY_REVIEW, ORCHESTRATOR, ApplyReviewInput, ReviewOutcome)

# llm pool: prompt evolution
MUTATE_PROMPT: ActivityRef[MutateInput, list[ProposedChild]] = ActivityRef(
    names.MUTATE_PROMPT, LLM, MutateInput, list[ProposedChild]
)
CHECK_OFFSPRING: ActivityRef[CheckInput, list[CheckedChild]] = ActivityRef(
    names.CHECK_OFFSPRING, LLM, CheckInput, list[CheckedChild]
)

# optimizer pool: NSGA-II (DEAP), concurrency 1, seeded
PROPOSE_OFFSPRING: ActivityRef[ProposeInput, list[ProposedChild]] = ActivityRef(
    names.PROPOSE_OFFSPRING, OPTIMIZER, ProposeInput, list[ProposedChild]
)
SELECT_SURVIVORS = ActivityRef(names.SELECT_SURVIVORS, OPTIMIZER, SelectInput, SelectResult)

# paper trading: observe (compute) → execute (orchestrator) → compose (llm) → decide
# (orchestrator); open and status are orchestrator store work
PAPER_OPEN = ActivityRef(names.PAPER_OPEN, ORCHESTRATOR, PaperOpenInput, PaperOpened)
PAPER_OBSERVE = ActivityRef(names.PAPER_OBSERVE, COMPUTE, MarketStepInput, MarketStep)
PAPER_EXECUTE = ActivityRef(names.PAPER_EXECUTE, ORCHESTRATOR, CycleStepInput, ExecutionStep)
PAPER_COMPOSE = ActivityRef(names.PAPER_COMPOSE, LLM, CycleStepInput, ComposeStep)
PAPER_DECIDE = ActivityRef(names.PAPER_DECIDE, ORCHESTRATOR, CycleStepInput, DecisionStep)
PAPER_STATUS: ActivityRef[StatusInput, None] = ActivityRef(
    names.PAPER_STATUS, ORCHESTRATOR, StatusInput, None
)
