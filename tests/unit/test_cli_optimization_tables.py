"""The optimizer's tables in the CLI show the graded score beside the success rate, and fit
an 80-column terminal without cutting a number short."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

import pytest
from rich.console import Console
from rich.table import Table

from optimizer.breeding import derive_seed
from optimizer.selection import nondominated_sort
from stratlab.cli.evolution import progress_table, summary_table
from stratlab.cli.generations_view import (
    ParetoPoint,
    generations_table,
    pareto_table,
    rank_points,
    verdict_tally,
)
from stratlab.cli.prompts_view import experiments_table, fitness_cells, prompts_table
from stratlab.models.optimization import (
    FITNESS_VERSION,
    ExperimentRecord,
    Fitness,
    GenerationRecord,
    GenerationResult,
    NotCandidateCause,
    OffspringVerdict,
    OptimizationInput,
    OptimizationProgress,
    TaskResult,
)
from stratlab.models.prompts import PromptRecord

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IDS = ["0b3c5e7a-1111-4000-8000-000000000001", "9f1d2c3b-2222-4000-8000-000000000002"]
# Wide values: five-digit tokens, two-minute latencies, a long operator and status.
FIT = Fitness(score=0.2134, success_rate=0.05, mean_tokens=12_345, mean_latency_ms=123_456,
              tasks=40, passed=2, cost_usd=12.3456, version=FITNESS_VERSION)  # fmt: skip
GEN = GenerationRecord(
    role="designer", generation=12, seed=derive_seed(3, 12), hypervolume=0.1234,
    archive_hypervolume=0.2345, best_score=0.3125, best_success_rate=0.05, front=IDS,
    evaluations=1200, cost_usd=12.34, candidates=IDS, finished_at=NOW, search="random",
)  # fmt: skip
RESULT = GenerationResult(
    role="designer", generation=3, seed=derive_seed(3, 3), hypervolume=0.1,
    archive_hypervolume=0.2, best_success_rate=0.05, best_score=0.3125, front=IDS,
    candidates=IDS[:1], evaluations=1200, search="random",
)  # fmt: skip


class _Results:
    """Ten results per run, one of them a cycle skipped for budget (not measured)."""

    async def results(self, experiment_id: str) -> list[TaskResult]:
        done = TaskResult(experiment_id=experiment_id, task_id="t", prompt_id="p", passed=False)
        skipped = done.model_copy(update={"outcome": "skipped_budget"})
        return [done] * 9 + [skipped]


async def _tables() -> dict[str, Table]:
    points = [
        ParetoPoint(IDS[0], "prod", fitness=FIT, rank=0, prod=True),
        ParetoPoint(IDS[1], "offspring", "crossover+rephrase", [IDS[0]], FIT, rank=1,
                    candidate=True),
        ParetoPoint("c" * 36, "survivor", "llm_mutation"),
    ]  # fmt: skip
    prompt = PromptRecord.model_validate(
        {"id": IDS[0], "role": "designer", "version": "1.13.12", "content": "x",
         "content_hash": "h", "tag": "experimental", "generation": 12, "created_at": NOW}
    )  # fmt: skip
    experiment = ExperimentRecord(experiment_id=IDS[1], prompt_id=IDS[0], task_ids=["t"] * 40,
                                  rollouts=3, status="stopped_budget", fitness=FIT)  # fmt: skip
    progress = OptimizationProgress(role="designer", generation=4, phase="evaluating",
                                    experiment_ids=["e"], planned_evaluations=1234)  # fmt: skip
    inp = OptimizationInput(generations=5, generation=3)
    return {
        "pareto": pareto_table(GEN, points),
        "generations": generations_table([GEN]),
        "prompts": prompts_table([prompt], {IDS[0]: experiment}),
        "experiments": experiments_table([experiment]),
        "summary": summary_table([RESULT]),
        "progress": await progress_table(progress, _Results(), inp, {3: RESULT}),  # type: ignore[arg-type]
    }


def _render(table: Table) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize(
    "name", ["pareto", "generations", "prompts", "experiments", "summary", "progress"]
)
async def test_each_table_fits_80_columns_and_shows_score_and_success(name: str) -> None:
    text = _render((await _tables())[name])
    assert max(len(line) for line in text.splitlines()) <= 80
    # A cut cell ends in "…" (the progress table's pending cells are a lone "…").
    assert re.search(r"\S…", text) is None, f"a cell was cut short:\n{text}"
    assert "score" in text and "success" in text
    shown = {"pareto": "0.213", "prompts": "0.213", "experiments": "0.213"}.get(name, "0.312")
    assert shown in text and "5%" in text


def test_a_fitness_from_before_scores_shows_no_score() -> None:
    old = Fitness(success_rate=0.5, mean_tokens=1000, mean_latency_ms=800)
    assert fitness_cells(old) == ("—", "50%", "1,000", "0.8 s")
    assert fitness_cells(FIT)[0] == "0.213"


def test_the_front_shown_is_the_one_nsga_ii_climbs_the_score_not_the_success_rate() -> None:
    higher_score = Fitness(score=0.4, success_rate=0.0, mean_tokens=1000, mean_latency_ms=800)
    more_passes = Fitness(score=0.1, success_rate=0.5, mean_tokens=1000, mean_latency_ms=800)
    assert higher_score.dominates(more_passes) and not more_passes.dominates(higher_score)
    points = [ParetoPoint("more-passes", "survivor", fitness=more_passes),
              ParetoPoint("higher-score", "offspring", fitness=higher_score)]  # fmt: skip
    rank_points(points)
    assert [p.rank for p in points] == [1, 0]


def _fit(score: float, tokens: float, latency: float) -> Fitness:
    return Fitness(score=score, mean_tokens=tokens, mean_latency_ms=latency)


def test_the_fronts_shown_are_the_optimizers_fronts() -> None:
    """`stratlab pareto` ranks by the selection module's non-dominated sort: a trade-off
    front, a copy of a front point beside it, what only the front beats, one unmeasured."""
    fitness = {
        "cheap": _fit(0.2, 1_000, 900),
        "cheap-copy": _fit(0.2, 1_000, 900),
        "best": _fit(0.6, 4_000, 2_000),
        "fast": _fit(0.3, 3_000, 500),
        "beaten-by-cheap": _fit(0.2, 1_500, 900),
        "beaten-by-best": _fit(0.5, 4_000, 2_500),
        "beaten-by-all": _fit(0.1, 5_000, 3_000),
    }
    points = [ParetoPoint(key, "survivor", fitness=f) for key, f in fitness.items()]
    points.append(ParetoPoint("unmeasured", "offspring"))
    rank_points(points)

    fronts = nondominated_sort({key: f.objectives() for key, f in fitness.items()})
    shown = {p.prompt_id: p.rank for p in points}
    assert [sorted(k for k, r in shown.items() if r == i) for i in range(len(fronts))] == fronts
    assert fronts[0] == ["best", "cheap", "cheap-copy", "fast"]
    assert shown["beaten-by-all"] == 2 and shown["unmeasured"] is None


async def test_the_live_count_is_cycles_measured_as_the_record_counts_them() -> None:
    """Runs measured nine cycles each (a tenth skipped for budget); a run listed twice (a
    reuse within the generation) counts once, as ``GenerationService.record`` counts."""
    progress = OptimizationProgress(role="designer", generation=4, phase="evaluating",
                                    experiment_ids=["e1", "e2", "e1"],
                                    planned_evaluations=20)  # fmt: skip
    inp = OptimizationInput(generations=5, generation=4)
    text = _render(await progress_table(progress, _Results(), inp, {}))  # type: ignore[arg-type]
    assert "18 / 20" in text


def test_a_random_search_generation_says_so() -> None:
    assert "designer 12 (random)" in _render(generations_table([GEN]))
    nsga2 = GEN.model_copy(update={"search": "nsga2"})
    assert "(random)" not in _render(generations_table([nsga2]))
    assert "random search, the baseline" in _render(summary_table([RESULT]))


def test_every_cause_has_words_in_the_tally() -> None:
    causes = get_args(NotCandidateCause)
    verdicts = [OffspringVerdict(operator="add", cause=c, reason="r") for c in causes]
    tally = verdict_tally(verdicts)
    assert tally.startswith(f"{len(causes)}: ")
    # One part per cause: none is counted silently into the total only.
    assert len(tally.split(": ", 1)[1].split(", ")) == len(causes)
