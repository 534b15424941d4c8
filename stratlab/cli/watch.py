"""``stratlab watch ID``: follow a running cycle live from its ``status`` query (no tokens).

ID is a session id, a workflow id (``research-<id>``, ``evaluate-<id>`` or the custom id
of a cycle started from the Temporal CLI) or an unambiguous prefix of either."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from rich.live import Live
from rich.panel import Panel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import (
    CliError,
    DatabaseUnreachable,
    console,
    fmt_num,
    outcome_text,
    store,
    temporal,
)
from stratlab.cli.ids import MIN_PREFIX, SHOWN, ambiguous
from stratlab.config import Settings
from stratlab.models.research import CycleStatus
from stratlab.store.ids import session_matches
from stratlab.temporal_names import SA_OUTCOME


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


CYCLE_TYPES = ("ResearchCycleWorkflow", "EvaluateStrategyWorkflow")
_ID_PREFIXES = ("", "research-", "evaluate-")


async def watch(cfg: Settings, ident: str, *, interval: float = 0.5) -> None:
    client = await temporal(cfg)
    workflow_id = await resolve_cycle(cfg, client, ident.strip())
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    if described.workflow_type not in CYCLE_TYPES:
        raise CliError(
            f"{workflow_id} is a {described.workflow_type}, not a research cycle or an "
            "evaluation; `stratlab watch` follows those"
        )
    status = await _status(handle)
    with Live(_panel(workflow_id, status, _state(described.status)), console=console) as live:
        while described.status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(interval)
            status = await _status(handle) or status
            described = await handle.describe()
            live.update(_panel(workflow_id, status, _state(described.status)))
    outcome = described.typed_search_attributes.get(SA_OUTCOME)
    console.print(f"{workflow_id} {_state(described.status).lower()}: {outcome_text(outcome)}")


async def resolve_cycle(cfg: Settings, client: Client, ref: str) -> str:
    """The workflow id of a cycle or evaluation from a session id, a workflow id (the
    lab's ``research-<id>``/``evaluate-<id>`` or any custom one) or an unambiguous prefix
    of either: the sessions table first (it records every cycle's workflow id), then
    Temporal itself, for a run whose first activity has not written its row yet."""
    if not ref or any(c in ref for c in "'\\\"\n"):
        raise CliError(f"no cycle {ref!r}; `stratlab history` lists them")
    stored = await _stored_matches(cfg, ref)
    for sid, wid in stored:
        if ref in (sid, wid):
            return wid
    for prefix in _ID_PREFIXES:
        if await _exists(client, prefix + ref):
            return prefix + ref
    if len(ref) < MIN_PREFIX:
        raise CliError(f"no cycle {ref!r} (a prefix needs {MIN_PREFIX}+ characters)")
    found = list(dict.fromkeys([wid for _, wid in stored] + await _temporal_matches(client, ref)))
    if not found:
        raise CliError(f"no cycle {ref!r}; `stratlab history` lists them")
    if len(found) > 1:
        raise ambiguous("prefix", ref, found)
    return found[0]


async def _stored_matches(cfg: Settings, ref: str) -> list[tuple[str, str]]:
    try:
        async with store(cfg) as db:
            return await session_matches(db, ref, limit=SHOWN + 1)
    except DatabaseUnreachable:  # Postgres down: Temporal can still answer
        return []


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _temporal_matches(client: Client, ref: str) -> list[str]:
    """Cycles and evaluations Temporal knows whose workflow id starts with ``ref`` (or
    ``research-``/``evaluate-`` and ``ref``)."""
    starts = " OR ".join(f"WorkflowId STARTS_WITH '{p}{ref}'" for p in _ID_PREFIXES)
    types = ", ".join(f"'{t}'" for t in CYCLE_TYPES)
    found: list[str] = []
    async for execution in client.list_workflows(f"({starts}) AND WorkflowType IN ({types})"):
        found.append(execution.id)
        if len(found) > SHOWN:
            break
    return found
