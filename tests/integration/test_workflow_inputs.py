"""Every workflow from a Temporal client, as `temporal workflow start --input` sends it.

Invalid input (a bad value, zero iterations, an unknown field, a missing required field)
fails the run at once with the reason; valid input, ``{}`` where the README says so, runs.
Signals take their documented payloads and show an unusable one. Runs that end carry
``StratlabOutcome`` and a final ``StratlabPhase``; the UI's summaries are set. Activities
are replaced by name with scripted ones: what is tested is the workflows' boundary.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import names
from stratlab.cli.control import start_cycle
from stratlab.config import Settings
from stratlab.models.optimization import (
    ApplyReviewInput,
    BenchmarkTask,
    ExperimentPlan,
    ExperimentRecord,
    FinishExperimentInput,
    OptimizationInput,
    RecordTaskInput,
    RegressionRunInput,
    RegressionRunResult,
    ReviewOutcome,
    ReviewStatus,
    TaskResult,
)
from stratlab.models.paper import (
    MarketStep,
    MarketStepInput,
    PaperOpened,
    PaperOpenInput,
    PaperSummary,
    StatusInput,
)
from stratlab.models.research import ResearchCycleInput
from tests.fixtures.scripted_activities import Script, scripted_activities
from workers.pools import WORKFLOWS
from workflows.constants import (
    SA_OUTCOME,
    SA_PHASE,
    SA_SYMBOLS,
    task_queue_for,
)

SPEC = {"name": "sma cross", "kind": "rules", "entry": "close > 1", "exit": "close < 1"}

INVALID: list[tuple[str, Any, list[str]]] = [
    ("ResearchCycleWorkflow", {"kind": "nonsense"}, ["kind", "'nonsense'"]),
    ("ResearchCycleWorkflow", {"max_iterations": 0}, ["max_iterations", "greater than"]),
    ("ResearchCycleWorkflow", {"symbl": "nasdaq"}, ["symbl: unknown field"]),
    ("ResearchCycleWorkflow", {"max_iterations": "many"}, ["max_iterations", "integer"]),
    ("ResearchCycleWorkflow", {"period": {"strat": "2004-01-01"}}, ["period.strat: unknown"]),
    ("ResearchCycleWorkflow", "sp500", ["valid dictionary"]),
    ("EvaluateStrategyWorkflow", {}, ["needs a spec"]),
    ("EvaluateStrategyWorkflow", {"spec": {**SPEC, "entyr": "x"}}, ["spec.entyr: unknown"]),
    ("EvaluateStrategyWorkflow", {"spec": {**SPEC, "kind": "nonsense"}}, ["spec.kind"]),
    ("RegressionRunWorkflow", {}, ["prompt_id: Field required"]),
    ("RegressionRunWorkflow", {"prompt_id": "p", "rollouts": 0}, ["rollouts"]),
    ("RegressionRunWorkflow", {"prompt_id": "p", "tasks": ["t"]}, ["tasks: unknown field"]),
    ("OptimizationGenerationWorkflow", {"role": "nonsense"}, ["role", "'designer'"]),
    ("OptimizationGenerationWorkflow", {"population": 1}, ["population"]),
    ("OptimizationGenerationWorkflow", {"generatons": 2}, ["generatons: unknown field"]),
    ("PromptReviewWorkflow", {}, ["prompt_id: Field required"]),
    ("PromptReviewWorkflow", {"prompt_id": "p", "timeout_days": 0}, ["timeout_days"]),
    ("PaperTradingWorkflow", {"symbol": "sp500"}, ["symbol: unknown field"]),
    ("PaperTradingWorkflow", {"symbols": []}, ["symbols"]),
    ("PaperTradingWorkflow", {"speed_seconds": -1}, ["speed_seconds"]),
    ("PaperTradingWorkflow", {"guardrails": {"allow_shorts": True}}, ["guardrails.allow_shorts"]),
]


def new_prefix() -> str:
    return f"inputs{uuid.uuid4().hex[:8]}-"


@asynccontextmanager
async def lab_workers(
    client: Client, prefix: str, acts: Mapping[str, Sequence[Any]] | None = None
) -> AsyncIterator[str]:
    """Every workflow on the orchestrator queue of ``prefix``, ``acts`` on their pools;
    yields the orchestrator queue."""
    acts = acts or {}
    async with AsyncExitStack() as stack:
        for pool in {"orchestrator", *acts}:
            worker = Worker(
                client,
                task_queue=task_queue_for(pool, prefix),
                workflows=WORKFLOWS if pool == "orchestrator" else [],
                activities=list(acts.get(pool, [])),
            )
            await stack.enter_async_context(worker)
        yield task_queue_for("orchestrator", prefix)


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    """The run's failure, which must come within 30 s, as the application error it is."""
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=30)
    cause = failed.value.cause
    while not isinstance(cause, ApplicationError) and cause.__cause__ is not None:
        cause = cause.__cause__  # type: ignore[assignment]
    assert isinstance(cause, ApplicationError), failed.value
    return cause


