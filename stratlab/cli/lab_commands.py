"""Commands that run and deploy the lab: ``dev``, ``demo``, ``worker``, ``doctor``,
``setup``, ``warm-cache`` and the ``db`` group. ``stratlab.cli.main`` registers them."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stratlab.cli._common import CliError, JsonOpt, console, run, settings, store
from stratlab.config import Settings
from stratlab.temporal_names import POOLS

db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)

MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        help="serve Prometheus /metrics on this port (default: STRATLAB_METRICS_PORT, off)",
    ),
]


def _with_metrics_port(cfg: Settings, port: int | None) -> Settings:
    return cfg if port is None else cfg.model_copy(update={"metrics_port": port})


def dev(
    schedule: Annotated[bool, typer.Option(help="create the 5-minute research trigger")] = True,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run Temporal, Postgres and all four worker pools in the foreground (Ctrl-C stops)."""
    from stratlab.cli.stack import dev as run_dev

    run(run_dev(_with_metrics_port(settings(), metrics_port), schedule=schedule))


def demo(
    cycles: Annotated[
        int | None,
        typer.Option(min=1, max=12, help="cycles to run (default 4 with bubblewrap, else 3)"),
    ] = None,
) -> None:
    """Start everything, run research cycles on the bundled data, print what happened."""
    from stratlab.cli.demo import default_cycles
    from stratlab.cli.demo import demo as run_demo

    runs = run(run_demo(settings(), cycles=cycles or default_cycles()))
    if any(r.result is None for r in runs):
        raise typer.Exit(1)


def worker(
    pools: Annotated[
        list[str], typer.Argument(help=f"one or more of: {', '.join(POOLS)}", show_default=False)
    ],
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run worker pools against TEMPORAL_ADDRESS / DATABASE_URL (for deployments): one
    pool per container, or several in one process."""
    unknown = [p for p in pools if p not in POOLS]
    if unknown:
        raise CliError(f"unknown pool {unknown[0]!r}; pools are: {', '.join(POOLS)}")
    from stratlab.cli.stack import worker as run_worker

    chosen = tuple(dict.fromkeys(pools))  # each pool once, in the order given
    run(run_worker(_with_metrics_port(settings(), metrics_port), chosen))


def doctor(
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="seconds per probe")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Which provider and model each role uses and whether it answers; prices, cache,
    observability sinks, Temporal and Postgres. Never prints a secret; exit 1 if broken."""
    from stratlab.cli.doctor import doctor as run_doctor

    if not run(run_doctor(settings(), as_json=as_json, timeout=timeout)):
        sys.exit(1)  # the report says what is broken; no error line to add


def setup(
    app_role: Annotated[
        str | None,
        typer.Option(
            help="create or update this application role and grant it the lab's tables "
            "(its password: STRATLAB_APP_DB_PASSWORD)"
        ),
    ] = None,
    research_schedule: Annotated[
        bool, typer.Option(help="create the 5-minute research trigger")
    ] = True,
    nightly_role: Annotated[
        list[str] | None,
        typer.Option(help="create a nightly optimizer schedule for this role (repeatable)"),
    ] = None,
    nightly: Annotated[bool, typer.Option(help="create the nightly optimizer schedule")] = True,
    nightly_hour: Annotated[int, typer.Option(min=0, max=23, help="hour of the day, UTC")] = 2,
    population: Annotated[int, typer.Option(min=2, max=64, help="nightly offspring")] = 16,
    wait: Annotated[
        float, typer.Option(min=0, max=600, help="seconds to wait for Postgres and Temporal")
    ] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Prepare a deployment, as the database's admin user (idempotent; run it again after
    every upgrade): apply schema.sql, grant the application role, register the search
    attributes, create the schedules."""
    from stratlab.cli.setup import setup as run_setup
    from stratlab.models.optimization import OPTIMIZABLE_ROLES

    roles = list(dict.fromkeys(nightly_role or ["designer"])) if nightly else []
    unknown = [r for r in roles if r not in OPTIMIZABLE_ROLES]
    if unknown:
        raise CliError(
            f"role {unknown[0]!r} has no benchmark; optimizable: {', '.join(OPTIMIZABLE_ROLES)}"
        )
    run(
        run_setup(
            settings(),
            app_role=app_role,
            research_schedule=research_schedule,
            nightly_roles=roles,
            nightly_hour=nightly_hour,
            population=population,
            wait_seconds=wait,
            as_json=as_json,
        )
    )


def warm_cache() -> None:
    """Compile the compute workers' numba kernels into NUMBA_CACHE_DIR (at image build)."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        raise CliError("NUMBA_CACHE_DIR is empty: set it to the directory the workers read")
    from stratlab.strategies.warmup import warm_numba_cache

    report = warm_numba_cache()
    if report.cache_files == 0:
        raise CliError(f"numba wrote no cache files to {report.cache_dir}: is it writable?")
    console.print(
        f"numba cache warmed: {report.cache_files} files in {report.cache_dir} "
        f"({report.seconds:.1f} s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@db_app.command("init")
def db_init() -> None:
    """Apply schema.sql (idempotent) and insert the default prompts."""

    async def _init() -> None:
        async with store(settings()):
            pass

    run(_init())
    console.print("schema applied")
