"""``stratlab evaluate``: a user's own strategy spec through the lab's pipeline.

The spec file is read and validated here, before any workflow starts, so a missing file,
bad JSON or an invalid spec is one line on stderr; then ``EvaluateStrategyWorkflow`` runs
it (fit, walk-forward, look-ahead probe, seed gates, statistical gate, holdout) and the
checks are printed as a table that fits 80 columns, or as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pydantic
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from stratlab.cli._common import (
    CliError,
    console,
    outcome_text,
    print_json,
    print_link,
    store,
    temporal,
)
from stratlab.config import Settings
from stratlab.models.research import (
    CycleStatus,
    DataWindow,
    EvaluateStrategyInput,
    EvaluateStrategyResult,
    GateCheck,
    StrategySpec,
)
from stratlab.store.market import MarketRepo
from stratlab.strategies.validation import StrategyValidationError, validate_spec
from stratlab.temporal_names import EVALUATE_WORKFLOW_ID
from workflows.evaluate import EvaluateStrategyWorkflow
from workflows.labels import evaluate_labels

WIDTH = 80
_RESULT = {"passed": "[green]pass[/green]", "failed": "[bold red]FAIL[/bold red]"}


def load_spec(path: Path, *, symbol: str | None = None, max_grid_size: int = 4096) -> StrategySpec:
    """The spec in ``path`` (``symbol`` overriding its own), validated as a design is.
    Every problem is a ``CliError`` whose message is one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"cannot read {path}: {_one_line(str(err))}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(
            f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        ) from err
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold one JSON object: a strategy spec")
    try:
        spec = StrategySpec.model_validate(data)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise CliError(
            f"{path} is not a valid strategy spec: {where}: {first['msg']}{more}"
        ) from err
    if symbol:
        spec = spec.model_copy(update={"symbol": symbol})
    try:
        validate_spec(spec, max_grid_size=max_grid_size)
    except StrategyValidationError as err:
        raise CliError(f"{path}: {_one_line(str(err))}") from err
    return spec


def parse_period(start: str | None, end: str | None) -> DataWindow | None:
    """``--period-start/--period-end`` (YYYY-MM-DD) as a data window; None when neither."""
    if start is None and end is None:
        return None
    days = [_day(label, value) for label, value in (("start", start), ("end", end))]
    if days[0] and days[1] and days[0] > days[1]:
        raise CliError(f"--period-start {start} is after --period-end {end}")
    return DataWindow(start=days[0], end=days[1])


async def evaluate(
    cfg: Settings,
    spec_path: Path,
    *,
    symbol: str | None,
    period: DataWindow | None,
    as_json: bool,
) -> None:
    spec = load_spec(spec_path, symbol=symbol, max_grid_size=cfg.max_grid_size)
    from stratlab.models.optimizer_slice import research_refusal
    from stratlab.research.data import known_symbols

    if refusal := research_refusal(spec.symbol, "user"):
        raise CliError(refusal)

    async with store(cfg) as db:
        symbols = await known_symbols(MarketRepo(db))
    if spec.symbol not in symbols:
        raise CliError(f"unknown symbol {spec.symbol!r}; known: {', '.join(symbols)}")
    client = await temporal(cfg)
    handle = await start_evaluation(client, cfg, EvaluateStrategyInput(spec=spec, period=period))
    if as_json:
        result = await _result(handle)
        print_json(result_json(result, spec=spec, workflow_id=handle.id))
        return
    console.print(f"evaluating {escape(spec.name)} ({spec.kind}, {spec.symbol})", highlight=False)
    # soft_wrap: ids and links stay whole (copyable) however narrow the terminal.
    console.print(f"  {handle.id}", soft_wrap=True, highlight=False)
    print_link(cfg.workflow_ui_link(handle.id))
    result = await wait_with_status(handle, console)
    render_result(result, spec=spec, out=console)


async def start_evaluation(
    client: Client, cfg: Settings, inp: EvaluateStrategyInput
) -> WorkflowHandle[EvaluateStrategyWorkflow, EvaluateStrategyResult]:
    """Start an evaluation with its business-key workflow id ``evaluate-<session>``."""
    session_id = inp.session_id or str(uuid.uuid4())
    return await client.start_workflow(
        EvaluateStrategyWorkflow.run,
        inp.model_copy(update={"session_id": session_id}),
        id=EVALUATE_WORKFLOW_ID.format(session_id=session_id),
        task_queue=cfg.task_queue("orchestrator"),
        **evaluate_labels(inp),
    )


async def wait_with_status(
    handle: WorkflowHandle[Any, EvaluateStrategyResult], out: Console
) -> EvaluateStrategyResult:
    """The result, with a spinner that shows the workflow's phase (its free query)."""
    waiting = asyncio.ensure_future(_result(handle))
    with out.status(f"{handle.id}: starting…") as spinner:
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=1.0)
            if not waiting.done() and (status := await _status(handle)) is not None:
                spinner.update(f"{handle.id}: {status.phase}…")
    return waiting.result()


