"""Bodies of the generation read commands: ``stratlab generations`` and ``stratlab pareto``
(read only: no LLM call, no Temporal)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from stratlab.cli._common import CliError, console, fmt_usd, print_json, store
from stratlab.cli.prompts_view import (
    ROLES,
    add_fitness_columns,
    check_choice,
    compact_table,
    fitness_cells,
    short,
)
from stratlab.config import Settings
from stratlab.evolution.verdicts import CONTROL_TOLERANCE
from stratlab.models.optimization import (
    ExperimentRecord,
    Fitness,
    GenerationRecord,
    OffspringVerdict,
)
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo

# --- generations and the Pareto front ---------------------------------------------------------


async def list_generations(cfg: Settings, *, role: str | None, limit: int, as_json: bool) -> None:
    check_choice("role", role, ROLES)
    async with store(cfg) as db:
        gens = await GenerationRepo(db).list(role=role, limit=limit)
    if as_json:
        print_json(gens)
        return
    if not gens:
        console.print("no generations recorded yet: run stratlab optimize")
        return
    console.print(generations_table(gens))
    console.print(
        "score: the best mean task score (deflated Sharpe × criteria met; on noise 1 − it); "
        "success: the best share of tasks passed; evals: research cycles measured "
        "(baseline, parents, offspring; a reused run adds none)",
        style="dim",
    )
    for g in gens:
        if g.stopped_reason:
            console.print(f"{g.role} {g.generation} stopped: {g.stopped_reason}")
        if tally := verdict_tally(g.verdicts):
            console.print(f"{g.role} {g.generation} offspring: {tally}", highlight=False)
    if any(g.verdicts for g in gens):
        console.print("why each one: stratlab pareto --generation N", style="dim")


# --- why an offspring is not a candidate ------------------------------------------------------

_CAUSES = {
    "candidate": ("candidate", "candidates"),
    "dominated": ("dominated", "dominated"),
    "raced_out": ("raced out", "raced out"),
    "not_better_on_targets": ("no better on the targets", "no better on the targets"),
    "not_significant_on_targets": ("not significantly better", "not significantly better"),
    "loses_control": ("loses a control", "lose a control"),
    "worse_on_controls": ("worse on the controls", "worse on the controls"),
    "no_targets": ("without targets", "without targets"),
    "failed_checks": ("failed the checks", "failed the checks"),
    "same_as_parent": ("same as a parent", "same as a parent"),
    "not_measured": ("not measured", "not measured"),
    "no_prod_run": ("no prod run to compare", "no prod run to compare"),
}


def verdict_tally(verdicts: Sequence[OffspringVerdict]) -> str:
    """ "6: 1 candidate, 3 dominated, 2 lose a control": offspring counted by the first
    rule each failed, in the order the rule checks them."""
    if not verdicts:
        return ""
    counts = {cause: sum(v.cause == cause for v in verdicts) for cause in _CAUSES}
    parts = [f"{n} {_CAUSES[cause][0 if n == 1 else 1]}" for cause, n in counts.items() if n]
    return f"{len(verdicts)}: {', '.join(parts)}"


def verdicts_table(verdicts: Sequence[OffspringVerdict], title: str) -> Table:
    """Each offspring that is not a candidate and why, for 80 columns (the reason wraps)."""
    table = compact_table(title)
    table.add_column("offspring", no_wrap=True)
    table.add_column("why not a candidate", overflow="fold", ratio=1)
    for v in verdicts:
        if not v.candidate:
            table.add_row(short(v.prompt_id) if v.prompt_id else f"({v.operator})", v.reason)
    return table


def generations_table(gens: Sequence[GenerationRecord]) -> Table:
    """One row per generation, narrow enough for 80 columns."""
    # Seed, archive hypervolume, front and times: `stratlab pareto` and --json. A
    # random-search generation (the baseline) says so after its number.
    table = compact_table("Generations, newest first")
    table.add_column("generation", no_wrap=True)
    for col in ("hv", "score", "success", "evals", "cost"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("candidates", no_wrap=True)
    for g in gens:
        table.add_row(
            f"{g.role} {g.generation}" + (" (random)" if g.search == "random" else ""),
            f"{g.hypervolume:.4f}",
            f"{g.best_score:.3f}",
            f"{g.best_success_rate:.0%}",
            str(g.evaluations),
            fmt_usd(g.cost_usd),
            "\n".join(short(c) for c in g.candidates) or "—",
        )
    return table


@dataclass
class ParetoPoint:
    """A prompt of a generation with the fitness it was measured at and its front rank
    among the points shown (0 = no shown point dominates it)."""

    prompt_id: str
    origin: str
    operator: str = ""
    parent_ids: list[str] = field(default_factory=list)
    fitness: Fitness | None = None
    experiment_id: str | None = None
    rank: int | None = None
    prod: bool = False
    candidate: bool = False
    verdict: str = ""
    """An offspring's verdict: why it is, or is not, a candidate."""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fitness": self.fitness}


def rank_points(points: Iterable[ParetoPoint]) -> None:
    """Set each measured point's front among the measured points: the optimizer's own
    non-dominated sort on (score ↑, tokens ↓, latency ↓); unmeasured points stay unranked."""
    # Imported here: DEAP (and the SciPy under it) would slow every other command's start.
    from optimizer.selection import front_ranks

    shown = list(points)
    ranks = front_ranks(
        {p.prompt_id: p.fitness.objectives() for p in shown if p.fitness is not None}
    )
    for point in shown:
        point.rank = ranks.get(point.prompt_id)


