"""Bodies of the commands that steer prompt evolution: optimize, schedule nightly, and a
human's approve/reject of a candidate (a signal to its waiting review workflow)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rich.live import Live
from rich.table import Table
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError, console, print_json, print_link, store, temporal
from stratlab.cli.generations_view import verdict_tally
from stratlab.cli.prompts_view import compact_table, resolve_prompt
from stratlab.cli.schedule_labels import nightly_schedule_labels
from stratlab.config import Settings
from stratlab.evolution.verdicts import measured_cycles
from stratlab.models.optimization import (
    GenerationResult,
    OptimizationInput,
    OptimizationProgress,
    ReviewDecision,
    ReviewOutcome,
)
from stratlab.runtime import StackError
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo
from stratlab.temporal_names import NIGHTLY_SCHEDULE_ID, OPTIMIZE_WORKFLOW_ID, REVIEW_WORKFLOW_ID
from workflows.labels import optimization_labels
from workflows.optimization import OptimizationGenerationWorkflow
from workflows.review import PromptReviewWorkflow


@asynccontextmanager
async def _lab(cfg: Settings, *, local: bool) -> AsyncIterator[tuple[Client, Pool]]:
    """The running lab's Temporal and database, or (``local``) a lab in this process."""
    if local:
        from stratlab.cli.stack import local_lab, running_workers

        async with local_lab(cfg, quiet=True) as lab, running_workers(lab):
            yield lab.client, lab.db
        return
    try:
        client = await temporal(cfg)
    except StackError as err:
        raise CliError(
            f"{err}. Start the lab with `stratlab dev` in another shell, "
            "or pass --local to run one in this process"
        ) from err
    async with store(cfg) as db:
        yield client, db


async def check_task_ids(db: Pool, task_ids: list[str]) -> None:
    """``CliError`` naming the first unknown benchmark task, before any workflow starts
    (the regression runs would otherwise fail one by one after the generation began)."""
    from stratlab.evolution.suite import load_suite
    from stratlab.store.benchmarks import BenchmarkRepo

    suite = [t.task_id for t in load_suite().tasks]
    known = set(suite) | {t.task_id for t in await BenchmarkRepo(db).list()}
    unknown = [t for t in task_ids if t not in known]
    if unknown:
        shown = ", ".join(suite[:4]) + (
            f", … ({len(suite)} in the suite)" if len(suite) > 4 else ""
        )
        raise CliError(f"unknown benchmark task {unknown[0]!r}; tasks are: {shown}")


async def optimize(cfg: Settings, inp: OptimizationInput, *, local: bool, as_json: bool) -> None:
    async with _lab(cfg, local=local) as (client, db):
        if inp.task_ids:
            await check_task_ids(db, inp.task_ids)
        generation = await GenerationRepo(db).next_generation(inp.role)
        campaign_id = inp.campaign_id or str(uuid.uuid4())
        inp = inp.model_copy(update={"generation": generation, "campaign_id": campaign_id})
        workflow_id = OPTIMIZE_WORKFLOW_ID.format(role=inp.role, generation=generation)
        try:
            handle = await client.start_workflow(
                OptimizationGenerationWorkflow.run,
                inp,
                id=workflow_id,
                task_queue=cfg.task_queue("orchestrator"),
                **optimization_labels(inp),
            )
        except RPCError as err:
            if err.status == RPCStatusCode.ALREADY_EXISTS:
                raise CliError(f"{workflow_id} is already running") from err
            raise
        if not as_json:
            console.print(f"started {workflow_id}", highlight=False)
            print_link(cfg.workflow_ui_link(workflow_id))
        await _follow(handle, ExperimentRepo(db), inp, quiet=as_json)
        # Each generation of the campaign is a run of its own (continue-as-new): the
        # records say what all of them did.
        records = await GenerationRepo(db).list(role=inp.role, limit=1000)
        results = [
            GenerationResult.of(r)
            for r in sorted(records, key=lambda r: r.generation)
            if r.campaign_id == campaign_id
        ]
    if as_json:
        print_json({"workflow_id": workflow_id, "generations": results})
        return
    console.print(summary_table(results))
    for r in results:
        if tally := verdict_tally(r.verdicts):
            console.print(f"generation {r.generation} offspring: {tally}", highlight=False)
    if any(not v.candidate for r in results for v in r.verdicts):
        console.print(
            f"why each is not a candidate: stratlab pareto --generation {results[-1].generation}",
            style="dim",
        )
    stopped = next((r.stopped_reason for r in results if r.stopped_reason), None)
    if stopped:
        console.print(f"[yellow]stopped:[/yellow] {stopped}")
    candidates = [c for r in results for c in r.candidates]
    if candidates:
        console.print(
            f"[bold]{len(candidates)} candidate(s)[/bold] wait for review: "
            f"stratlab prompts approve {candidates[0]}  (or reject --reason ...)"
        )


async def _follow(
    handle: WorkflowHandle[Any, GenerationResult],
    experiments: ExperimentRepo,
    inp: OptimizationInput,
    *,
    quiet: bool,
) -> list[GenerationResult]:
    """Poll the campaign's ``progress`` query until it ends; show it live unless quiet."""
    finished = asyncio.create_task(handle.result())
    seen: dict[int, GenerationResult] = {}
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        while not finished.done():
            progress = await _progress(handle)
            if progress is not None:
                for done in progress.history:
                    seen[done.generation] = done
                if not quiet:
                    live.update(await progress_table(progress, experiments, inp, seen))
            await asyncio.wait({finished}, timeout=1.0)
    last = finished.result()
    seen[last.generation] = last
    return [seen[g] for g in sorted(seen)]


