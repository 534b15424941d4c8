"""Commands of the prompt optimizer: ``optimize`` a role's prompt, list its
``generations``, show a generation's ``pareto`` front. ``stratlab.cli.main`` registers
them."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from stratlab.cli._common import CliError, JsonOpt, check_plot_path, run, settings


class SearchChoice(enum.StrEnum):
    """``stratlab optimize --search``: how a generation chooses."""

    nsga2 = "nsga2"
    random = "random"


def optimize(
    role: Annotated[str, typer.Option(help="the role whose prompt evolves")] = "designer",
    generations: Annotated[int, typer.Option(min=1, max=100, help="generations to run")] = 1,
    population: Annotated[int, typer.Option(min=2, max=64, help="offspring per generation")] = 16,
    seed: Annotated[int, typer.Option(help="campaign seed (same seed, same generations)")] = 0,
    search: Annotated[
        SearchChoice,
        typer.Option(
            help="nsga2, or random: the baseline with the same operators and budget and no "
            "selection pressure",
        ),
    ] = SearchChoice.nsga2,
    significance: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=1.0,
            help="a candidate beats prod on the targets with a p-value below this",
        ),
    ] = 0.05,
    tasks: Annotated[
        str | None, typer.Option(help="comma-separated benchmark task ids (default: seed 003's)")
    ] = None,
    local: Annotated[
        bool, typer.Option(help="run Temporal, Postgres and the pools in this process")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Evolve a role's prompt with NSGA-II (or the random-search baseline): offspring,
    regression runs, survivors, candidates."""
    from stratlab.cli.evolution import optimize as run_optimize
    from stratlab.models.optimization import OPTIMIZABLE_ROLES, OptimizationInput

    if role not in OPTIMIZABLE_ROLES:
        raise CliError(
            f"role {role!r} has no benchmark; optimizable: {', '.join(OPTIMIZABLE_ROLES)}"
        )
    campaign = OptimizationInput(
        role=role,  # type: ignore[arg-type]  # checked above
        generations=generations,
        population=population,
        seed=seed,
        search=search.value,
        significance=significance,
        task_ids=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else [],
        meta_mutations=min(4, population // 2),
    )
    run(run_optimize(settings(), campaign, local=local, as_json=as_json))


def generations(
    role: Annotated[str | None, typer.Option(help="only this role's generations")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recorded optimizer generations, newest first: hypervolume, front, cost, candidates."""
    from stratlab.cli.generations_view import list_generations

    run(list_generations(settings(), role=role, limit=limit, as_json=as_json))


def pareto(
    role: Annotated[str, typer.Option(help="the optimized role")] = "designer",
    generation: Annotated[
        int | None, typer.Option(min=0, help="generation number (default: the latest)")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="write score vs tokens (colour: latency) to FILE.png (or .svg, .pdf)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A generation's measured prompts by Pareto front: success, tokens, latency."""
    from stratlab.cli.generations_view import pareto as show_pareto

    check_plot_path(plot)
    run(show_pareto(settings(), role=role, generation=generation, plot=plot, as_json=as_json))
