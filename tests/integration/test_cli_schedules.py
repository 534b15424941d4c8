"""``stratlab schedule ...`` as a user runs it: every lab schedule listed, created, changed
(saying what changed), paused, resumed, triggered and deleted, against the test's Temporal
server."""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from typing import Any

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
)
from temporalio.service import RPCError

from tests.fixtures.cli import assert_one_line_error, run_cli

NIGHTLY = "stratlab-nightly-optimization-designer"
RESEARCH = "stratlab-research-trigger"


@pytest.fixture
async def clean_schedules(temporal_client: Client) -> Any:
    """Schedule ids are global on the shared server: none before, none after."""

    async def delete_all() -> None:
        for sid in (NIGHTLY, RESEARCH):
            with suppress(RPCError):
                await temporal_client.get_schedule_handle(sid).delete()

    await delete_all()
    yield
    await delete_all()


async def _hour(client: Client) -> int:
    described = await client.get_schedule_handle(NIGHTLY).describe()
    return described.schedule.spec.calendars[0].hour[0].start


async def test_schedules_from_creation_to_deletion(
    lab: Any, temporal_client: Client, clean_schedules: None
) -> None:
    async def cli(*args: str) -> Any:
        return await run_cli(lab, temporal_client, "schedule", *args)

    empty = await cli("list", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == [], empty.stderr

    created = await cli("nightly", "--hour", "3")
    assert created.returncode == 0 and "created" in created.stdout, created.stderr
    assert await _hour(temporal_client) == 3
    moved = await cli("nightly", "--hour", "4")
    assert moved.returncode == 0, moved.stderr
    assert "updated: hour 03:00 → 04:00 UTC" in moved.stdout
    assert await _hour(temporal_client) == 4
    kept = await cli("nightly", "--population", "8", "--json")
    assert json.loads(kept.stdout) == {
        "id": NIGHTLY, "state": "updated", "changes": ["population 16 → 8"],
    }  # fmt: skip
    assert await _hour(temporal_client) == 4  # no --hour: the hour stays
    same = await cli("nightly", "--hour", "4")
    assert "unchanged" in same.stdout

    research = await cli("research", "--every", "10m")
    assert research.returncode == 0 and "created" in research.stdout, research.stderr

    paused = await cli("pause", "research", "--reason", "lunch")
    assert paused.returncode == 0, paused.stderr
    state = (await temporal_client.get_schedule_handle(RESEARCH).describe()).schedule.state
    assert state.paused and state.note == "lunch"
    listed = {s["id"]: s for s in json.loads((await cli("list", "--json")).stdout)}
    assert set(listed) == {NIGHTLY, RESEARCH}
    assert listed[RESEARCH]["paused"] and listed[RESEARCH]["when"] == "every 10m"
    assert listed[NIGHTLY]["when"] == "daily 04:00 UTC"
    assert listed[NIGHTLY]["input"]["population"] == 8
    table = await cli("list")
    assert "research-trigger" in table.stdout and "paused" in table.stdout
    resumed = await cli("resume", "research-trigger")
    assert resumed.returncode == 0, resumed.stderr
    handle = temporal_client.get_schedule_handle(RESEARCH)
    assert not (await handle.describe()).schedule.state.paused

    updated = await cli("update", "nightly", "--hour", "5")
    assert updated.returncode == 0 and "hour 04:00 → 05:00" in updated.stdout, updated.stderr
    described = await temporal_client.get_schedule_handle(NIGHTLY).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "OptimizationGenerationWorkflow"
    assert_one_line_error(await cli("update", "research", "--hour", "3"), "--every")
    assert_one_line_error(await cli("update", "nightly"), "nothing to change")
    assert_one_line_error(await cli("pause", "nope"), "no lab schedule")
    assert_one_line_error(await cli("pause", "s"), "ambiguous")

    triggered = await cli("trigger", "research")
    assert triggered.returncode == 0 and "triggered" in triggered.stdout, triggered.stderr
    for _ in range(50):
        if (await handle.describe()).info.num_actions >= 1:
            break
        await asyncio.sleep(0.2)
    assert (await handle.describe()).info.num_actions >= 1

    deleted = await cli("delete", "nightly-optimization-designer")
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(RPCError):
        await temporal_client.get_schedule_handle(NIGHTLY).describe()
    assert [s["id"] for s in json.loads((await cli("list", "--json")).stdout)] == [RESEARCH]


async def _labels(client: Client, schedule_id: str) -> tuple[str, str]:
    """The static summary and details a schedule's runs start with (a described schedule
    carries them as payloads)."""
    action = (await client.get_schedule_handle(schedule_id).describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.static_summary is not None and action.static_details is not None
    summary, details = await client.data_converter.decode(
        [action.static_summary, action.static_details]  # type: ignore[list-item]
    )
    return summary, details


async def test_scheduled_runs_say_what_they_are_like_manually_started_ones(
    lab: Any, temporal_client: Client, clean_schedules: None
) -> None:
    async def cli(*args: str) -> Any:
        done = await run_cli(lab, temporal_client, "schedule", *args)
        assert done.returncode == 0, done.stderr
        return done

    await cli("nightly", "--hour", "3")
    summary, details = await _labels(temporal_client, NIGHTLY)
    assert summary == "nightly: optimize designer prompts: generation next"
    assert "population 16" in details and f"{NIGHTLY}, daily 03:00 UTC" in details
    await cli("nightly", "--hour", "4", "--population", "8")
    summary, details = await _labels(temporal_client, NIGHTLY)
    assert "population 8" in details and "daily 04:00 UTC" in details

    await cli("research", "--every", "10m")
    summary, details = await _labels(temporal_client, RESEARCH)
    assert summary == "research cycle: rules or ml on sp500 (trigger schedule)"
    assert f"{RESEARCH}, every 10m" in details
    await cli("update", "research", "--every", "15m")
    assert f"{RESEARCH}, every 15m" in (await _labels(temporal_client, RESEARCH))[1]

    # A run the schedule starts carries them, as a cycle started by `stratlab trigger` does.
    await cli("trigger", "research")
    handle = temporal_client.get_schedule_handle(RESEARCH)
    for _ in range(50):
        recent = (await handle.describe()).info.recent_actions
        if recent:
            break
        await asyncio.sleep(0.2)
    assert recent, "the triggered run did not start"
    started = recent[-1].action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    run = await temporal_client.get_workflow_handle(started.workflow_id).describe()
    assert await run.static_summary() == summary
    assert f"{RESEARCH}, every 15m" in (await run.static_details() or "")
