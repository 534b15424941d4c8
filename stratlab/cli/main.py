"""The ``stratlab`` command: run the lab, start and steer cycles, read what happened.

Every read command takes ``--json``. A user error (unknown id, bad argument, unreachable
service) prints one line on stderr and exits 1; there is no traceback for those.

This module is the app and its entry point: it registers the commands (defined in the
``*_commands`` modules) and the sub-apps, in the order ``stratlab --help`` lists them,
and turns the errors a user can fix into one line and exit code 1.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

import psycopg
import pydantic
import typer

from stratlab.cli import lab_commands, optimizer_commands, read_commands, research_commands
from stratlab.cli._common import CliError, err_console
from stratlab.cli.data_app import data_app
from stratlab.cli.paper_app import paper_app
from stratlab.cli.prompts_app import prompts_app
from stratlab.cli.schedule_app import schedule_app
from stratlab.cli.skills import skills_app
from stratlab.config import Settings
from stratlab.market.datasets import UnknownSymbolError
from stratlab.market.ohlcv import DataImportError
from stratlab.runtime import StackError, numba_cache_env
from stratlab.store.db import SchemaOutOfDateError
from stratlab.store.roles import RoleSetupError

app = typer.Typer(
    help="stratlab: an autonomous research lab for trading strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for command in (
    lab_commands.dev,
    lab_commands.demo,
    lab_commands.worker,
    read_commands.status,
    read_commands.history,
    read_commands.session,
    read_commands.watch,
    read_commands.trials,
    read_commands.budget,
    research_commands.trigger,
    research_commands.evaluate,
    research_commands.pause,
    research_commands.resume,
    optimizer_commands.optimize,
    lab_commands.doctor,
    lab_commands.setup,
    optimizer_commands.generations,
    optimizer_commands.pareto,
):
    app.command()(command)
app.command("warm-cache")(lab_commands.warm_cache)
app.add_typer(data_app, name="data")
app.add_typer(lab_commands.db_app, name="db")
app.add_typer(skills_app, name="skills")
app.add_typer(prompts_app, name="prompts")
app.add_typer(paper_app, name="paper")
app.add_typer(schedule_app, name="schedule")

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
