"""One generation on the store side: plan it, choose its task set, and load its parents
with what the mutator is told about their failures.

``GenerationService`` is what the activities call for every store-side step of a
generation; registering offspring and applying reviews are the prompt lifecycle's
(``lifecycle``), and the generation's record with each offspring's verdict is
``generation_record``'s.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

from stratlab.evolution.experiments import ExperimentService
from stratlab.evolution.generation_record import GenerationRecorder
from stratlab.evolution.lifecycle import PromptLifecycle
from stratlab.evolution.suite import default_tasks
from stratlab.evolution.verdicts import score_by_task
from stratlab.models.optimization import (
    FITNESS_VERSION,
    LLM_MUTATION,
    ApplyReviewInput,
    GenerationPlan,
    GenerationResult,
    LoadParentsInput,
    OffspringRecord,
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
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo


class GenerationService:
    """The store side of every step of a generation the workflow asks of the database."""

    def __init__(
        self,
        prompts: PromptRepo,
        experiments: ExperimentRepo,
        generations: GenerationRepo,
        experiment_service: ExperimentService,
        derive_seed: Callable[[int, int], int],
        actions: ActionRepo,
    ) -> None:
        self._prompts = prompts
        self._experiments = experiments
        self._generations = generations
        self._experiment_service = experiment_service
        self._derive_seed = derive_seed
        self._lifecycle = PromptLifecycle(prompts)
        self._recorder = GenerationRecorder(experiments, generations, actions, self._lifecycle)

    async def begin(self, inp: OptimizationInput) -> GenerationPlan:
        """The generation's number and seed, its parents (prod and the previous
        generation's survivors not archived since) and the previous archive."""
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
        """The parents ranked best first, the one the LLM mutates with its failures, the
        known prompt texts, and prod's bar for racing."""
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
        chosen = await self._mutation_parent(inp, ranked)
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

    async def _mutation_parent(self, inp: LoadParentsInput, ranked: list[ParentSpec]) -> int:
        """The index in ``ranked`` of the parent the LLM mutator gets.

        NSGA-II: the best parent the mutator has not had yet, so the LLM (a directed
        operator that breeds up to half the offspring) works on what selection found
        best and its fixes compound; a parent already mutated would get the same answer
        to the same failures. When every parent has had its turn, they rotate by
        generation. Random search: any parent, drawn by the seed (no selection pressure).
        """
        if inp.search == "random":
            return random.Random(inp.seed).randrange(len(ranked))
        mutated = await self._prompts.parents_by_operator(inp.role, LLM_MUTATION)
        fresh = [i for i, parent in enumerate(ranked) if parent.prompt_id not in mutated]
        return fresh[0] if fresh else inp.generation % len(ranked)

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
        """Insert accepted children as immutable rows (see ``PromptLifecycle.register``)."""
        return await self._lifecycle.register(inp)

    async def record(self, inp: RecordGenerationInput) -> GenerationResult:
        """Judge, tag and store the finished generation (see ``GenerationRecorder``)."""
        return await self._recorder.record(inp)

    async def apply_review(self, inp: ApplyReviewInput) -> ReviewOutcome:
        """A human's decision on a candidate (see ``PromptLifecycle.apply_review``)."""
        return await self._lifecycle.apply_review(inp)


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
