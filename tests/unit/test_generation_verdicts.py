"""Why an offspring is not a candidate, and how many cycles a generation measured.

Every offspring of a recorded generation carries a verdict naming each candidate rule it
failed; the generation's ``evaluations`` counts the cycles its regression runs measured
the way the live ``optimize`` table counts them (a reused run adds none, the baseline
counts), so the live count ends where the record starts."""

from __future__ import annotations

import pytest

from stratlab.evolution.verdicts import Measured, measured_cycles, offspring_verdicts
from stratlab.models.optimization import (
    FITNESS_VERSION,
    Fitness,
    Individual,
    OffspringRecord,
    RegressionRunInput,
    TaskResult,
)
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from tests.fixtures.generations import (
    CONTROLS,
    TARGETS,
    experiment_service,
    generation_service,
    record_generation,
)

PROD = "11111111-0000-4000-8000-000000000000"
KID = "22222222-0000-4000-8000-000000000001"
RIVAL = "33333333-0000-4000-8000-000000000002"


def fit(score: float, tokens: float, latency: float = 500.0) -> Fitness:
    return Fitness(score=score, mean_tokens=tokens, mean_latency_ms=latency, tasks=4,
                   version=FITNESS_VERSION)  # fmt: skip


TARGETS5 = ["t1", "t2", "t3", "t4", "t5"]


def measured(**fields: object) -> Measured:
    """Prod and two offspring on five targets and one control. Prod scores 0.1 on the
    targets and 0.8 on the control; KID beats prod on every target (p = 1/32) and keeps
    the control, RIVAL too, with the same score in fewer tokens."""
    base: dict[str, object] = {
        "prod_prompt_id": PROD,
        "parent_ids": [PROD],
        "front": [PROD, RIVAL],
        "evaluated": [
            Individual(prompt_id=PROD, fitness=fit(0.3, 1000), origin="prod"),
            Individual(prompt_id=KID, fitness=fit(0.5, 2000), origin="offspring"),
            Individual(prompt_id=RIVAL, fitness=fit(0.5, 900), origin="offspring"),
        ],
        "targets": TARGETS5,
        "controls": ["c1"],
        "prod_scores": {**dict.fromkeys(TARGETS5, 0.1), "c1": 0.8},
        "scores": {
            KID: {"t1": 0.5, "t2": 0.3, "t3": 0.2, "t4": 0.2, "t5": 0.2, "c1": 0.8},
            RIVAL: {"t1": 0.5, "t2": 0.3, "t3": 0.2, "t4": 0.2, "t5": 0.2, "c1": 0.8},
        },
    }
    return Measured(**{**base, **fields})  # type: ignore[arg-type]


def kids(*ids: str) -> list[OffspringRecord]:
    return [OffspringRecord(prompt_id=i, operator="llm_mutation") for i in ids]


def test_an_offspring_that_beats_prod_but_is_dominated_says_by_whom_and_on_what() -> None:
    kid, rival = offspring_verdicts(kids(KID, RIVAL), measured())
    assert rival.candidate and rival.cause == "candidate"
    assert not kid.candidate and kid.cause == "dominated"
    assert kid.reason == "not on the Pareto front: dominated by offspring 33333333 on tokens"


def test_prod_is_named_when_prod_dominates() -> None:
    evaluated = [
        Individual(prompt_id=PROD, fitness=fit(0.6, 800, 400), origin="prod"),
        Individual(prompt_id=KID, fitness=fit(0.5, 2000), origin="offspring"),
    ]
    (kid,) = offspring_verdicts(kids(KID), measured(evaluated=evaluated, front=[PROD]))
    assert kid.reason == "not on the Pareto front: dominated by prod on score, tokens and latency"


def test_every_failed_rule_is_named_the_first_is_the_cause() -> None:
    scores = {KID: {**dict.fromkeys(TARGETS5, 0.1), "c1": 0.2}}
    (kid,) = offspring_verdicts(kids(KID), measured(scores=scores))
    assert kid.cause == "dominated"
    assert "dominated by offspring 33333333" in kid.reason
    assert "no better than prod on the targets (mean score 0.100 vs 0.100)" in kid.reason
    assert "fails control task c1 (score 0.200 vs prod 0.800)" in kid.reason