async def ending(handle: WorkflowHandle[Any, Any]) -> tuple[str | None, str | None]:
    attributes = (await handle.describe()).typed_search_attributes
    return attributes.get(SA_OUTCOME), attributes.get(SA_PHASE)


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


@pytest.mark.parametrize(
    ("workflow_type", "payload", "words"),
    INVALID,
    ids=[f"{w}-{p}" for w, p, _ in INVALID],
)
async def test_invalid_input_fails_the_run_at_once_with_the_reason(
    temporal_client: Client, workflow_type: str, payload: Any, words: list[str]
) -> None:
    async with lab_workers(temporal_client, new_prefix()) as queue:
        started = time.monotonic()
        handle = await temporal_client.start_workflow(
            workflow_type, payload, id=f"bad-{uuid.uuid4()}", task_queue=queue
        )
        error = await failure_of(handle)
        assert time.monotonic() - started < 30
        assert error.type == "InvalidInput" and error.non_retryable
        for word in words:
            assert word in error.message, error.message
        assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
        assert await ending(handle) == ("invalid_input", "failed")
        history = await handle.fetch_history()
        assert not any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events
        )


async def test_more_than_one_input_is_refused(temporal_client: Client) -> None:
    async with lab_workers(temporal_client, new_prefix()) as queue:
        handle = await temporal_client.start_workflow(
            "ResearchCycleWorkflow", args=[{}, {}], id=f"two-{uuid.uuid4()}", task_queue=queue
        )
        error = await failure_of(handle)
    assert error.type == "InvalidInput" and "takes one input" in error.message