async def _measured(
    repo: ExperimentRepo, prompt_id: str, gen: GenerationRecord
) -> ExperimentRecord | None:
    """The experiment that measured an offspring for this generation: one made in the
    generation, else a completed run on the same task set (never another task set: its
    numbers would not be comparable)."""
    done = [e for e in await repo.by_prompt(prompt_id) if e.status == "completed"]
    same_gen = [e for e in done if e.generation == gen.generation]
    same_tasks = [e for e in done if sorted(e.task_ids) == sorted(gen.task_ids)]
    return next(iter(same_gen or same_tasks), None)


async def generation_points(db: Pool, gen: GenerationRecord) -> list[ParetoPoint]:
    """Population plus accepted offspring (plus prod, if measured and in neither), ranked."""
    repo = ExperimentRepo(db)
    verdict_of = {v.prompt_id: v.reason for v in gen.verdicts if v.prompt_id}
    points: dict[str, ParetoPoint] = {}
    for ind in gen.population:
        points[ind.prompt_id] = ParetoPoint(
            ind.prompt_id, ind.origin, ind.operator, list(ind.parent_ids),
            ind.fitness, ind.experiment_id,
        )  # fmt: skip
    for child in gen.offspring:
        if child.accepted and child.prompt_id and child.prompt_id not in points:
            points[child.prompt_id] = ParetoPoint(
                child.prompt_id, "offspring", child.operator, list(child.parent_ids)
            )
    if gen.prod_prompt_id and gen.prod_prompt_id not in points and gen.prod_fitness:
        points[gen.prod_prompt_id] = ParetoPoint(
            gen.prod_prompt_id, "prod", fitness=gen.prod_fitness
        )
    for point in points.values():
        if point.fitness is None and (found := await _measured(repo, point.prompt_id, gen)):
            point.fitness, point.experiment_id = found.fitness, found.experiment_id
        point.prod = point.prompt_id == gen.prod_prompt_id
        point.candidate = point.prompt_id in gen.candidates
        point.verdict = verdict_of.get(point.prompt_id, "")
    rank_points(points.values())

    def order(p: ParetoPoint) -> tuple[float, ...]:
        f = p.fitness or Fitness()
        unranked = p.rank is None
        return (unranked, p.rank or 0, -f.score, f.mean_tokens, f.mean_latency_ms)

    return sorted(points.values(), key=order)


async def pareto(
    cfg: Settings, *, role: str, generation: int | None, plot: Path | None, as_json: bool
) -> None:
    check_choice("role", role, ROLES)
    async with store(cfg) as db:
        repo = GenerationRepo(db)
        gen = await (repo.latest(role) if generation is None else repo.get(role, generation))
        if gen is None and generation is not None and await repo.latest(role) is not None:
            raise CliError(f"no generation {generation} recorded for role {role}")
        if gen is None:
            raise CliError(f"no generations recorded for role {role} yet: run stratlab optimize")
        points = await generation_points(db, gen)
    written = None
    if plot is not None:
        from stratlab.cli.plots import plot_pareto

        written = plot_pareto(points, plot, title=_pareto_title(gen))
        if written is None:
            raise CliError(f"generation {gen.generation} of {role} has no measured prompt")
    if as_json:
        body = gen.model_dump(mode="json", include=_PARETO_KEYS)
        print_json(
            {
                **body,
                "individuals": [p.as_dict() for p in points],
                "plot": None if written is None else str(written),
            }
        )
        return
    _print_pareto(gen, points)
    if written is not None:
        console.print(f"plot written to {written}")


_PARETO_KEYS = {"role", "generation", "seed", "hypervolume", "archive_hypervolume", "front",
                "prod_prompt_id", "candidates", "verdicts", "stopped_reason"}  # fmt: skip


def _pareto_title(gen: GenerationRecord) -> str:
    return (
        f"{gen.role} generation {gen.generation}: hypervolume {gen.hypervolume:.4f} "
        f"(archive {gen.archive_hypervolume:.4f})"
    )


def _print_pareto(gen: GenerationRecord, points: Sequence[ParetoPoint]) -> None:
    console.print(pareto_table(gen, points))
    console.print(
        f"seed {gen.seed}; rank 0 is the Pareto front on (score ↑, tokens ↓, latency ↓); "
        "score: mean task score (deflated Sharpe × criteria met; on noise 1 − it)",
        style="dim",
    )
    if any(not v.candidate for v in gen.verdicts):
        console.print(verdicts_table(gen.verdicts, "Why offspring are not candidates"))
        console.print(
            "a candidate: on the Pareto front, beats prod's mean score on the targets (tasks "
            f"prod fails), no control (a task prod passes) more than {CONTROL_TOLERANCE:g} "
            "below prod's",
            style="dim",
        )
    elif not gen.verdicts and gen.offspring:
        console.print("recorded before verdicts were: no reasons stored", style="dim")


def pareto_table(gen: GenerationRecord, points: Sequence[ParetoPoint]) -> Table:
    """A generation's prompts with their fitness and front rank, for 80 columns."""
    table = compact_table(_pareto_title(gen))
    table.add_column("prompt", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("operator", overflow="fold")
    add_fitness_columns(table)
    table.add_column("rank", justify="right", no_wrap=True)
    for p in points:
        role = "★ prod" if p.prod else "candidate" if p.candidate else p.origin
        table.add_row(
            short(p.prompt_id),
            role,
            p.operator or "—",
            *fitness_cells(p.fitness),
            "—" if p.rank is None else str(p.rank),
            style="bold" if p.rank == 0 else None,
        )
    return table
