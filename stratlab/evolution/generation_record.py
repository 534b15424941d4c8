"""A generation's record: each offspring's verdict, what it measured and cost, written once.

Candidates are the offspring on the first front that beat prod on the targets (tasks prod
fails: a higher mean graded score) and do not regress on the controls (tasks prod passes:
no control's score falls more than ``verdicts.CONTROL_TOLERANCE`` below prod's); every
offspring's verdict, and why it is not a candidate, is recorded with the generation
(``verdicts``). Scores, not passes, because under honest gates almost nothing passes: a
rule on passes would never find a candidate.
"""

from __future__ import annotations

from datetime import UTC, datetime

from stratlab.evolution.lifecycle import PromptLifecycle
from stratlab.evolution.verdicts import (
    Measured,
    measured_cycles,
    offspring_verdicts,
    score_by_task,
)
from stratlab.models.optimization import (
    GenerationRecord,
    GenerationResult,
    OffspringVerdict,
    RecordGenerationInput,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo


class GenerationRecorder:
    """Judges a finished generation's offspring, tags them, and stores the generation."""

    def __init__(
        self,
        experiments: ExperimentRepo,
        generations: GenerationRepo,
        actions: ActionRepo,
        lifecycle: PromptLifecycle,
    ) -> None:
        self._experiments = experiments
        self._generations = generations
        self._actions = actions
        self._lifecycle = lifecycle

    async def record(self, inp: RecordGenerationInput) -> GenerationResult:
        plan, selected = inp.plan, inp.selected
        verdicts = await self._verdicts(inp)
        candidates = {v.prompt_id for v in verdicts if v.candidate and v.prompt_id}
        survivors = {s.prompt_id for s in selected.survivors}
        await self._lifecycle.settle(plan.generation, inp.evaluated, candidates, survivors)
        evaluations, cost = await self._measured(inp)
        saved = await self._saved(inp)
        # The mutator's and the sanity checks' calls are made for the generation too.
        calls = (await self._actions.totals_by_prefix(inp.llm_action_ids)).cost_usd
        stored = await self._generations.record(
            GenerationRecord(
                role=plan.role,
                generation=plan.generation,
                campaign_id=plan.campaign_id,
                search=plan.search,
                seed=plan.seed,
                task_ids=inp.selection.task_ids,
                population=selected.survivors,
                offspring=inp.offspring,
                front=selected.front,
                archive=selected.archive,
                hypervolume=selected.hypervolume,
                archive_hypervolume=selected.archive_hypervolume,
                best_success_rate=max(
                    (m.fitness.success_rate for m in inp.evaluated if m.fitness), default=0.0
                ),
                best_score=max((m.fitness.score for m in inp.evaluated if m.fitness), default=0.0),
                prod_prompt_id=plan.prod_prompt_id,
                prod_fitness=next(
                    (m.fitness for m in inp.evaluated if m.prompt_id == plan.prod_prompt_id), None
                ),
                evaluations=evaluations,
                evaluations_saved=saved,
                cost_usd=round(cost + calls, 6),
                llm_calls_cost_usd=round(calls, 6),
                candidates=sorted(candidates),
                verdicts=verdicts,
                stopped_reason=inp.stopped_reason,
                logbook=[selected.logbook] if selected.logbook else [],
                started_at=inp.started_at,
                finished_at=datetime.now(UTC),
            )
        )
        return GenerationResult.of(stored)

    async def _verdicts(self, inp: RecordGenerationInput) -> list[OffspringVerdict]:
        """Each offspring's verdict under the candidate rule (see ``verdicts``)."""
        prod = (
            score_by_task(await self._experiments.results(inp.prod_experiment_id))
            if inp.prod_experiment_id
            else None
        )
        scores = {
            m.prompt_id: score_by_task(await self._experiments.results(m.experiment_id))
            for m in inp.evaluated
            if m.origin == "offspring" and m.experiment_id
        }
        measured = Measured(
            prod_prompt_id=inp.plan.prod_prompt_id,
            parent_ids=inp.plan.parent_ids,
            front=inp.selected.front,
            evaluated=inp.evaluated,
            targets=inp.selection.targets,
            controls=inp.selection.controls,
            prod_scores=prod,
            scores=scores,
            stopped_reason=inp.stopped_reason,
            significance=inp.plan.significance,
        )
        return offspring_verdicts(inp.offspring, measured)

    async def _measured(self, inp: RecordGenerationInput) -> tuple[int, float]:
        """Research cycles measured for the generation and what they cost: every run it
        started, the baseline included, each once (a reused run adds nothing). A run
        recorded before the workflow passed its run ids counts as it did then: the
        evaluated members' runs of this generation, planned cycles."""
        if inp.experiment_ids:
            ids = list(dict.fromkeys(inp.experiment_ids))
            runs = [await self._experiments.get(e) for e in ids]
            cost = sum(r.fitness.cost_usd for r in runs if r is not None and r.fitness)
            return await measured_cycles(self._experiments, ids), cost
        found = [
            await self._experiments.get(m.experiment_id) for m in inp.evaluated if m.experiment_id
        ]
        fresh = [r for r in found if r is not None and r.generation == inp.plan.generation]
        return (
            sum(len(r.task_ids) * r.rollouts for r in fresh),
            sum(r.fitness.cost_usd for r in fresh if r.fitness),
        )

    async def _saved(self, inp: RecordGenerationInput) -> int:
        """Planned cycles racing did not run: per raced-out run of this generation, its
        tasks x rollouts less the cycles it measured."""
        saved = 0
        for member in inp.evaluated:
            if member.raced_out and member.experiment_id:
                run = await self._experiments.get(member.experiment_id)
                if run is not None:
                    measured = await measured_cycles(self._experiments, [run.experiment_id])
                    saved += len(run.task_ids) * run.rollouts - measured
        return saved
