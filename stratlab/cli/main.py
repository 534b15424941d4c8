"""The ``stratlab`` command: run the lab, start and steer cycles, read what happened.

Every read command takes ``--json``. A user error (unknown id, bad argument, unreachable
service) prints one line on stderr and exits 1; there is no traceback for those.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import pydantic
import typer

from stratlab.cli import read
from stratlab.cli._common import (
    CliError,
    JsonOpt,
    check_plot_path,
    console,
    err_console,
    run,
    settings,
    store,
)
from stratlab.cli.paper_app import paper_app
from stratlab.cli.prompts_app import prompts_app
from stratlab.cli.schedule_app import schedule_app
from stratlab.cli.skills import skills_app
from stratlab.config import Settings
from stratlab.market.datasets import DataImportError, UnknownSymbolError
from stratlab.runtime import StackError, numba_cache_env
from stratlab.store.db import SchemaOutOfDateError
from stratlab.store.roles import RoleSetupError
from stratlab.temporal_names import POOLS

app = typer.Typer(
    help="stratlab: an autonomous research lab for trading strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Market data sets: import, list and remove.", no_args_is_help=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")
app.add_typer(skills_app, name="skills")
app.add_typer(prompts_app, name="prompts")
app.add_typer(paper_app, name="paper")
app.add_typer(schedule_app, name="schedule")

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


@app.command()
def dev(
    schedule: Annotated[bool, typer.Option(help="create the 5-minute research trigger")] = True,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run Temporal, Postgres and all four worker pools in the foreground (Ctrl-C stops)."""
    from stratlab.cli.stack import dev as run_dev

    run(run_dev(_with_metrics_port(settings(), metrics_port), schedule=schedule))


@app.command()
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


@app.command()
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


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """What runs: cycles, optimizer generations, paper strategies and schedules; recent
    outcomes and today's budget (no LLM call, no tokens). Exit 1 if Temporal or Postgres
    cannot be reached."""
    from stratlab.cli.overview import status as show_status

    run(show_status(settings(), as_json=as_json))


@app.command()
def history(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    trigger: Annotated[
        str | None,
        typer.Option(help="only this trigger: schedule, cli, manual, demo, user, regression"),
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="only this data set")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="only this outcome, e.g. success, failed_backtest_gate")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="started since a date (2025-03-01) or an age (6h, 3d)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Research sessions, newest first. The optimizer's evaluations (trigger regression)
    are hidden unless --trigger regression asks for them; a footer counts them."""
    from stratlab.cli.overview import history as show_history
    from stratlab.cli.overview import parse_since

    run(
        show_history(
            settings(),
            limit=limit,
            trigger=trigger,
            symbol=symbol,
            outcome=outcome,
            since=parse_since(since),
            as_json=as_json,
        )
    )


@app.command()
def session(
    session_id: Annotated[
        str, typer.Argument(help="session id, its workflow id, or a unique prefix of either")
    ],
    plot: Annotated[
        Path | None,
        typer.Option(help="write equity vs buy-and-hold and drawdown to FILE.png (or .svg, .pdf)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything about one session: phases, gates, spec, training, backtest, assessment, calls."""
    check_plot_path(plot)
    run(read.session(settings(), session_id, plot=plot, as_json=as_json))


@app.command()
def watch(
    session_id: Annotated[
        str,
        typer.Argument(
            help="session id, workflow id (research-<id>, evaluate-<id> or a custom one) "
            "or a unique prefix of either"
        ),
    ],
) -> None:
    """Follow a running cycle or evaluation live: phase, iteration, last metric, last error."""
    from stratlab.cli.watch import watch as run_watch

    run(run_watch(settings(), session_id))


