"""Prompt evolution's activities, one class per pool.

- ``EvolutionStoreActivities`` (orchestrator): plan, judge and record experiments and
  generations; apply reviews. Light database work.
- ``EvolutionLlmActivities`` (llm): meta-prompt mutation and the children's checks.
- ``OptimizerActivities`` (optimizer, concurrency 1): DEAP breeding and NSGA-II selection.
  DEAP draws from the global ``random``, so each call seeds it from the generation's seed
  first; with one activity at a time on the pool nothing else draws in between.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities._errors import llm_application_error
from optimizer.breeding import Parent, propose
from optimizer.genome import content_key
from optimizer.random_search import random_survivors
from optimizer.selection import (
    archive_update,
    crowding,
    hypervolume,
    logbook_record,
    nondominated_sort,
    select_survivors,
)
from stratlab.evolution.experiments import ExperimentService
from stratlab.evolution.generations import GenerationService
from stratlab.evolution.library import answer_examples, instruction_library
from stratlab.evolution.mutation import PromptMutator
from stratlab.evolution.suite import BenchmarkSuiteError
from stratlab.llm.base import LlmError
from stratlab.llm.budgeted import BudgetExhaustedError
from stratlab.models.optimization import (
    ApplyReviewInput,
    CheckedChild,
    CheckInput,
    ExperimentPlan,
    FinishExperimentInput,
    GenerationPlan,
    GenerationResult,
    Individual,
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
from stratlab.store.benchmarks import BenchmarkConflictError
from stratlab.telemetry.instruments import current


def _non_retryable(err: Exception, kind: str) -> ApplicationError:
    return ApplicationError(str(err), type=kind, non_retryable=True)


class EvolutionStoreActivities:
    def __init__(self, experiments: ExperimentService, generations: GenerationService) -> None:
        self._experiments = experiments
        self._generations = generations

    @activity.defn(name=names.BEGIN_EXPERIMENT)
    async def begin_experiment(self, inp: RegressionRunInput) -> ExperimentPlan:
        try:
            workflow_id = activity.info().workflow_id or ""
            return await self._experiments.begin(inp, workflow_id=workflow_id)
        except (LookupError, BenchmarkSuiteError, BenchmarkConflictError) as err:
            raise _non_retryable(err, "ExperimentSetupError") from err

    @activity.defn(name=names.RECORD_TASK_RESULT)
    async def record_task_result(self, inp: RecordTaskInput) -> TaskResult:
        return await self._experiments.record(inp)

    @activity.defn(name=names.FINISH_EXPERIMENT)
    async def finish_experiment(self, inp: FinishExperimentInput) -> RegressionRunResult:
        return await self._experiments.finish(inp)

    @activity.defn(name=names.BEGIN_GENERATION)
    async def begin_generation(self, inp: OptimizationInput) -> GenerationPlan:
        try:
            return await self._generations.begin(inp)
        except (LookupError, BenchmarkSuiteError, BenchmarkConflictError) as err:
            raise _non_retryable(err, "GenerationSetupError") from err

    @activity.defn(name=names.SELECT_TASKS)
    async def select_tasks(self, inp: SelectTasksInput) -> TaskSelection:
        return await self._generations.select_tasks(inp)

    @activity.defn(name=names.LOAD_PARENTS)
    async def load_parents(self, inp: LoadParentsInput) -> ParentsLoaded:
        return await self._generations.load_parents(inp)

    @activity.defn(name=names.REGISTER_OFFSPRING)
    async def register_offspring(self, inp: RegisterInput) -> list[OffspringRecord]:
        return await self._generations.register(inp)

    @activity.defn(name=names.RECORD_GENERATION)
    async def record_generation(self, inp: RecordGenerationInput) -> GenerationResult:
        result = await self._generations.record(inp)
        current().generation(result)
        return result

    @activity.defn(name=names.APPLY_REVIEW)
    async def apply_review(self, inp: ApplyReviewInput) -> ReviewOutcome:
        try:
            return await self._generations.apply_review(inp)
        except LookupError as err:
            raise _non_retryable(err, "PromptNotFound") from err


class EvolutionLlmActivities:
    def __init__(self, mutator: PromptMutator) -> None:
        self._mutator = mutator

    @activity.defn(name=names.MUTATE_PROMPT)
    async def mutate_prompt(self, inp: MutateInput) -> list[ProposedChild]:
        try:
            return await self._mutator.mutate(inp, attempt=activity.info().attempt)
        except BudgetExhaustedError:
            return []  # no budget for the mutator: DEAP's operators still breed
        except LlmError as err:  # retried after the provider's retry-after, or final
            raise llm_application_error(err, "MutationError") from err

    @activity.defn(name=names.CHECK_OFFSPRING)
    async def check_offspring(self, inp: CheckInput) -> list[CheckedChild]:
        try:
            return await self._mutator.check(inp, attempt=activity.info().attempt)
        except LlmError as err:
            raise llm_application_error(err, "MutationError") from err


class OptimizerActivities:
    @activity.defn(name=names.PROPOSE_OFFSPRING)
    async def propose_offspring(self, inp: ProposeInput) -> list[ProposedChild]:
        parents = [
            Parent(
                prompt_id=p.prompt_id,
                system=p.system,
                content=p.content,
                objectives=p.fitness.objectives() if p.fitness else None,
            )
            for p in inp.parents
        ]
        children = propose(
            parents,
            inp.count,
            inp.seed,
            instruction_library(inp.role),
            answer_examples(inp.role),
            exclude=set(inp.exclude_hashes) | {content_key(c.system, c.content) for c in inp.taken},
            uniform=inp.search == "random",
        )
        return [
            ProposedChild(
                system=c.system,
                content=c.content,
                parent_ids=list(c.parent_ids),
                operator=c.operator,
            )
            for c in children
        ]

    @activity.defn(name=names.SELECT_SURVIVORS)
    async def select_survivors(self, inp: SelectInput) -> SelectResult:
        members = {m.prompt_id: m for m in inp.individuals if m.fitness is not None}
        points = {pid: m.fitness.objectives() for pid, m in members.items() if m.fitness}
        fronts = nondominated_sort(points)
        rank = {pid: r for r, front in enumerate(fronts) for pid in front}
        distance = crowding(points)
        if inp.search == "random":  # the baseline: no selection pressure
            chosen = random_survivors(points, inp.population, inp.seed)
        else:
            chosen = select_survivors(points, inp.population)
        survivors = [
            members[pid].model_copy(update={"rank": rank[pid], "crowding": distance.get(pid)})
            for pid in chosen
        ]
        previous = {a.prompt_id: a for a in inp.previous_archive if a.fitness is not None}
        kept = archive_update(
            {pid: a.fitness.objectives() for pid, a in previous.items() if a.fitness}, points
        )
        archive: list[Individual] = [members.get(pid) or previous[pid] for pid in kept]
        front = fronts[0] if fronts else []
        return SelectResult(
            survivors=survivors,
            front=front,
            archive=archive,
            hypervolume=hypervolume([points[p] for p in front]),
            archive_hypervolume=hypervolume(
                [a.fitness.objectives() for a in archive if a.fitness is not None]
            ),
            logbook=logbook_record(inp.generation, points, len(points)),
        )
