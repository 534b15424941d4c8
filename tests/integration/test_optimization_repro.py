"""Prompt evolution is reproducible and stays inside its budget.

Two campaigns with the same seed, each in a fresh database, record the same generations:
the same offspring texts, the same fitness, the same survivors, the same hypervolume.
A generation that meets the optimizer's daily cap stops scheduling evaluations and says
why in its record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from stratlab.models.optimization import GenerationRecord, OptimizationInput
from stratlab.store.db import Pool, make_pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo
from tests.fixtures.postgres import create_database, database_url_for, drop_database
from tests.fixtures.temporal import Lab, lab_settings, terminate_open_workflows
from workers.pools import run_workers
from workflows.constants import OPTIMIZE_WORKFLOW_ID, POOLS
from workflows.optimization import OptimizationGenerationWorkflow

pytestmark = pytest.mark.slow

TASKS = [
    "nasdaq-gfc-crash-beat-buy-and-hold",
    "sp500-gfc-recovery-risk-adjusted",
    "nasdaq-late-boom-capital-preservation",
    "sp500-late-boom-risk-adjusted",
]
CAMPAIGN = OptimizationInput(generations=2, population=4, meta_mutations=2, seed=11, task_ids=TASKS)


@asynccontextmanager
async def fresh_lab(
    client: Client, server_url: str, template: str, home: Path, **overrides: Any
) -> AsyncIterator[Lab]:
    """A second lab beside the ``lab`` fixture: its own database cloned from the template
    (schema and default prompts only) and its own task queues."""
    name = f"stratlab_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name, template=template)
    url = database_url_for(server_url, name)
    db: Pool = make_pool(url, min_size=1, max_size=10)
    await db.open(wait=True)
    settings = lab_settings(url, home, **overrides)
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(POOLS, client, db, settings, stop))
    try:
        yield Lab(settings, client, db)
    finally:
        await terminate_open_workflows(client, settings)
        stop.set()
        await asyncio.wait_for(workers, timeout=60)
        await db.close()
        drop_database(server_url, name)


async def campaign(lab: Lab, inp: OptimizationInput) -> list[GenerationRecord]:
    handle = await lab.client.start_workflow(
        OptimizationGenerationWorkflow.run,
        inp,
        id=OPTIMIZE_WORKFLOW_ID.format(role=inp.role, generation=f"{uuid.uuid4().hex[:6]}"),
        task_queue=lab.settings.task_queue("orchestrator"),
    )
    await asyncio.wait_for(handle.result(), timeout=600)
    return sorted(await GenerationRepo(lab.db).list(role=inp.role), key=lambda g: g.generation)


async def comparable(lab: Lab, records: list[GenerationRecord]) -> list[dict[str, Any]]:
    """The records with prompt ids (fresh uuids in each database) replaced by content hashes."""
    prompts = PromptRepo(lab.db)

    async def key(prompt_id: str | None) -> str | None:
        found = await prompts.get(prompt_id) if prompt_id else None
        return found.content_hash if found else None

    out = []
    for g in records:
        out.append(
            {
                "generation": g.generation,
                "seed": g.seed,
                "tasks": g.task_ids,
                "hypervolume": g.hypervolume,
                "archive_hypervolume": g.archive_hypervolume,
                "best": g.best_success_rate,
                "best_score": g.best_score,
                "offspring": [
                    (o.content_hash, o.operator, o.accepted, o.reason) for o in g.offspring
                ],
                "survivors": sorted(
                    [(await key(i.prompt_id), i.fitness, i.rank) for i in g.population],
                    key=repr,
                ),
                "front": sorted([await key(p) for p in g.front], key=repr),
                "candidates": sorted([await key(p) for p in g.candidates], key=repr),
            }
        )
    return out


async def test_same_seed_same_generations(
    temporal_client: Client, postgres_url: str, postgres_template: str, tmp_path: Path
) -> None:
    runs = []
    for n in range(2):
        async with fresh_lab(
            temporal_client, postgres_url, postgres_template, tmp_path / str(n)
        ) as lab:
            runs.append(await comparable(lab, await campaign(lab, CAMPAIGN)))
    first, second = runs
    assert [g["generation"] for g in first] == [0, 1]
    assert first[0]["offspring"] and first[0]["survivors"]
    assert first == second


async def test_a_generation_stops_at_the_optimizer_budget(
    temporal_client: Client, postgres_url: str, postgres_template: str, tmp_path: Path
) -> None:
    # $0.12 after the $0.10 buffer: room for a few designer calls, not for the baseline.
    async with fresh_lab(
        temporal_client, postgres_url, postgres_template, tmp_path, optimizer_daily_budget_usd=0.22
    ) as lab:
        records = await campaign(
            lab, CAMPAIGN.model_copy(update={"generations": 3, "task_ids": []})
        )
        assert len(records) == 1, "a stopped generation does not continue the campaign"
        (record,) = records
        assert record.stopped_reason and "budget" in record.stopped_reason
        assert record.offspring == [] and record.candidates == []
        rows = await ExperimentRepo(lab.db).by_prompt(
            (await PromptRepo(lab.db).current_prod("designer")).id
        )
        assert rows and rows[-1].status == "stopped_budget"
        measured = await ExperimentRepo(lab.db).results(rows[-1].experiment_id)
        assert 0 < len([r for r in measured if r.outcome != "skipped_budget"]) < 37
