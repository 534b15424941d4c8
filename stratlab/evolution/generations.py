"""One generation on the store side: plan it, choose its tasks, load and register prompts,
record what NSGA-II chose, and apply a human's review.

Prompts are never changed: children are inserted as new rows (draft, then experimental
while measured) and every lifecycle change is an appended tag event. Candidates are the
offspring on the first front that beat prod on the targets (tasks prod fails: a higher
mean graded score) and do not regress on the controls (tasks prod passes: no control's
score falls more than ``CONTROL_TOLERANCE`` below prod's); every offspring's verdict, and
why it is not a candidate, is recorded with the generation (``verdicts``). Scores, not
passes, because under honest gates almost nothing passes: a rule on passes would never
find a candidate.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from stratlab.evolution.benchmarks import default_tasks
from stratlab.evolution.experiments import ExperimentService
from stratlab.evolution.verdicts import CONTROL_TOLERANCE as CONTROL_TOLERANCE  # re-export
from stratlab.evolution.verdicts import (
    Measured,
    measured_cycles,
    offspring_verdicts,
    score_by_task,
)
from stratlab.models.optimization import (
    FITNESS_VERSION,
    ApplyReviewInput,
    GenerationPlan,
    GenerationRecord,
    GenerationResult,
    LoadParentsInput,
    OffspringRecord,
    OffspringVerdict,
    OptimizationInput,
    ParentsLoaded,
    ParentSpec,
    RaceAgainst,
    RecordGenerationInput,
    RegisterInput,
    ReviewOutcome,
    SelectTasksInput,
    TaskResult,
    TaskSelection,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.db import default_prompt_id, prompt_content_hash
from stratlab.store.optimization import ExperimentRepo, GenerationRepo
from stratlab.store.prompts import PromptRepo

ACTOR = "optimizer"


class GenerationService:
    def __init__(
        self,
        prompts: PromptRepo,
        experiments: ExperimentRepo,
        generations: GenerationRepo,
        experiment_service: ExperimentService,
        derive_seed: Callable[[int, int], int],
        actions: ActionRepo,
    ) -> None:
        self._actions = actions
        self._prompts = prompts
        self._experiments = experiments
        self._generations = generations
        self._experiment_service = experiment_service
        self._derive_seed = derive_seed

    async def begin(self, inp: OptimizationInput) -> GenerationPlan:
        suite = await self._experiment_service.suite_tasks()
        generation = inp.generation
        if generation is None:
            generation = await self._generations.next_generation(inp.role)
        prod = await self._prompts.current_prod(inp.role)
        previous = await self._generations.get(inp.role, generation - 1)
        parent_ids = [prod.id]
        for member in previous.population if previous else []:
            found = await self._prompts.get(member.prompt_id)
            # An archived prompt (rejected, or replaced as prod) breeds no more.
            if found and found.tag != "archived" and found.id not in parent_ids:
                parent_ids.append(found.id)
        return GenerationPlan(
            role=inp.role,
            generation=generation,
            seed=self._derive_seed(inp.seed, generation),
            campaign_id=inp.campaign_id,
            search=inp.search,
            significance=inp.significance,
            prod_prompt_id=prod.id,
            parent_ids=parent_ids,
            suite_task_ids=[t.task_id for t in default_tasks(suite)],
            # Members measured under an older fitness (no score) are not comparable.
            previous_archive=[
                a for a in previous.archive if a.fitness and a.fitness.version >= FITNESS_VERSION
            ]
            if previous
            else [],
            previous_task_ids=previous.task_ids if previous else [],
        )

    async def select_tasks(self, inp: SelectTasksInput) -> TaskSelection:
        """Seed 003's task set: up to ``targets`` tasks prod fails and ``controls`` it
        passes, drawn with the campaign seed so a campaign keeps one task set."""
        outcome = _passed_by_task(await self._experiments.results(inp.baseline_experiment_id))
        if inp.task_ids:
            chosen = sorted(set(inp.task_ids))
            targets = [t for t in chosen if not outcome.get(t, False)]
            return TaskSelection(
                task_ids=chosen, targets=targets, controls=sorted(set(chosen) - set(targets))
            )
        failing = sorted(t for t, ok in outcome.items() if not ok)
        passing = sorted(t for t, ok in outcome.items() if ok)
        rng = random.Random(inp.seed)
        targets = sorted(rng.sample(failing, min(inp.targets, len(failing))))
        controls = sorted(rng.sample(passing, min(inp.controls, len(passing))))
        return TaskSelection(
            task_ids=sorted(targets + controls), targets=targets, controls=controls
        )

    async def load_parents(self, inp: LoadParentsInput) -> ParentsLoaded:
        parents: list[ParentSpec] = []
        for prompt_id, experiment_id in zip(inp.prompt_ids, inp.experiment_ids, strict=True):
            prompt = await self._prompts.get(prompt_id)
            experiment = await self._experiments.get(experiment_id)
            if prompt is None:
                raise LookupError(f"parent prompt {prompt_id!r} is not in the registry")
            parents.append(
                ParentSpec(
                    prompt_id=prompt.id,
                    system=prompt.system,
                    content=prompt.content,
                    fitness=experiment.fitness if experiment else None,
                )
            )
        ranked = sorted(parents, key=_rank_key)
        if inp.search == "random":  # no selection pressure: any parent, drawn by the seed
            chosen = random.Random(inp.seed).randrange(len(ranked))
        else:
            # The LLM mutates a different parent each generation (best first), so the same
            # parent and summary are not asked twice in a row.
            chosen = inp.generation % len(ranked)
        run_of = dict(zip(inp.prompt_ids, inp.experiment_ids, strict=True))
        results = await self._experiments.results(run_of[ranked[chosen].prompt_id])
        known = [p.content_hash for p in await self._prompts.list(role=inp.role, limit=100_000)]
        return ParentsLoaded(
            parents=ranked,
            mutation_parent=chosen,
            failure_summary=failure_summary(results),
            known_hashes=known,
            race=await self._race_bar(inp, run_of),
        )

    async def _race_bar(self, inp: LoadParentsInput, run_of: dict[str, str]) -> RaceAgainst | None:
        """Prod on this task set (``prompt_ids[0]``): what offspring race against."""
        prod_id = inp.prompt_ids[0]
        run = await self._experiments.get(run_of[prod_id])
        if run is None or run.fitness is None or run.fitness.tasks == 0:
            return None
        return RaceAgainst(
            prompt_id=prod_id,
            scores=score_by_task(await self._experiments.results(run.experiment_id)),
            mean_tokens=run.fitness.mean_tokens,
            mean_latency_ms=run.fitness.mean_latency_ms,
            significance=inp.significance,
        )

    async def register(self, inp: RegisterInput) -> list[OffspringRecord]:
        """Insert accepted children as immutable rows (draft → experimental); a child whose
        text is already registered resolves to that prompt and is not re-tagged."""
        records: list[OffspringRecord] = []
        for index, checked in enumerate(inp.children):
            child = checked.child
            digest = prompt_content_hash(child.system, child.content)
            # The id follows from the role and text, like the defaults' ids: the same child
            # bred in another run or database is the same prompt, so ties between equally fit
            # prompts break the same way everywhere and a campaign reproduces exactly.
            prompt_id = default_prompt_id(inp.role, digest)
            record = OffspringRecord(
                operator=child.operator,
                parent_ids=child.parent_ids,
                accepted=checked.accepted,
                reason=checked.reason,
                content_hash=digest,
            )
            if checked.accepted:
                known = await self._prompts.get(prompt_id)
                stored = await self._prompts.insert(
                    prompt_id=prompt_id,
                    role=inp.role,
                    content=child.content,
                    system=child.system,
                    version=f"1.{inp.generation + 1}.{index}",
                    parent_ids=child.parent_ids,
                    generation=inp.generation,
                    metadata={"operator": child.operator, "rationale": child.rationale},
                    tag="draft",
                    actor=ACTOR,
                    reason=f"bred in generation {inp.generation} by {child.operator}",
                )
                # Only a prompt this generation created is put under regression; a retry
                # finds it still a draft of this generation. An older prompt keeps its tag.
                fresh = known is None or (
                    known.tag == "draft" and known.generation == inp.generation
                )
                if fresh and stored.id == prompt_id:
                    await self._prompts.tag(
                        prompt_id,
                        "experimental",
                        actor=ACTOR,
                        reason=f"regression run in generation {inp.generation}",
                    )
                record.prompt_id = stored.id
            records.append(record)
        return records

    async def record(self, inp: RecordGenerationInput) -> GenerationResult:
        plan, selected = inp.plan, inp.selected
        verdicts = await self._verdicts(inp)
        candidates = {v.prompt_id for v in verdicts if v.candidate and v.prompt_id}
        survivors = {s.prompt_id for s in selected.survivors}
        for member in inp.evaluated:
            if member.prompt_id in candidates:
                await self._prompts.tag(
                    member.prompt_id,
                    "candidate",
                    actor=ACTOR,
                    reason=f"generation {plan.generation}: beats prod's score on targets, "
                    "keeps controls",
                )
            elif member.prompt_id not in survivors:
                await self._archive_if_experimental(member.prompt_id, plan.generation)
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

    async def apply_review(self, inp: ApplyReviewInput) -> ReviewOutcome:
        prompt = await self._prompts.get(inp.prompt_id)
        if prompt is None:
            raise LookupError(f"no prompt {inp.prompt_id!r} to review")
        previous = None
        if inp.decision == "approved":
            try:
                previous = (await self._prompts.current_prod(prompt.role)).id
            except LookupError:
                previous = None
            await self._prompts.tag(
                prompt.id, "prod", actor=inp.actor, reason=inp.reason or "approved"
            )
        else:
            await self._prompts.tag(
                prompt.id, "archived", actor=inp.actor, reason=inp.reason or inp.decision
            )
        return ReviewOutcome(
            prompt_id=prompt.id,
            decision=inp.decision,
            reason=inp.reason,
            actor=inp.actor,
            previous_prod_id=previous if previous != prompt.id else None,
        )

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

    async def _archive_if_experimental(self, prompt_id: str, generation: int) -> None:
        found = await self._prompts.get(prompt_id)
        if found is not None and found.tag in ("draft", "experimental"):
            await self._prompts.tag(
                prompt_id,
                "archived",
                actor=ACTOR,
                reason=f"not selected in generation {generation}",
            )


def _rank_key(parent: ParentSpec) -> tuple[float, float, float, str]:
    f = parent.fitness
    if f is None:
        return (1.0, float("inf"), float("inf"), parent.prompt_id)
    return (-f.score, f.mean_tokens, f.mean_latency_ms, parent.prompt_id)


def _passed_by_task(results: Sequence[TaskResult]) -> dict[str, bool]:
    """A task counts as passed when most of its rollouts passed."""
    votes: dict[str, list[bool]] = {}
    for r in results:
        if r.outcome != "skipped_budget":
            votes.setdefault(r.task_id, []).append(r.passed)
    return {task: sum(v) * 2 > len(v) for task, v in votes.items()}


def failure_summary(results: Sequence[TaskResult], *, limit: int = 20) -> str:
    """What the mutator is told: which tasks fail and why, most common causes first."""
    failed = [r for r in results if not r.passed and r.outcome != "skipped_budget"]
    if not failed:
        return ""
    causes = Counter(_cause(reason) for r in failed for reason in r.reasons)
    lines = [f"{len(failed)} of {len(results)} benchmark tasks failed. Most common causes:"]
    lines += [f"- {cause}: {count} tasks" for cause, count in causes.most_common(8)]
    lines.append("Failed tasks:")
    for r in failed[:limit]:
        lines.append(f"- {r.task_id}: {'; '.join(r.reasons[:3]) or r.outcome}")
    return "\n".join(lines)


def _cause(reason: str) -> str:
    """The metric or outcome a reason is about: "sharpe 0.21 < 0.5" → "sharpe too low"."""
    if reason.startswith("error:"):
        return "cycle error"
    if reason.startswith("outcome "):
        return reason
    if reason.startswith("not assessed"):
        return "not assessed: the cycle stopped before the assessor"
    if reason.startswith("assessor said "):  # "assessor said accept, the criteria say ..."
        said = reason.removeprefix("assessor said ").split(",", 1)[0]
        return f"assessor said {said} against the criteria"
    gate = ""
    if " gate: " in reason:  # "backtest gate: win_rate 0.4 < 0.45 (...)"
        gate, reason = reason.split(": ", 1)
        gate = f"{gate}: "
    words = reason.split()
    if len(words) >= 3 and words[2] in ("<", ">"):
        return f"{gate}{words[0]} too {'low' if words[2] == '<' else 'high'}"
    if len(words) >= 3 and words[1] == "too":  # "deflated_sharpe too low (needs ...)"
        return f"{gate}{words[0]} too {words[2]}"
    return f"{gate}{words[0]}" if words else "unknown"