async def _progress(handle: WorkflowHandle[Any, Any]) -> OptimizationProgress | None:
    try:
        return await handle.query("progress", result_type=OptimizationProgress)
    except Exception:  # between runs of a continue-as-new chain, or not started yet
        return None


async def progress_table(
    progress: OptimizationProgress,
    experiments: ExperimentRepo,
    inp: OptimizationInput,
    seen: dict[int, GenerationResult],
) -> Table:
    # Counted as the recorded generation counts them, so a finished row shows what the
    # live row last said: cycles measured, a reused run adding none.
    done = await measured_cycles(experiments, progress.experiment_ids)
    first = inp.generation or 0
    table = compact_table(f"optimizing the {inp.role} prompt")
    for column in (
        "generation",
        "phase",
        "evaluations",
        "hypervolume",
        "best score",
        "best success",
    ):
        table.add_column(column)
    for result in sorted(seen.values(), key=lambda r: r.generation):
        table.add_row(
            str(result.generation),
            "done",
            str(result.evaluations),
            f"{result.archive_hypervolume:.4f}",
            f"{result.best_score:.3f}",
            f"{result.best_success_rate:.0%}",
        )
    if progress.generation not in seen:
        table.add_row(
            f"{progress.generation} ({(progress.generation or first) - first + 1} of "
            f"{inp.generations})",
            progress.phase,
            f"{done} / {progress.planned_evaluations}",
            "…",
            "…",
            "…",
        )
    return table


def summary_table(results: list[GenerationResult]) -> Table:
    searches = sorted({r.search for r in results})
    table = compact_table(f"generations ({', '.join(SEARCH_NAMES[s] for s in searches)})")
    # Each generation's seed: `stratlab generations --json`.
    for column in (
        "gen",
        "hypervolume",
        "best score",
        "best success",
        "front",
        "evals",
        "candidates",
    ):
        table.add_column(column)
    for r in results:
        table.add_row(
            str(r.generation),
            f"{r.archive_hypervolume:.4f}",
            f"{r.best_score:.3f}",
            f"{r.best_success_rate:.0%}",
            str(len(r.front)),
            str(r.evaluations),
            ", ".join(c[:8] for c in r.candidates) or "-",
        )
    return table


SEARCH_NAMES = {"nsga2": "NSGA-II", "random": "random search, the baseline"}


async def schedule_nightly(cfg: Settings, *, role: str, hour: int, population: int) -> bool:
    """Create the nightly generation schedule (UTC, overlap Skip); False if it exists."""
    try:
        client = await temporal(cfg)
    except StackError as err:
        raise CliError(f"{err}. Start the lab with `stratlab dev` first") from err
    return await ensure_nightly_schedule(client, cfg, role=role, hour=hour, population=population)


async def ensure_nightly_schedule(
    client: Client, cfg: Settings, *, role: str, hour: int, population: int
) -> bool:
    """The nightly generation schedule of ``role`` at ``hour``:00 UTC (overlap Skip);
    True when it was created, False when it already existed."""
    inp = OptimizationInput(role=role, population=population)  # type: ignore[arg-type]
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            OptimizationGenerationWorkflow.run,
            inp,
            id=f"optimize-nightly-{role}",
            task_queue=cfg.task_queue("orchestrator"),
            # The UI says what a nightly generation is, as for one `optimize` starts.
            **nightly_schedule_labels(inp, hour),
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(0)])]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(f"{NIGHTLY_SCHEDULE_ID}-{role}", schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


async def review(
    cfg: Settings, ref: str, *, approve: bool, reason: str, actor: str, as_json: bool
) -> None:
    """Answer a candidate's waiting review workflow and wait for the tag it applied."""
    async with store(cfg) as db:
        prompt = await resolve_prompt(PromptRepo(db), ref)
    if prompt.tag != "candidate":
        raise CliError(
            f"prompt {prompt.id} is {prompt.tag or 'untagged'}, not a candidate: "
            "only candidates are approved or rejected"
        )
    try:
        client = await temporal(cfg)
    except StackError as err:
        raise CliError(f"{err}. Start the lab with `stratlab dev` first") from err
    handle = client.get_workflow_handle_for(
        PromptReviewWorkflow.run, REVIEW_WORKFLOW_ID.format(prompt_id=prompt.id)
    )
    try:
        await handle.signal(
            PromptReviewWorkflow.decide, ReviewDecision(approve=approve, reason=reason, actor=actor)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no review is waiting for prompt {prompt.id}") from err
        raise
    with console.status("waiting for the review workflow to apply the decision…"):
        outcome: ReviewOutcome = await asyncio.wait_for(handle.result(), timeout=120)
    if as_json:
        print_json(outcome)
        return
    console.print(f"prompt {outcome.prompt_id}: {outcome.decision}")
    if outcome.decision == "approved":
        replaced = f"; {outcome.previous_prod_id} archived" if outcome.previous_prod_id else ""
        console.print(f"  now prod for {prompt.role}{replaced}; the next cycle uses it")
