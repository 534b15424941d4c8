"""A generation's pure decisions: who was measured, why it stopped, what the UI shows.

Plain deterministic functions over the generation's models, kept apart from the workflow
class so ``optimization.py`` reads as the list of steps; safe to import in the workflow
sandbox.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from stratlab.models.optimization import (
        GenerationPlan,
        Individual,
        OffspringRecord,
        OptimizationProgress,
        RegressionRunResult,
    )


def measured_individuals(
    plan: GenerationPlan,
    parent_runs: list[RegressionRunResult],
    new_ids: list[str],
    child_runs: list[RegressionRunResult],
    offspring: list[OffspringRecord],
) -> list[Individual]:
    """Everyone measured this generation (a run that measured nothing is left out)."""
    origin = {o.prompt_id: o for o in offspring if o.prompt_id}
    members: list[Individual] = []
    for pid, run in zip(plan.parent_ids, parent_runs, strict=True):
        members.append(
            Individual(
                prompt_id=pid,
                fitness=run.fitness,
                experiment_id=run.experiment_id,
                origin="prod" if pid == plan.prod_prompt_id else "survivor",
            )
        )
    for pid, run in zip(new_ids, child_runs, strict=True):
        made = origin[pid]
        members.append(
            Individual(
                prompt_id=pid,
                fitness=run.fitness,
                experiment_id=run.experiment_id,
                origin="offspring",
                operator=made.operator,
                parent_ids=made.parent_ids,
                raced_out=run.raced_out,
            )
        )
    return [m for m in members if m.fitness is not None and m.fitness.tasks > 0]


def stopped_reason(runs: list[RegressionRunResult]) -> str | None:
    """Why the first of ``runs`` that stopped early stopped (the optimizer budget ran out)."""
    return next((r.stopped_reason for r in runs if r.stopped_reason), None)


def progress_details(progress: OptimizationProgress) -> str:
    """The UI's current details of a generation (what the ``progress`` query answers)."""
    parts = [
        f"**{progress.phase}** · {progress.role} generation {progress.generation}",
        f"{len(progress.experiment_ids)} regression runs"
        + (f" ({progress.reused_runs} reused)" if progress.reused_runs else "")
        + f", {progress.planned_evaluations} cycles planned",
    ]
    if progress.generations_left > 1:
        parts.append(f"{progress.generations_left - 1} more generations in this campaign")
    if progress.hypervolume is not None:
        parts.append(f"archive hypervolume {progress.hypervolume:.4f}")
    if progress.candidates:
        parts.append(f"candidates: {', '.join(progress.candidates)}")
    return " · ".join(parts)