async def test_an_empty_research_input_runs_a_cycle_and_says_what_it_is(
    temporal_client: Client, tmp_path: Path
) -> None:
    prefix = new_prefix()
    acts = scripted_activities(Script(verdicts=["accept"] * 3))
    async with lab_workers(temporal_client, prefix, acts) as queue:
        # `{}`, and no input at all, are both the defaults.
        inputs: list[list[Any]] = [[{}], []]
        for args in inputs:
            handle = await temporal_client.start_workflow(
                "ResearchCycleWorkflow", args=args, id=f"empty-{uuid.uuid4()}", task_queue=queue
            )
            result = await asyncio.wait_for(handle.result(), timeout=60)
            assert result["outcome"] == "success", result
            assert await ending(handle) == ("success", "done")

        # Started the lab's way: the UI says what the run is and what each step did.
        settings = Settings(home=tmp_path, task_queue_prefix=prefix)
        started = await start_cycle(
            temporal_client, settings, ResearchCycleInput(symbol="nasdaq", kind="rules")
        )
        await asyncio.wait_for(started.result(), timeout=60)
    described = await started.describe()
    assert await described.static_summary() == "research cycle: rules on nasdaq (trigger manual)"
    assert "up to 3 design rounds" in (await described.static_details() or "")
    summaries = [
        pydantic_data_converter.payload_converter.from_payload(e.user_metadata.summary, str)
        for e in (await started.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert summaries[0].startswith("open session on nasdaq")
    assert "design iteration 1: rules on nasdaq" in summaries
    assert any(s.startswith("backtest s1") for s in summaries)
    assert summaries[-1] == "record outcome success"


def paper_activities(opened: list[PaperOpenInput]) -> dict[str, list[Any]]:
    """A live feed that never has a new bar: the strategy waits until it is stopped."""

    @activity.defn(name=names.PAPER_OPEN)
    async def paper_open(inp: PaperOpenInput) -> PaperOpened:
        opened.append(inp)
        return PaperOpened(strategy_id=inp.strategy_id, prompt_id="p-c", initial_capital=1e5)

    @activity.defn(name=names.PAPER_STATUS)
    async def paper_status(inp: StatusInput) -> None:
        return None

    @activity.defn(name=names.PAPER_OBSERVE)
    async def paper_observe(inp: MarketStepInput) -> MarketStep:
        return MarketStep(waiting="no new bar yet")

    return {"orchestrator": [paper_open, paper_status], "compute": [paper_observe]}


async def paper_summary_when(handle: WorkflowHandle[Any, Any], check: Any) -> PaperSummary:
    deadline = time.monotonic() + 30
    while True:
        summary = await handle.query("summary", result_type=PaperSummary)
        if check(summary):
            return summary
        assert time.monotonic() < deadline, summary
        await asyncio.sleep(0.1)


async def test_paper_signals_take_their_documented_payloads_and_show_unusable_ones(
    temporal_client: Client,
) -> None:
    opened: list[PaperOpenInput] = []
    async with lab_workers(temporal_client, new_prefix(), paper_activities(opened)) as queue:
        handle = await temporal_client.start_workflow(
            "PaperTradingWorkflow",
            {"symbols": ["sp500", "nasdaq"]},
            id=f"paper-inputs-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        await paper_summary_when(handle, lambda s: s.waiting == "no new bar yet")
        # Unusable payloads change nothing and are shown, not only logged.
        await handle.signal("stop", {"reson": "typo"})
        await handle.signal("pause", 42)
        shown = await paper_summary_when(handle, lambda s: len(s.ignored_signals) == 2)
        assert shown.status == "running"
        assert "stop: reson: unknown field" in shown.ignored_signals[0]
        assert shown.ignored_signals[1].startswith("pause: ")
        details = await current_details(handle)
        assert "ignored signal stop: reson: unknown field" in details, details
        # The documented shapes: no payload, {} or {"reason": ...}.
        await handle.signal("pause")
        await paper_summary_when(handle, lambda s: s.status == "paused")
        await handle.signal("resume", {"reason": "back to work"})
        await paper_summary_when(handle, lambda s: s.status == "running")
        await handle.signal("stop", {"reason": "enough for today"})
        result = PaperSummary.model_validate(await asyncio.wait_for(handle.result(), 30))
    assert result.finished_reason == "enough for today" and result.status == "stopped"
    assert opened[0].settings.symbols == ["sp500", "nasdaq"]  # `{}`'s defaults, but two symbols
    assert await ending(handle) == ("stopped", "paper_stopped")
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(SA_SYMBOLS) == ["sp500", "nasdaq"]


async def test_an_empty_paper_input_runs_until_stopped_by_a_bare_string(
    temporal_client: Client,
) -> None:
    opened: list[PaperOpenInput] = []
    async with lab_workers(temporal_client, new_prefix(), paper_activities(opened)) as queue:
        handle = await temporal_client.start_workflow(
            "PaperTradingWorkflow", {}, id=f"paper-empty-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        await paper_summary_when(handle, lambda s: s.waiting != "")
        await handle.signal("stop", "done")
        result = await asyncio.wait_for(handle.result(), 30)
    assert result["finished_reason"] == "done"
    assert opened[0].settings.symbols == ["sp500"] and opened[0].settings.mode == "live"


async def test_review_decide_takes_its_payloads_and_shows_unusable_ones(
    temporal_client: Client,
) -> None:
    applied: list[ApplyReviewInput] = []

    @activity.defn(name=names.APPLY_REVIEW)
    async def apply_review(inp: ApplyReviewInput) -> ReviewOutcome:
        applied.append(inp)
        return ReviewOutcome(
            prompt_id=inp.prompt_id, decision=inp.decision, reason=inp.reason, actor=inp.actor
        )

    acts = {"orchestrator": [apply_review]}
    async with lab_workers(temporal_client, new_prefix(), acts) as queue:
        handle = await temporal_client.start_workflow(
            "PromptReviewWorkflow",
            {"prompt_id": "p-cand", "generation": 3},
            id=f"review-{uuid.uuid4()}",
            task_queue=queue,
        )
        await handle.signal("decide", {"approve": "maybe"})
        deadline = time.monotonic() + 30
        while True:
            status = await handle.query("status", result_type=ReviewStatus)
            if status is not None and status.ignored_signals:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert status.decision is None and "approve" in status.ignored_signals[0]
        assert "Ignored signal decide: approve" in await current_details(handle)
        await handle.signal("decide", False)  # the bare shorthand
        outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome["decision"] == "rejected" and applied[0].actor == "human"
    assert await ending(handle) == ("rejected", "rejected")


async def test_a_failing_run_gets_an_outcome_and_a_bug_only_fails_the_task(
    temporal_client: Client,
) -> None:
    seen: list[OptimizationInput] = []
    answer: dict[str, Any] = {"raise": True}

    @activity.defn(name=names.BEGIN_GENERATION)
    async def begin_generation(inp: OptimizationInput) -> Any:
        seen.append(inp)
        if answer["raise"]:
            raise ApplicationError("scripted: no prod prompt", type="Scripted", non_retryable=True)
        return {"role": "designer"}  # not a GenerationPlan: the workflow cannot decode it

    async with lab_workers(
        temporal_client, new_prefix(), {"orchestrator": [begin_generation]}
    ) as q:
        handle = await temporal_client.start_workflow(
            "OptimizationGenerationWorkflow", {}, id=f"opt-{uuid.uuid4()}", task_queue=q
        )
        error = await failure_of(handle)
        assert error.type == "Scripted"  # `{}` was valid: the failure is the activity's
        assert seen[0].role == "designer" and seen[0].population == 16
        assert await ending(handle) == ("error", "failed")
        assert "no prod prompt" in await current_details(handle)

        # A bug (here, an answer the workflow cannot decode) fails the workflow task, which
        # Temporal retries: the run stays Running for a fixed worker to resume.
        answer["raise"] = False
        buggy = await temporal_client.start_workflow(
            "OptimizationGenerationWorkflow", {}, id=f"opt-bug-{uuid.uuid4()}", task_queue=q
        )
        deadline = time.monotonic() + 30
        while not any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            for e in (await buggy.fetch_history()).events
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert (await buggy.describe()).status == WorkflowExecutionStatus.RUNNING
        await buggy.terminate(reason="test over")


async def test_a_regression_run_labels_its_cycles_and_records_its_outcome(
    temporal_client: Client,
) -> None:
    acts = scripted_activities(Script())
    task = BenchmarkTask(
        task_id="t-boom",
        symbol="sp500",
        kind="rules",
        start=date(2003, 1, 1),
        end=date(2007, 12, 31),
        regime="boom",
        objective="risk-adjusted",
    )

    @activity.defn(name=names.BEGIN_EXPERIMENT)
    async def begin(inp: RegressionRunInput) -> ExperimentPlan:
        record = ExperimentRecord(experiment_id=inp.experiment_id, prompt_id=inp.prompt_id)
        return ExperimentPlan(experiment=record, tasks=[task])

    @activity.defn(name=names.RECORD_TASK_RESULT)
    async def record(inp: RecordTaskInput) -> TaskResult:
        return TaskResult(
            experiment_id=inp.experiment_id,
            task_id=inp.task_id,
            prompt_id=inp.prompt_id,
            session_id=inp.session_id,
            passed=True,
            outcome=inp.cycle_outcome,
        )

    @activity.defn(name=names.FINISH_EXPERIMENT)
    async def finish(inp: FinishExperimentInput) -> RegressionRunResult:
        return RegressionRunResult(
            experiment_id=inp.experiment_id, prompt_id="p-d", status="completed"
        )

    acts["orchestrator"] += [begin, record, finish]
    async with lab_workers(temporal_client, new_prefix(), acts) as queue:
        handle = await temporal_client.start_workflow(
            "RegressionRunWorkflow",
            {"prompt_id": "p-d", "task_ids": ["t-boom"]},
            id=f"regression-{uuid.uuid4()}",
            task_queue=queue,
        )
        result = await asyncio.wait_for(handle.result(), 60)
        assert "**1/1** cycles done" in (await current_details(handle))
        children = [
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in (await handle.fetch_history()).events
            if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        ]
    assert result["status"] == "completed"
    assert await ending(handle) == ("completed", "done")
    (child_id,) = children
    child = await temporal_client.get_workflow_handle(child_id).describe()
    assert await child.static_summary() == "benchmark t-boom #1: designer prompt p-d on sp500"
    assert "2003-01-01 to 2007-12-31" in (await child.static_details() or "")
