"""The random-search baseline end to end: ``"search": "random"`` runs a generation on
real Temporal and Postgres with the same operators and budget as NSGA-II, and records it
the same way, marked as the baseline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from optimizer.operators import MUTATIONS, OPERATORS
from stratlab.evolution.verdicts import measured_cycles
from stratlab.models.optimization import (
    GenerationResult,
    OptimizationInput,
    OptimizationProgress,
)
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from workflows.constants import OPTIMIZE_WORKFLOW_ID
from workflows.optimization import OptimizationGenerationWorkflow

pytestmark = pytest.mark.slow

TASKS = ["sp500-late-boom-risk-adjusted", "noise-a-2004-2009-rules-no-discovery"]


async def test_a_random_search_generation_is_recorded_like_nsga2(lab: Any) -> None:
    generation = await GenerationRepo(lab.db).next_generation("designer")
    inp = OptimizationInput(
        search="random",
        generation=generation,
        population=4,
        meta_mutations=1,
        seed=5,
        task_ids=TASKS,
    )
    handle = await lab.client.start_workflow(
        OptimizationGenerationWorkflow.run,
        inp,
        id=OPTIMIZE_WORKFLOW_ID.format(role="designer", generation=generation),
        task_queue=lab.settings.task_queue("orchestrator"),
    )
    result = await asyncio.wait_for(handle.result(), timeout=600)
    assert isinstance(result, GenerationResult) and result.search == "random"

    record = await GenerationRepo(lab.db).get("designer", generation)
    assert record is not None and record.search == "random"
    # The same budget: `population` children bred by the same operators.
    assert len(record.offspring) == inp.population
    for child in record.offspring:
        first, *rest = child.operator.split("+")
        assert first in {*OPERATORS, "llm_mutation"} and all(r in MUTATIONS for r in rest)
    # Every offspring has its verdict; survivors are drawn from those measured.
    assert len(record.verdicts) == len(record.offspring)
    assert 0 < len(record.population) <= inp.population
    assert record.archive and record.archive_hypervolume > 0
    # The count the record keeps is the cycles its runs measured, as the live view counts.
    live = await handle.query("progress", result_type=OptimizationProgress)
    assert live is not None
    assert record.evaluations == await measured_cycles(ExperimentRepo(lab.db), live.experiment_ids)

    # Its cost is every call made for it: the cycles' and the mutator's and sanity checks'
    # (this test's database holds no other generation's calls).
    async with lab.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT COALESCE(sum(cost_usd), 0)::float AS usd FROM agent_actions"
                " WHERE role IN ('mutator', 'sanity')"
            )
        ).fetchone()
    assert row is not None and row["usd"] > 0
    assert record.llm_calls_cost_usd == pytest.approx(row["usd"], abs=1e-6)
    runs = [await ExperimentRepo(lab.db).get(e) for e in dict.fromkeys(live.experiment_ids)]
    cycles = sum(r.fitness.cost_usd for r in runs if r is not None and r.fitness)
    assert record.cost_usd == pytest.approx(cycles + row["usd"], abs=1e-5)