def test_an_offspring_on_the_front_that_loses_a_control_names_the_control() -> None:
    scores = {**measured().scores, KID: {**dict.fromkeys(TARGETS5, 0.9), "c1": 0.7}}
    (kid,) = offspring_verdicts(kids(KID), measured(front=[PROD, KID, RIVAL], scores=scores))
    assert (kid.cause, kid.candidate) == ("loses_control", False)
    assert kid.reason == "fails control task c1 (score 0.700 vs prod 0.800)"


def test_one_lucky_target_does_not_make_a_candidate() -> None:
    # Far better on one target, equal on four: half of all sign assignments do as well.
    lucky = {**dict.fromkeys(TARGETS5, 0.1), "t1": 1.0, "c1": 0.8}
    front = [PROD, KID, RIVAL]
    (kid,) = offspring_verdicts(kids(KID), measured(front=front, scores={KID: lucky}))
    assert (kid.cause, kid.candidate) == ("not_significant_on_targets", False)
    assert kid.reason == (
        "better than prod on the targets (0.280 vs 0.100) but not significantly: "
        "p = 0.500 over 5 target(s), needs < 0.05"
    )
    # Four of four better is still short of significance; five of five is a candidate.
    four = measured(front=front, targets=TARGETS5[:4])
    assert offspring_verdicts(kids(KID), four)[0].cause == "not_significant_on_targets"
    assert offspring_verdicts(kids(KID), measured(front=front))[0].candidate


def test_an_offspring_significantly_worse_on_the_controls_is_no_candidate() -> None:
    controls = [f"c{i}" for i in range(1, 6)]
    prod = {**dict.fromkeys(TARGETS5, 0.1), **dict.fromkeys(controls, 0.8)}
    # Within the per-control tolerance on each, but worse on all five: p = 1/32.
    slipping = {**dict.fromkeys(TARGETS5, 0.5), **dict.fromkeys(controls, 0.78)}
    (kid,) = offspring_verdicts(
        kids(KID),
        measured(front=[PROD, KID], controls=controls, prod_scores=prod, scores={KID: slipping}),
    )
    assert (kid.cause, kid.candidate) == ("worse_on_controls", False)
    assert kid.reason == (
        "significantly worse than prod on the controls (mean score 0.780 vs 0.800, p = 0.031)"
    )


def test_without_targets_nothing_is_a_candidate_and_it_says_so() -> None:
    (rival,) = offspring_verdicts(kids(RIVAL), measured(targets=[]))
    assert rival.cause == "no_targets" and "prod fails none" in rival.reason


def test_offspring_that_were_not_judged_say_why() -> None:
    children = [
        OffspringRecord(operator="crossover", accepted=False, reason="sanity: unsafe"),
        OffspringRecord(prompt_id=PROD, operator="rephrase"),
        OffspringRecord(prompt_id="44444444-never-measured", operator="llm_mutation"),
        OffspringRecord(prompt_id=RIVAL, operator="crossover"),
        OffspringRecord(prompt_id=RIVAL, operator="crossover"),  # bred twice: one prompt
    ]
    stopped = measured(stopped_reason="the optimizer's daily budget ran out")
    verdicts = offspring_verdicts(children, stopped)
    assert [(v.prompt_id, v.cause) for v in verdicts] == [
        (None, "failed_checks"),
        (PROD, "same_as_parent"),
        ("44444444-never-measured", "not_measured"),
        (RIVAL, "candidate"),
    ]
    assert verdicts[0].reason == "failed the checks: sanity: unsafe"
    assert verdicts[0].operator == "crossover"
    assert verdicts[1].reason == "same text as prod: measured as a parent"
    assert verdicts[2].reason == "not measured: the optimizer's daily budget ran out"
    (no_prod,) = offspring_verdicts(kids(RIVAL), measured(prod_scores=None))
    assert no_prod.cause == "no_prod_run"


