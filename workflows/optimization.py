"""OptimizationGenerationWorkflow: one NSGA-II generation of a role's prompts (seed 003).

prod baseline on the suite → targets (tasks prod fails) and controls (tasks it passes) →
parents measured on that task set → failure summary → offspring (LLM meta-mutation on the
``llm`` pool, DEAP crossover and structural mutation on the ``optimizer`` pool) → checks
(sandboxed dummy render, sanity) → registered as immutable rows → a regression run each →
NSGA-II survivors on (graded score ↑, tokens ↓, latency ↓) → the generation recorded →
candidates wait for a human in a ``PromptReviewWorkflow``. A campaign of several
generations continues as new after each one, so no history grows with the campaign. DEAP
and every random choice live in activities; this code only orchestrates.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.boundary import mark_ended, validated_input
from workflows.calls import execute
from workflows.labels import regression_labels, review_labels

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.optimization import (
        CheckedChild,
        CheckInput,
        GenerationPlan,
        GenerationResult,
        Individual,
        LoadParentsInput,
        MutateInput,
        OffspringRecord,
        OptimizationInput,
        OptimizationProgress,
        ParentsLoaded,
        ProposedChild,
        ProposeInput,
        RaceAgainst,
        RecordGenerationInput,
        RegisterInput,
        RegressionRunInput,
        RegressionRunResult,
        ReviewInput,
        SelectInput,
        SelectResult,
        SelectTasksInput,
        TaskSelection,
    )
    from workflows import constants as c
    from workflows.generation_decisions import (
        measured_individuals,
        progress_details,
        stopped_reason,
    )
    from workflows.regression import RegressionRunWorkflow
    from workflows.review import PromptReviewWorkflow


@workflow.defn(name="OptimizationGenerationWorkflow")
class OptimizationGenerationWorkflow:
    def __init__(self) -> None:
        self._progress: OptimizationProgress | None = None
        self._llm_steps: list[str] = []
        """The keys of this generation's mutation and check steps (their LLM calls)."""

    @workflow.query(name="progress")
    def progress(self) -> OptimizationProgress | None:
        return self._progress

    @workflow.run
    @validated_input
    async def run(self, inp: OptimizationInput) -> GenerationResult:
        inp = inp.model_copy(update={"campaign_id": inp.campaign_id or str(workflow.uuid4())})
        started_at = workflow.now()
        self._progress = OptimizationProgress(
            role=inp.role, generation=inp.generation, generations_left=inp.generations
        )
        plan = await self._begin(inp)
        self._phase("baseline")
        baseline = await self._regression(inp, plan, plan.prod_prompt_id, plan.suite_task_ids)
        selection = await self._select_tasks(inp, plan, baseline)
        self._phase("parents")
        parent_runs = await self._regressions(inp, plan, plan.parent_ids, selection.task_ids)
        loaded = await self._load_parents(inp, plan, parent_runs)
        # Once the optimizer budget is spent, nothing more is bred or measured: the
        # generation records what it has and why it stopped.
        stopped = stopped_reason([baseline, *parent_runs])
        offspring: list[OffspringRecord] = []
        new_ids: list[str] = []
        child_runs: list[RegressionRunResult] = []
        if stopped is None:
            offspring, new_ids, child_runs = await self._offspring(inp, plan, loaded, selection)
            stopped = stopped_reason(child_runs)
        self._phase("selecting")
        evaluated = measured_individuals(plan, parent_runs, new_ids, child_runs, offspring)
        selected = await self._select_survivors(inp, plan, selection, evaluated)
        self._phase("recording")
        result = await self._record(
            RecordGenerationInput(
                plan=plan,
                selection=selection,
                offspring=offspring,
                evaluated=evaluated,
                selected=selected,
                prod_experiment_id=parent_runs[0].experiment_id,
                stopped_reason=stopped,
                started_at=started_at,
                # The runs the progress query counts, so the record counts the same cycles.
                experiment_ids=list(self._progress.experiment_ids),
                llm_action_ids=list(self._llm_steps),
            )
        )
        await self._open_reviews(inp, result)
        self._progress_after(result)
        if inp.generations > 1 and stopped is None:
            workflow.continue_as_new(
                inp.model_copy(
                    update={"generations": inp.generations - 1, "generation": plan.generation + 1}
                )
            )
        self._phase("done")
        mark_ended("stopped_budget" if stopped else "completed", "done")
        return result

    # --- steps ---------------------------------------------------------------------

    async def _begin(self, inp: OptimizationInput) -> GenerationPlan:
        """The generation's number, seed, parents and prod prompt, published on the run."""
        assert self._progress is not None
        plan = await execute(
            act.BEGIN_GENERATION,
            inp,
            summary=f"begin the {inp.role} generation: number, seed, parents",
        )
        self._progress.generation = plan.generation
        workflow.upsert_search_attributes(
            [c.SA_ROLE.value_set(inp.role), c.SA_GENERATION.value_set(plan.generation)]
        )
        return plan

    async def _select_tasks(
        self, inp: OptimizationInput, plan: GenerationPlan, baseline: RegressionRunResult
    ) -> TaskSelection:
        """Targets (tasks prod fails) and controls (tasks it passes), or the fixed tasks."""
        return await execute(
            act.SELECT_TASKS,
            SelectTasksInput(
                role=inp.role,
                prod_prompt_id=plan.prod_prompt_id,
                baseline_experiment_id=baseline.experiment_id,
                targets=inp.targets,
                controls=inp.controls,
                task_ids=inp.task_ids,
                seed=inp.seed,  # the campaign's: one task set for the whole campaign
            ),
            summary="choose the task set: "
            + (
                f"{len(inp.task_ids)} fixed tasks"
                if inp.task_ids
                else f"up to {inp.targets} targets prod fails, {inp.controls} controls it passes"
            ),
        )

    async def _load_parents(
        self, inp: OptimizationInput, plan: GenerationPlan, parent_runs: list[RegressionRunResult]
    ) -> ParentsLoaded:
        """The parents as measured on this task set, and the failures to fix."""
        return await execute(
            act.LOAD_PARENTS,
            LoadParentsInput(
                role=inp.role,
                prompt_ids=plan.parent_ids,
                experiment_ids=[r.experiment_id for r in parent_runs],
                generation=plan.generation,
                search=inp.search,
                seed=plan.seed,
                significance=inp.significance,
            ),
            summary=f"load {len(plan.parent_ids)} parents and the failures to fix",
        )

    async def _select_survivors(
        self,
        inp: OptimizationInput,
        plan: GenerationPlan,
        selection: TaskSelection,
        evaluated: list[Individual],
    ) -> SelectResult:
        """NSGA-II over everyone measured; the archive carries over on the same task set."""
        archive = plan.previous_archive if plan.previous_task_ids == selection.task_ids else []
        return await execute(
            act.SELECT_SURVIVORS,
            SelectInput(
                role=inp.role,
                generation=plan.generation,
                population=inp.population,
                search=inp.search,
                seed=plan.seed,
                # A raced-out offspring is dominated with confidence: it does not compete.
                individuals=[e for e in evaluated if not e.raced_out],
                previous_archive=archive,
            ),
            summary=f"{_SURVIVORS[inp.search]}: {inp.population} of {len(evaluated)} measured",
        )

    async def _record(self, record: RecordGenerationInput) -> GenerationResult:
        return await execute(
            act.RECORD_GENERATION,
            record,
            summary=f"record generation {record.plan.generation}",
        )

    async def _offspring(
        self,
        inp: OptimizationInput,
        plan: GenerationPlan,
        loaded: ParentsLoaded,
        selection: TaskSelection,
    ) -> tuple[list[OffspringRecord], list[str], list[RegressionRunResult]]:
        """Breed, check and register children, then measure the new ones."""
        self._phase("breeding")
        checked = await self._breed(inp, plan, loaded)
        offspring = await execute(
            act.REGISTER_OFFSPRING,
            RegisterInput(role=inp.role, generation=plan.generation, children=checked),
            summary=f"register {len(checked)} checked offspring",
        )
        self._phase("evaluating")
        new_ids = sorted(
            {o.prompt_id for o in offspring if o.accepted and o.prompt_id} - set(plan.parent_ids)
        )
        race = loaded.race if inp.racing else None
        child_runs = await self._regressions(inp, plan, new_ids, selection.task_ids, race)
        return offspring, new_ids, child_runs

    async def _breed(
        self, inp: OptimizationInput, plan: GenerationPlan, loaded: ParentsLoaded
    ) -> list[CheckedChild]:
        children: list[ProposedChild] = []
        if inp.meta_mutations and loaded.parents:
            children += await execute(
                act.MUTATE_PROMPT,
                MutateInput(
                    role=inp.role,
                    generation=plan.generation,
                    parent=loaded.parents[loaded.mutation_parent],
                    failure_summary=loaded.failure_summary,
                    count=min(inp.meta_mutations, inp.population),
                    action_id=self._llm_step(),
                    exclude_hashes=loaded.known_hashes,
                ),
                summary=f"LLM meta-mutation: {min(inp.meta_mutations, inp.population)} variations",
            )
        count = max(inp.population - len(children), 0)
        children += await execute(
            act.PROPOSE_OFFSPRING,
            ProposeInput(
                role=inp.role,
                generation=plan.generation,
                seed=plan.seed,
                search=inp.search,
                count=count,
                parents=loaded.parents,
                exclude_hashes=loaded.known_hashes,
                taken=children,
            ),
            summary=f"crossover and structural mutation: {count} children",
        )
        return await execute(
            act.CHECK_OFFSPRING,
            CheckInput(
                role=inp.role,
                generation=plan.generation,
                children=children,
                parents=loaded.parents,
                action_id=self._llm_step(),
            ),
            summary=f"check {len(children)} offspring: dummy render, sanity",
        )

    async def _regressions(
        self,
        inp: OptimizationInput,
        plan: GenerationPlan,
        prompt_ids: list[str],
        tasks: list[str],
        race: RaceAgainst | None = None,
    ) -> list[RegressionRunResult]:
        share = max(1, inp.max_parallel // max(len(prompt_ids), 1))
        return list(
            await asyncio.gather(
                *(self._regression(inp, plan, pid, tasks, share, race) for pid in prompt_ids)
            )
        )

    async def _regression(
        self,
        inp: OptimizationInput,
        plan: GenerationPlan,
        prompt_id: str,
        tasks: list[str],
        parallel: int | None = None,
        race: RaceAgainst | None = None,
    ) -> RegressionRunResult:
        assert self._progress is not None
        experiment_id = str(workflow.uuid4())
        self._progress.experiment_ids.append(experiment_id)
        self._progress.planned_evaluations += len(tasks) * inp.rollouts
        run = RegressionRunInput(
            prompt_id=prompt_id,
            role=inp.role,
            task_ids=tasks,
            rollouts=inp.rollouts,
            experiment_id=experiment_id,
            generation=plan.generation,
            max_parallel=parallel or inp.max_parallel,
            race=race,
        )
        result = await workflow.execute_child_workflow(
            RegressionRunWorkflow.run,
            run,
            id=c.REGRESSION_WORKFLOW_ID.format(experiment_id=experiment_id),
            task_queue=workflow.info().task_queue,
            **regression_labels(run, inp.campaign_id),
        )
        if result.reused:  # an earlier measurement stands in: no cycle ran for it
            self._progress.planned_evaluations -= len(tasks) * inp.rollouts
            self._progress.reused_runs += 1
        return result

    async def _open_reviews(self, inp: OptimizationInput, result: GenerationResult) -> None:
        """Each candidate waits for a human in its own workflow, which outlives this one."""
        for prompt_id in result.candidates:
            try:
                review = ReviewInput(
                    prompt_id=prompt_id,
                    role=inp.role,
                    generation=result.generation,
                    summary=f"generation {result.generation} candidate for {inp.role}",
                )
                await workflow.start_child_workflow(
                    PromptReviewWorkflow.run,
                    review,
                    id=c.REVIEW_WORKFLOW_ID.format(prompt_id=prompt_id),
                    task_queue=workflow.info().task_queue,
                    **review_labels(review),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                continue  # already under review

    # --- helpers -------------------------------------------------------------------

    def _llm_step(self) -> str:
        """A new key for an LLM step of this generation, remembered for its cost."""
        key = str(workflow.uuid4())
        self._llm_steps.append(key)
        return key

    def _progress_after(self, result: GenerationResult) -> None:
        assert self._progress is not None
        self._progress.history.append(result)
        self._progress.hypervolume = result.archive_hypervolume
        self._progress.best_success_rate = result.best_success_rate
        self._progress.best_score = result.best_score
        self._progress.candidates += result.candidates

    def _phase(self, phase: str) -> None:
        assert self._progress is not None
        self._progress.phase = phase
        workflow.upsert_search_attributes([c.SA_PHASE.value_set(phase)])
        workflow.set_current_details(progress_details(self._progress))


_SURVIVORS = {"nsga2": "NSGA-II survivors", "random": "random survivors (baseline)"}