def result_json(
    result: EvaluateStrategyResult, *, spec: StrategySpec, workflow_id: str
) -> dict[str, Any]:
    """The ``--json`` object. A check that could not run has ``value`` null."""
    return {
        "session_id": result.session_id,
        "workflow_id": workflow_id,
        "strategy_id": result.strategy_id,
        "name": spec.name,
        "kind": spec.kind,
        "symbol": spec.symbol,
        "outcome": result.outcome,
        "checks": [
            {
                "gate": gate.gate,
                "name": check.name,
                "status": check.status,
                "value": None if check.status == "not_run" else check.value,
                "threshold": check.threshold,
                "op": check.op,
                "detail": check.detail,
            }
            for gate in result.gates
            for check in gate.checks
        ],
        "trials": result.trials,
        "metrics": None if result.metrics is None else result.metrics.model_dump(mode="json"),
        "holdout": None
        if result.holdout is None
        else result.holdout.metrics.model_dump(mode="json"),
        "holdout_psr": None if result.holdout is None else result.holdout.psr,
        "error": result.error,
    }


def render_result(result: EvaluateStrategyResult, *, spec: StrategySpec, out: Console) -> None:
    """The checks as a table at most 80 columns wide, then trials, metrics and holdout."""
    if result.gates:
        out.print(checks_table(result, width=min(WIDTH, out.width)))
    m = result.metrics
    if m is not None:
        out.print(
            f"walk-forward OOS: sharpe {m.sharpe:.2f}, return {m.total_return:+.1%}, "
            f"max drawdown {m.max_drawdown:.1%}, trades {m.trades}",
            highlight=False,
        )
    if result.trials:
        out.print(
            f"trials: N = {result.trials:,} in the {spec.symbol} ledger "
            "(the deflated Sharpe is judged against them)",
            highlight=False,
        )
    out.print(_holdout_line(result), highlight=False)
    if result.error:
        out.print(f"[red]error:[/red] {escape(result.error)}", highlight=False)
    out.print(f"outcome: {outcome_text(result.outcome)}", highlight=False)
    out.print(f"details: stratlab session {result.session_id}", highlight=False, soft_wrap=True)


def checks_table(result: EvaluateStrategyResult, *, width: int = WIDTH) -> Table:
    table = Table(box=box.SIMPLE_HEAD, width=width, pad_edge=False, title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    for i, gate in enumerate(result.gates):
        verdict = "[green]passed[/green]" if gate.passed else "[bold red]FAILED[/bold red]"
        table.add_row(f"[bold]{gate.gate} gate[/bold]", "", "", verdict, "", end_section=False)
        for check in gate.checks:
            table.add_row(
                check.name,
                _value(check),
                f"{check.op} {check.threshold:g}",
                _RESULT.get(check.status or "", "[yellow]not run[/yellow]"),
                escape(check.detail),
                end_section=False,
            )
        if i < len(result.gates) - 1:
            table.add_section()
    return table


# --- helpers ---------------------------------------------------------------------------


async def _result(
    handle: WorkflowHandle[Any, EvaluateStrategyResult],
) -> EvaluateStrategyResult:
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        message = str(err.cause or err)  # the workflow's own message (ApplicationError)
        raise CliError(f"evaluation {handle.id} failed: {_one_line(message)}") from err


async def _status(handle: WorkflowHandle[Any, Any]) -> CycleStatus | None:
    try:
        return await handle.query("status", result_type=CycleStatus)
    except Exception:  # finishing, or no worker answers yet: the spinner just waits
        return None


def _holdout_line(result: EvaluateStrategyResult) -> str:
    holdout = result.holdout
    if holdout is None:
        why = (
            "it could not run"
            if result.outcome == "success"
            else "only a strategy that passes every gate is"
        )
        return f"holdout: not evaluated ({why})"
    m = holdout.metrics
    psr = "" if holdout.psr is None else f", PSR {holdout.psr:.2f}"
    flagged = " (look-ahead flagged for a human)" if holdout.notes else ""
    return (
        f"holdout (once, reported only): sharpe {m.sharpe:.2f}, return {m.total_return:+.1%}, "
        f"max drawdown {m.max_drawdown:.1%}, trades {m.trades}{psr}{flagged}"
    )


def _value(check: GateCheck) -> str:
    if check.status == "not_run":
        return "—"
    if check.value.is_integer() and abs(check.value) < 1e9:
        return f"{int(check.value)}"
    return f"{check.value:.3f}"


def _day(label: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"--period-{label} {value!r} is not a date (YYYY-MM-DD)") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())