@app.command()
def trials(
    symbol: Annotated[str | None, typer.Option(help="only this symbol's universes")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The trial ledger: how many strategies the lab tried per symbol and data window."""
    from stratlab.cli.trials import trials as show_trials

    run(show_trials(settings(), symbol=symbol, as_json=as_json))


@app.command()
def budget(
    days: Annotated[int, typer.Option(min=1, max=365)] = 7, as_json: JsonOpt = False
) -> None:
    """Today's budget per scope (cap, buffer, spent, reserved) and the recent daily spend."""
    from stratlab.cli.overview import budget as show_budget

    run(show_budget(settings(), days=days, as_json=as_json))


@app.command()
def trigger(
    symbol: Annotated[str, typer.Option(help="data set")] = "sp500",
    kind: Annotated[
        str | None, typer.Option(help="rules | ml | code (default: the designer picks)")
    ] = None,
    max_iterations: Annotated[int, typer.Option(min=1, max=10)] = 3,
    blind: Annotated[
        bool,
        typer.Option(
            "--blind",
            help="hide the symbol, dates and price levels from the designer",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="wait for the outcome")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a research cycle now."""
    if kind not in (None, "rules", "ml", "code"):
        raise CliError(f"unknown kind {kind!r}; kinds are: rules, ml, code")
    from stratlab.cli.control import trigger as start_cycle

    run(
        start_cycle(
            settings(), symbol, kind, max_iterations, blind=blind, wait=wait, as_json=as_json
        )
    )


@app.command()
def evaluate(
    spec: Annotated[
        Path,
        typer.Argument(help="a StrategySpec JSON file (rules, ml or code)", show_default=False),
    ],
    symbol: Annotated[
        str | None, typer.Option(help="data set (default: the spec's own symbol)")
    ] = None,
    period_start: Annotated[
        str | None, typer.Option(help="first day of the data window, YYYY-MM-DD")
    ] = None,
    period_end: Annotated[
        str | None, typer.Option(help="last day of the data window, YYYY-MM-DD")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run your own strategy through the lab's pipeline: fit walk-forward, look-ahead
    probe, seed gates, statistical gate (counted in the trial ledger), holdout. No LLM."""
    from stratlab.cli.evaluate import evaluate as run_evaluate
    from stratlab.cli.evaluate import parse_period

    period = parse_period(period_start, period_end)
    run(run_evaluate(settings(), spec, symbol=symbol, period=period, as_json=as_json))


@app.command()
def pause(reason: Annotated[str, typer.Option(help="note shown in the UI")] = "paused") -> None:
    """Pause the research trigger schedule."""
    from stratlab.cli.control import set_paused

    run(set_paused(settings(), paused=True, note=reason))


@app.command()
def resume(reason: Annotated[str, typer.Option(help="note shown in the UI")] = "resumed") -> None:
    """Resume the research trigger schedule."""
    from stratlab.cli.control import set_paused

    run(set_paused(settings(), paused=False, note=reason))


class SearchChoice(enum.StrEnum):
    """``stratlab optimize --search``: how a generation chooses."""

    nsga2 = "nsga2"
    random = "random"


@app.command()
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


@app.command()
def doctor(
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="seconds per probe")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Which provider and model each role uses and whether it answers; prices, cache,
    observability sinks, Temporal and Postgres. Never prints a secret; exit 1 if broken."""
    from stratlab.cli.doctor import doctor as run_doctor

    if not run(run_doctor(settings(), as_json=as_json, timeout=timeout)):
        sys.exit(1)  # the report says what is broken; no error line to add


@app.command()
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


@app.command()
def generations(
    role: Annotated[str | None, typer.Option(help="only this role's generations")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recorded optimizer generations, newest first: hypervolume, front, cost, candidates."""
    from stratlab.cli.generations_view import list_generations

    run(list_generations(settings(), role=role, limit=limit, as_json=as_json))


@app.command()
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


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with date + OHLCV columns")],
    symbol: Annotated[
        str, typer.Option(help="name to use in cycles, e.g. btc-daily (not a bundled name)")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="replace your earlier import of this symbol")
    ] = False,
) -> None:
    """Import OHLCV bars as a new symbol; --replace replaces your earlier import of it."""
    from stratlab.cli.data_import import import_data

    run(import_data(settings(), file, symbol, replace=replace))


@data_app.command("remove")
def data_remove(
    symbol: Annotated[str, typer.Argument(help="an imported symbol (see `stratlab data list`)")],
    as_json: JsonOpt = False,
) -> None:
    """Delete an imported data set (refused while a running workflow reads it)."""
    from stratlab.cli.data_import import remove_data

    run(remove_data(settings(), symbol, as_json=as_json))


@data_app.command("list")
def data_list(as_json: JsonOpt = False) -> None:
    """Bundled and imported data sets."""
    run(read.list_data(settings(), as_json=as_json))


@db_app.command("init")
def db_init() -> None:
    """Apply schema.sql (idempotent) and insert the default prompts."""

    async def _init() -> None:
        async with store(settings()):
            pass

    run(_init())
    console.print("schema applied")


@app.command("warm-cache")
def warm_cache() -> None:
    """Compile the compute workers' numba kernels into NUMBA_CACHE_DIR (at image build)."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        raise CliError("NUMBA_CACHE_DIR is empty: set it to the directory the workers read")
    from stratlab.backtest.warmup import warm_numba_cache

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


USER_ERRORS = (
    CliError,
    StackError,
    DataImportError,
    UnknownSymbolError,
    psycopg.OperationalError,
    FileNotFoundError,
    SchemaOutOfDateError,
    RoleSetupError,
)


def main() -> None:
    """Entry point: one-line errors and exit code 1 for anything the user can fix."""
    try:
        _main()
    except SystemExit as exit_:
        _exit(exit_.code)
    _exit(0)


def _exit(code: int | str | None) -> None:
    """Leave without racing the Temporal client's Rust threads against interpreter teardown.

    A short-lived process that used a Temporal client can abort (SIGABRT, "PyGILState_Release
    ... finalizing") when those threads wake during finalization (temporalio/sdk-python#300).
    atexit handlers still run, streams are flushed, then the process ends without finalizing.
    """
    if "temporalio.bridge.temporal_sdk_bridge" not in sys.modules:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message") prints the message and exits 1
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
        status = 1
    os._exit(status)


def _main() -> None:
    try:
        # Before anything imports numba: its JIT cache lives under $STRATLAB_HOME.
        numba_cache_env(Settings.from_env())
        app(standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.exceptions.TyperException as err:  # bad arguments and options
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        err_console.print(f"error: {message}", highlight=False, markup=False)
        sys.exit(1)
    except USER_ERRORS as err:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        message = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        # soft_wrap: a long message (full ids) stays one line however narrow the terminal.
        err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"error: invalid setting {where}: {first['msg']}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