# --- recorded with the generation --------------------------------------------------------------


async def test_the_recorded_generation_says_why_each_offspring_is_not_a_candidate(
    db_pool: Pool,
) -> None:
    _, inp = await record_generation(db_pool)
    done = await generation_service(db_pool).record(inp)
    stored = await GenerationRepo(db_pool).get("designer", 0)
    assert stored is not None and stored.verdicts == done.verdicts
    by_id = {v.prompt_id: v for v in stored.verdicts}
    assert set(by_id) == {"kid-good", "kid-bad", "kid-same", "kid-survivor"}
    # kid-good beats prod on one target and ties on the other: not significant (and two
    # targets never could be: the least p-value is 1/4).
    assert [p for p, v in by_id.items() if v.candidate] == stored.candidates == []
    assert by_id["kid-good"].cause == "not_significant_on_targets"
    assert "p = 0.500 over 2 target(s)" in by_id["kid-good"].reason
    # kid-bad passes both targets, more than prod, and is still no candidate: it says why.
    # The first rule it fails is the cause; the lost control is named too.
    assert by_id["kid-bad"].cause == "not_significant_on_targets"
    assert f"fails control task {CONTROLS[1]} (score 0.020" in by_id["kid-bad"].reason
    assert by_id["kid-same"].cause == "not_better_on_targets"
    assert "no better than prod on the targets (mean score 0.100 vs 0.100)" in (
        by_id["kid-same"].reason
    )
    assert by_id["kid-survivor"].cause == "dominated"
    assert by_id["kid-survivor"].reason.startswith("not on the Pareto front")


async def result_rows(pool: Pool, experiment_id: str, prompt_id: str, outcomes: list[str]) -> None:
    await experiment_service(pool).begin(
        RegressionRunInput(prompt_id=prompt_id, task_ids=TARGETS + CONTROLS,
                           experiment_id=experiment_id, generation=0, reuse=False),
        workflow_id="wf",
    )  # fmt: skip
    for task_id, outcome in zip(TARGETS + CONTROLS, outcomes, strict=False):
        await ExperimentRepo(pool).record_result(
            TaskResult(experiment_id=experiment_id, task_id=task_id, prompt_id=prompt_id,
                       passed=False, outcome=outcome)  # type: ignore[arg-type]
        )  # fmt: skip


async def test_evaluations_count_what_every_run_measured_once_as_the_live_table_does(
    db_pool: Pool,
) -> None:
    prod_id, inp = await record_generation(db_pool)
    # The baseline on the suite: 3 cycles measured, 1 skipped for budget (not measured).
    await result_rows(db_pool, "baseline", prod_id, ["success", "success", "success",
                                                     "skipped_budget"])  # fmt: skip
    started = [
        "baseline",
        *(m.experiment_id for m in inp.evaluated if m.experiment_id),  # 5 runs x 4 tasks
        "a-run-that-reused-an-earlier-one",  # no row, no results of its own
        "baseline",  # a run that reused one of this generation's counts once
    ]
    done = await generation_service(db_pool).record(
        inp.model_copy(update={"experiment_ids": started})
    )
    repo = ExperimentRepo(db_pool)
    live = await measured_cycles(repo, started)
    assert done.evaluations == live == 3 + 5 * 4
    stored = await GenerationRepo(db_pool).get("designer", 0)
    assert stored is not None and stored.evaluations == live
    assert stored.cost_usd == pytest.approx(0.2)  # five runs of 4 x $0.01; the baseline $0


async def test_a_generation_recorded_without_run_ids_counts_as_before(db_pool: Pool) -> None:
    _, inp = await record_generation(db_pool)
    assert inp.experiment_ids == []
    done = await generation_service(db_pool).record(inp)
    assert done.evaluations == 16  # four offspring runs of generation 0 on 4 tasks
