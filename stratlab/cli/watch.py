"""``stratlab watch ID``: follow a running cycle live from its ``status`` query (no tokens)."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from rich.live import Live
from rich.panel import Panel
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError, console, fmt_num, outcome_text, temporal
from stratlab.config import Settings
from stratlab.models.research import CycleStatus
from workflows.constants import SA_OUTCOME


def _panel(workflow_id: str, status: CycleStatus | None, state: str) -> Panel:
    if status is None:
        return Panel(f"waiting for the first status… ({state})", title=workflow_id)
    lines = [
        f"phase      {status.phase}",
        f"iteration  {status.iteration}",
        f"symbol     {status.symbol}",
        f"last OOS sharpe  {fmt_num(status.last_sharpe)}",
    ]
    if status.last_error:
        lines.append(f"last error [red]{status.last_error}[/red]")
    if status.outcome:
        lines.append(f"outcome    {outcome_text(status.outcome)}")
    return Panel("\n".join(lines), title=f"{workflow_id} · {state.lower()}", title_align="left")


def _state(status: WorkflowExecutionStatus | None) -> str:
    return status.name if status is not None else "UNKNOWN"


async def _status(handle: WorkflowHandle) -> CycleStatus | None:
    with suppress(Exception):  # a closed workflow with no worker to answer, or not started
        return await handle.query("status", result_type=CycleStatus)
    return None


async def watch(cfg: Settings, ident: str, *, interval: float = 0.5) -> None:
    client = await temporal(cfg)
    workflow_id = ident if ident.startswith("research-") else f"research-{ident}"
    handle = client.get_workflow_handle(workflow_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"no workflow {workflow_id!r}; `stratlab history` lists sessions"
            ) from err
        raise
    status = await _status(handle)
    with Live(_panel(workflow_id, status, _state(described.status)), console=console) as live:
        while described.status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(interval)
            status = await _status(handle) or status
            described = await handle.describe()
            live.update(_panel(workflow_id, status, _state(described.status)))
    outcome = described.typed_search_attributes.get(SA_OUTCOME)
    console.print(f"{workflow_id} {_state(described.status).lower()}: {outcome_text(outcome)}")
