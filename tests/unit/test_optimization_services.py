"""Prompt evolution's store-side services: judging a task, aggregating fitness, summarising
failures, running an experiment and recording a generation, against a real Postgres."""

from __future__ import annotations

import re
from datetime import date

import pytest
from psycopg import sql

from optimizer.breeding import derive_seed
from stratlab.backtest.statistical_gate import statistical_gate as judge_statistically
from stratlab.evolution.experiments import (
    aggregate,
    judge,
    own_trials_gate,
)
from stratlab.evolution.generations import (
    _cause,
    failure_summary,
)
from stratlab.evolution.intervals import score_interval
from stratlab.evolution.suite import default_tasks, load_suite, task_set_hash
from stratlab.models.llm import LlmCallRecord
from stratlab.models.optimization import (
    FITNESS_VERSION,
    LLM_MUTATION,
    ApplyReviewInput,
    BenchmarkTask,
    CheckedChild,
    Criterion,
    FinishExperimentInput,
    Fitness,
    GenerationRecord,
    Individual,
    LoadParentsInput,
    OptimizationInput,
    ProposedChild,
    RecordGenerationInput,
    RecordTaskInput,
    RegisterInput,
    RegressionRunInput,
    SelectTasksInput,
    TaskResult,
    TaskVerdict,
)
from stratlab.models.optimizer_slice import OPTIMIZER_SYMBOLS
from stratlab.models.research import (
    BacktestMetrics,
    GateCheck,
    GateResult,
    IterationSummary,
    ResearchCycleResult,
    StatisticalGateThresholds,
    StrategySpec,
    TrainingReport,
    TrialLedger,
    TrialStats,
    WalkForwardReport,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.db import Pool, default_prompt_id, prompt_content_hash
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from tests.fixtures.generations import (
    PRESERVE,
    RISK,
    SUITE_IDS,
    add_prompt,
    experiment_service,
    generation_service,
    prod_designer,
    record_generation,
)
from workflows.regression import _judged_iteration

NOISE = "noise-a-2004-2009-rules-no-discovery"
OWN_IDS = sorted(t.task_id for t in default_tasks(load_suite().tasks))

GOOD = BacktestMetrics(sharpe=0.8, trades=12, max_drawdown=0.05, total_return=0.1, bars=250)
BAD = BacktestMetrics(sharpe=0.21, trades=2, max_drawdown=0.05, total_return=0.1, bars=250)


def statistical_gate(dsr: float, *, trades: float = 12) -> GateResult:
    """The statistical gate of an iteration whose walk-forward deflated Sharpe was ``dsr``."""
    return GateResult(
        gate="statistical",
        passed=dsr >= 0.95 and trades >= 10,
        checks=[
            GateCheck(name="min_trades", value=trades, threshold=10, op=">=", passed=trades >= 10),
            GateCheck(name="deflated_sharpe", value=dsr, threshold=0.95, op=">=",
                      passed=dsr >= 0.95),
            GateCheck(name="pbo", value=0.0, threshold=0.5, op="<=", passed=False,
                      status="not_run", detail="the grid has 4 combination(s)"),
        ],
    )  # fmt: skip


def noise_task() -> BenchmarkTask:
    return BenchmarkTask(
        task_id=NOISE,
        symbol="noise-a",
        kind="rules",
        start=date(2004, 1, 1),
        end=date(2009, 6, 30),
        regime="noise",
        objective="risk-adjusted",
        criteria=[Criterion(metric="sharpe", op=">=", value=0.5)],
    )


def risk_task() -> BenchmarkTask:
    return BenchmarkTask(
        task_id=RISK,
        symbol="sp500",
        kind="rules",
        start=date(2000, 1, 1),
        end=date(2004, 12, 31),
        regime="bust",
        objective="risk-adjusted",
        criteria=[
            Criterion(metric="sharpe", op=">=", value=0.5),
            Criterion(metric="trades", op=">=", value=3),
        ],
    )


def task_input(**kw: object) -> RecordTaskInput:
    fields: dict[str, object] = {"experiment_id": "e1", "task_id": RISK, "rollout": 1,
                                 "prompt_id": "p1", **kw}  # fmt: skip
    return RecordTaskInput.model_validate(fields)


def result(task_id: str, *, passed: bool, **kw: object) -> TaskResult:
    fields: dict[str, object] = {"experiment_id": "e1", "task_id": task_id, "prompt_id": "p1",
                                 "passed": passed, **kw}  # fmt: skip
    return TaskResult.model_validate(fields)


async def count(pool: Pool, table: str) -> int:
    query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return int(row["n"])


async def llm_call(pool: Pool, action_id: str, session_id: str, **kw: object) -> None:
    fields: dict[str, object] = {"action_id": action_id, "session_id": session_id,
                                 "role": "designer", "provider": "offline",
                                 "model": "offline-deterministic-v1", **kw}  # fmt: skip
    assert await ActionRepo(pool).record(LlmCallRecord.model_validate(fields))


# --- judge ---------------------------------------------------------------------------------


def test_designer_task_passes_when_the_cycle_succeeds_and_meets_every_criterion() -> None:
    inp = task_input(cycle_outcome="success", metrics=GOOD, statistical_gate=statistical_gate(0.97))
    assert judge(risk_task(), inp) == TaskVerdict(passed=True, reasons=[], score=0.97)


def test_a_discovery_task_scores_the_deflated_sharpe_times_the_share_of_criteria_met() -> None:
    # Not a discovery (DSR 0.6 < 0.95) but closer than nothing: graded, not 0.
    inp = task_input(cycle_outcome="failed_backtest_gate", metrics=GOOD,
                     statistical_gate=statistical_gate(0.6))  # fmt: skip
    verdict = judge(risk_task(), inp)
    assert not verdict.passed and verdict.score == pytest.approx(0.6)
    assert verdict.reasons[-1] == "statistical gate: deflated_sharpe too low (needs >= 0.95)"
    half = judge(risk_task(), inp.model_copy(update={"metrics": BAD.model_copy(
        update={"sharpe": 0.8})}))  # fmt: skip
    assert half.score == pytest.approx(0.6 * 0.5)  # sharpe met, trades 2 < 3 missed
    assert judge(risk_task(), task_input(cycle_outcome="failed_training_gate")).score == 0.0


def test_a_noise_task_passes_when_the_cycle_fails_and_scores_one_minus_the_dsr() -> None:
    rejected = task_input(task_id=NOISE, cycle_outcome="failed_backtest_gate", metrics=GOOD,
                          statistical_gate=statistical_gate(0.3))  # fmt: skip
    verdict = judge(noise_task(), rejected)
    assert verdict.passed and verdict.reasons == [] and verdict.score == pytest.approx(0.7)
    fooled = rejected.model_copy(
        update={"cycle_outcome": "success", "statistical_gate": statistical_gate(0.98)}
    )
    verdict = judge(noise_task(), fooled)
    assert not verdict.passed and verdict.score == pytest.approx(0.02)
    assert verdict.reasons == ["outcome success on noise: a false discovery (expected none)"]
    broken = task_input(task_id=NOISE, cycle_outcome="failed_design", error="no valid spec")
    verdict = judge(noise_task(), broken)
    assert not verdict.passed and verdict.score == 0.0


def test_a_deflated_sharpe_that_could_not_run_is_a_reason_and_scores_nothing() -> None:
    gate = statistical_gate(0.0)
    gate.checks[1] = GateCheck(
        name="deflated_sharpe",
        value=0.0,
        threshold=0.95,
        op=">=",
        passed=False,
        status="not_run",
        detail="no walk-forward result",
    )
    inp = task_input(cycle_outcome="failed_backtest_gate", metrics=GOOD, statistical_gate=gate)
    verdict = judge(risk_task(), inp)
    assert verdict.score == 0.0
    assert verdict.reasons[-1] == (
        "statistical gate: deflated_sharpe not run (no walk-forward result)"
    )  # fmt: skip


def test_designer_failure_lists_outcome_criteria_gate_checks_and_error() -> None:
    backtest_gate = GateResult(
        gate="backtest",
        passed=False,
        checks=[
            GateCheck(name="win_rate", value=0.4, threshold=0.45, op=">=", passed=False),
            GateCheck(name="max_drawdown", value=0.35, threshold=0.3, op="<=", passed=False),
            GateCheck(name="sharpe", value=0.9, threshold=0.3, op=">=", passed=True),
        ],
    )
    inp = task_input(
        cycle_outcome="failed_backtest_gate", metrics=BAD, gates=[backtest_gate], error="boom"
    )
    verdict = judge(risk_task(), inp)
    assert not verdict.passed
    assert verdict.reasons == [
        "outcome failed_backtest_gate",
        "sharpe 0.21 < 0.5 (needs >= 0.5)",
        "trades 2 < 3 (needs >= 3)",
        "backtest gate: win_rate 0.4 < 0.45 (needs >= 0.45)",
        "backtest gate: max_drawdown 0.35 > 0.3 (needs <= 0.3)",
        "error: boom",
    ]


def test_designer_failure_at_the_training_gate_names_the_failed_check() -> None:
    training_gate = GateResult(
        gate="training",
        passed=False,
        checks=[
            GateCheck(name="validation_trades", value=1, threshold=3, op=">=", passed=False),
            GateCheck(name="validation_sharpe", value=0.7, threshold=0.0, op=">=", passed=True),
        ],
    )
    verdict = judge(risk_task(), task_input(cycle_outcome="failed_training_gate",
                                            gates=[training_gate]))  # fmt: skip
    assert verdict == TaskVerdict(
        passed=False,
        reasons=[
            "outcome failed_training_gate",
            "training gate: validation_trades 1 < 3 (needs >= 3)",
        ],
    )


def test_a_gate_value_just_under_its_threshold_is_shown_with_enough_digits() -> None:
    gate = GateResult(
        gate="training",
        passed=False,
        checks=[GateCheck(name="accuracy", value=0.4496, threshold=0.45, op=">=", passed=False)],
    )
    verdict = judge(risk_task(), task_input(cycle_outcome="failed_training_gate", gates=[gate]))
    reason = verdict.reasons[-1]
    assert re.fullmatch(r"training gate: accuracy 0\.449\d* < 0\.45 \(needs >= 0\.45\)", reason)


def test_a_long_error_is_cut_to_300_characters() -> None:
    verdict = judge(risk_task(), task_input(error="x" * 1000))
    assert verdict.reasons == ["outcome missing", "error: " + "x" * 300]


def test_assessor_accepting_a_result_that_meets_the_criteria_passes() -> None:
    inp = task_input(role="assessor", cycle_outcome="success", metrics=GOOD, verdict="accept")
    assert judge(risk_task(), inp) == TaskVerdict(passed=True, reasons=[], score=1.0)


def test_assessor_accepting_a_result_that_misses_the_criteria_fails() -> None:
    inp = task_input(role="assessor", cycle_outcome="success", metrics=BAD, verdict="accept")
    verdict = judge(risk_task(), inp)
    assert not verdict.passed
    assert verdict.reasons == [
        "assessor said accept, the criteria say refine or reject",
        "sharpe 0.21 < 0.5 (needs >= 0.5)",
        "trades 2 < 3 (needs >= 3)",
    ]


@pytest.mark.parametrize("said", ["refine", "reject"])
def test_assessor_refusing_a_result_that_misses_the_criteria_passes(said: str) -> None:
    inp = task_input(role="assessor", cycle_outcome="success", metrics=BAD, verdict=said)
    assert judge(risk_task(), inp) == TaskVerdict(passed=True, reasons=[], score=1.0)


def test_assessor_accepting_anything_on_noise_fails() -> None:
    inp = task_input(role="assessor", task_id=NOISE, cycle_outcome="failed_assessment",
                     metrics=GOOD, verdict="accept")  # fmt: skip
    verdict = judge(noise_task(), inp)
    assert not verdict.passed and verdict.score == 0.0
    assert verdict.reasons[0] == "assessor said accept, the criteria say refine or reject"
    refused = judge(noise_task(), inp.model_copy(update={"verdict": "reject"}))
    assert refused == TaskVerdict(passed=True, score=1.0)


def test_assessor_refusing_a_result_that_meets_the_criteria_fails() -> None:
    inp = task_input(role="assessor", cycle_outcome="success", metrics=GOOD, verdict="reject")
    assert judge(risk_task(), inp) == TaskVerdict(
        passed=False, reasons=["assessor said reject, the criteria say accept"]
    )


def test_assessor_task_without_a_verdict_fails_as_not_assessed() -> None:
    inp = task_input(role="assessor", cycle_outcome="failed_training_gate")
    assert judge(risk_task(), inp) == TaskVerdict(
        passed=False, reasons=["not assessed (failed_training_gate)"]
    )


def test_a_regression_run_judges_the_iteration_that_came_closest_to_a_discovery() -> None:
    """What RegressionRunWorkflow hands the judge: the chosen iteration of a success, else
    the backtested one with the highest deflated Sharpe, never simply the last."""
    tested = IterationSummary(iteration=1, strategy_id="s1", outcome="failed_backtest_gate",
                              metrics=GOOD, statistical_gate=statistical_gate(0.4))  # fmt: skip
    weaker = tested.model_copy(update={"iteration": 2, "strategy_id": "s2",
                                       "statistical_gate": statistical_gate(0.1)})  # fmt: skip
    broken = IterationSummary(iteration=3, outcome="failed_design", error="no spec")
    failed = ResearchCycleResult(session_id="x", outcome="failed_design",
                                 iterations=[tested, weaker, broken])  # fmt: skip
    assert _judged_iteration(failed) == tested
    won = weaker.model_copy(update={"outcome": "success"})
    success = ResearchCycleResult(session_id="x", outcome="success", best_strategy_id="s2",
                                  iterations=[tested, won])  # fmt: skip
    assert _judged_iteration(success) == won
    nothing = ResearchCycleResult(session_id="x", outcome="failed_design", iterations=[broken])
    assert _judged_iteration(nothing) == broken
    assert _judged_iteration(ResearchCycleResult(session_id="x", outcome="skipped_budget")) is None


def fit_report(*, trials: int = 81, effective: float = 36.0) -> TrainingReport:
    """A rules fit whose walk-forward result beats its exposure-matched benchmark by a
    Sharpe of about 1.3 a year over 1,000 out-of-sample bars, from a grid of ``trials``."""
    return TrainingReport(
        kind="rules",
        grid_size=trials,
        walk_forward=WalkForwardReport(oos_bars=1000, sharpe=1.4, sharpe_per_bar=0.09,
                                       excess_sharpe_per_bar=0.085, trades=24),
        trials=TrialStats(n_trials=trials, n_effective=effective, sharpe_var=0.0004, bars=1000),
    )  # fmt: skip


def test_the_score_judges_the_fit_as_a_first_look_not_by_when_it_was_measured() -> None:
    """The cycle's gate deflates by the universe's ledger, which every regression run grows:
    measured later, the same design would score lower. The score judges the fit alone."""
    report = fit_report()
    own = own_trials_gate(report)
    assert own is not None
    thresholds = StatisticalGateThresholds()
    ledger = TrialLedger(universe="u", symbol="s", fits=1, n=81, n_effective=36.0,
                         sharpe_var=0.0004)  # fmt: skip
    early = judge_statistically(report, ledger, thresholds)
    later = ledger.model_copy(update={"fits": 40, "n": 3000, "n_effective": 1300.0,
                                      "oos_sharpe_var": 0.0009})  # fmt: skip
    late = judge_statistically(report, later, thresholds)
    dsr = {
        name: g.checks[1].value for name, g in {"own": own, "early": early, "late": late}.items()
    }
    assert dsr["own"] == pytest.approx(dsr["early"]) and dsr["late"] < dsr["early"] - 0.05
    inp = task_input(cycle_outcome="failed_backtest_gate", metrics=GOOD, statistical_gate=late)
    assert judge(risk_task(), inp).score == pytest.approx(dsr["late"])
    assert judge(risk_task(), inp, evidence=own).score == pytest.approx(dsr["own"])
    # Where N counts grid trials, a larger search still pays for itself.
    grid = StatisticalGateThresholds(trials="grid")
    small = own_trials_gate(report, grid)
    wide = own_trials_gate(fit_report(trials=4096, effective=900.0), grid)
    assert small is not None and wide is not None
    assert wide.checks[1].value < small.checks[1].value
    # A fit without a grid is one trial; no walk-forward result, no first-look gate.
    gridless = report.model_copy(update={"trials": None})
    assert own_trials_gate(gridless, grid).checks[1].value >= small.checks[1].value  # type: ignore[union-attr]
    assert own_trials_gate(TrainingReport(kind="ml")) is None
    assert own_trials_gate(None) is None


def test_evidence_never_scores_an_iteration_that_did_not_reach_the_backtest() -> None:
    own = own_trials_gate(fit_report())
    inp = task_input(cycle_outcome="failed_training_gate")
    assert judge(risk_task(), inp, evidence=own).score == 0.0


# --- aggregate -------------------------------------------------------------------------------


def test_aggregate_averages_tokens_and_latency_and_sums_cost() -> None:
    results = [
        result("a", passed=True, score=0.96, tokens=1000, latency_ms=500.0, cost_usd=0.01),
        result("b", passed=False, score=0.3, tokens=3000, latency_ms=1500.0, cost_usd=0.02),
        result("c", passed=True, score=0.99, tokens=2000, latency_ms=1000.0, cost_usd=0.03),
    ]
    fitness = aggregate(results)
    assert fitness.score == pytest.approx((0.96 + 0.3 + 0.99) / 3)
    assert fitness.success_rate == pytest.approx(2 / 3)
    assert fitness.objectives() == (fitness.score, 2000, 1000)  # NSGA-II climbs the score
    assert fitness.version == FITNESS_VERSION
    assert (fitness.mean_tokens, fitness.mean_latency_ms) == (2000, 1000)
    assert (fitness.tasks, fitness.passed, fitness.cost_usd) == (3, 2, 0.06)


def test_aggregate_leaves_out_tasks_skipped_for_budget() -> None:
    measured = result("a", passed=True, score=0.97, tokens=1000, latency_ms=500.0,
                      cost_usd=0.01)  # fmt: skip
    skipped = result("b", passed=False, outcome="skipped_budget", tokens=9999,
                     latency_ms=9999.0, cost_usd=1.0)  # fmt: skip
    assert aggregate([measured, skipped]) == Fitness(
        score=0.97, success_rate=1.0, mean_tokens=1000, mean_latency_ms=500, tasks=1, passed=1,
        cost_usd=0.01, version=FITNESS_VERSION,
    )  # fmt: skip


@pytest.mark.parametrize(
    "results",
    [[], [result("a", passed=False, outcome="skipped_budget")]],
    ids=["empty", "only-skipped"],
)
def test_aggregate_of_nothing_measured_is_zero_fitness(results: list[TaskResult]) -> None:
    assert aggregate(results) == Fitness()


# --- failure summary ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("sharpe 0.21 < 0.5 (needs >= 0.5)", "sharpe too low"),
        ("max_drawdown 0.31 > 0.12 (needs <= 0.12)", "max_drawdown too high"),
        ("training gate: validation_trades 1 < 3 (needs >= 3)",
         "training gate: validation_trades too low"),
        ("backtest gate: max_drawdown 0.35 > 0.3 (needs <= 0.3)",
         "backtest gate: max_drawdown too high"),
        ("statistical gate: deflated_sharpe too low (needs >= 0.95)",
         "statistical gate: deflated_sharpe too low"),
        ("statistical gate: min_trades 4 < 10 (needs >= 10)",
         "statistical gate: min_trades too low"),
        ("outcome success on noise: a false discovery (expected none)",
         "outcome success on noise: a false discovery (expected none)"),
        ("outcome failed_training_gate", "outcome failed_training_gate"),
        ("error: the design activity timed out", "cycle error"),
        ("", "unknown"),
    ],
)  # fmt: skip
def test_cause_names_the_metric_and_direction_or_the_outcome(reason: str, cause: str) -> None:
    assert _cause(reason) == cause


def test_an_error_that_mentions_a_gate_is_still_a_cycle_error() -> None:
    assert _cause("error: ApplicationError: training gate: no report") == "cycle error"


@pytest.mark.parametrize(
    "reason",
    ["not assessed (failed_training_gate)",
     "assessor said accept, the criteria say refine or reject"],
    ids=["not-assessed", "disagreed"],
)  # fmt: skip
def test_the_assessors_reasons_have_a_cause_beyond_their_first_word(reason: str) -> None:
    assert _cause(reason) != reason.split()[0]


def test_failure_summary_counts_the_most_common_causes_and_lists_failed_tasks() -> None:
    results = [
        result("t-a", passed=False, outcome="success",
               reasons=["sharpe 0.21 < 0.5 (needs >= 0.5)", "trades 2 < 3 (needs >= 3)"]),
        result("t-b", passed=False, outcome="failed_training_gate",
               reasons=["outcome failed_training_gate",
                        "training gate: validation_trades 1 < 3 (needs >= 3)"]),
        result("t-c", passed=False, outcome="success",
               reasons=["sharpe 0.3 < 0.5 (needs >= 0.5)"]),
        result("t-d", passed=True, outcome="success"),
    ]  # fmt: skip
    lines = failure_summary(results).splitlines()
    assert lines[0] == "3 of 4 benchmark tasks failed. Most common causes:"
    assert lines[1] == "- sharpe too low: 2 tasks"
    assert set(lines[2:5]) == {
        "- trades too low: 1 tasks",
        "- outcome failed_training_gate: 1 tasks",
        "- training gate: validation_trades too low: 1 tasks",
    }
    assert lines[5:] == [
        "Failed tasks:",
        "- t-a: sharpe 0.21 < 0.5 (needs >= 0.5); trades 2 < 3 (needs >= 3)",
        "- t-b: outcome failed_training_gate; training gate: validation_trades 1 < 3 (needs >= 3)",
        "- t-c: sharpe 0.3 < 0.5 (needs >= 0.5)",
    ]


def test_failure_summary_does_not_list_tasks_skipped_for_budget() -> None:
    results = [
        result("t-a", passed=False, outcome="success", reasons=["sharpe 0.2 < 0.5 (x)"]),
        result("t-b", passed=False, outcome="skipped_budget", reasons=["outcome skipped_budget"]),
    ]
    summary = failure_summary(results)
    assert "t-a" in summary
    assert "t-b" not in summary and "skipped_budget" not in summary


def test_failure_summary_is_empty_when_every_task_passed() -> None:
    assert failure_summary([result("t-a", passed=True), result("t-b", passed=True)]) == ""
    assert failure_summary([]) == ""


# --- ExperimentService ---------------------------------------------------------------------------


async def begin(pool: Pool, experiment_id: str = "e1", **kw: object) -> None:
    prod = await prod_designer(pool)
    fields: dict[str, object] = {"prompt_id": prod.id, "task_ids": [RISK, PRESERVE],
                                 "experiment_id": experiment_id, **kw}  # fmt: skip
    await experiment_service(pool).begin(
        RegressionRunInput.model_validate(fields), workflow_id="wf-1"
    )


async def test_begin_syncs_the_suite_and_starts_a_running_experiment(db_pool: Pool) -> None:
    prod = await prod_designer(db_pool)
    plan = await experiment_service(db_pool).begin(
        RegressionRunInput(prompt_id=prod.id, task_ids=[RISK, PRESERVE], experiment_id="e1",
                           generation=3),
        workflow_id="wf-1",
    )  # fmt: skip
    assert not plan.reused
    assert [t.task_id for t in plan.tasks] == [RISK, PRESERVE]
    started = plan.experiment
    assert (started.experiment_id, started.prompt_id, started.role) == ("e1", prod.id, "designer")
    assert (started.status, started.generation, started.workflow_id) == ("running", 3, "wf-1")
    assert started.task_ids == [RISK, PRESERVE]
    assert started.task_set_hash == task_set_hash([PRESERVE, RISK])
    assert await ExperimentRepo(db_pool).get("e1") == started
    assert [t.task_id for t in await BenchmarkRepo(db_pool).list()] == SUITE_IDS


async def test_begin_without_task_ids_plans_the_optimizers_own_tasks(db_pool: Pool) -> None:
    prod = await prod_designer(db_pool)
    plan = await experiment_service(db_pool).begin(
        RegressionRunInput(prompt_id=prod.id, experiment_id="e1"), workflow_id="wf-1"
    )
    assert [t.task_id for t in plan.tasks] == OWN_IDS
    assert plan.experiment.task_ids == OWN_IDS
    # Only synthetic data research cycles never choose on; real-market tasks when named.
    assert all(t.symbol in OPTIMIZER_SYMBOLS for t in plan.tasks)
    assert len(OWN_IDS) < len(SUITE_IDS)


async def test_begin_refuses_an_unknown_prompt(db_pool: Pool) -> None:
    with pytest.raises(LookupError, match="'ghost'"):
        await experiment_service(db_pool).begin(
            RegressionRunInput(prompt_id="ghost", experiment_id="e1"), workflow_id="wf-1"
        )
    assert await count(db_pool, "experiments") == 0


async def test_begin_refuses_a_prompt_of_another_role(db_pool: Pool) -> None:
    assessor = await PromptRepo(db_pool).current_prod("assessor")
    with pytest.raises(LookupError, match="no designer prompt"):
        await experiment_service(db_pool).begin(
            RegressionRunInput(prompt_id=assessor.id, role="designer", experiment_id="e1"),
            workflow_id="wf-1",
        )
    assert await count(db_pool, "experiments") == 0


async def test_record_judges_the_task_and_sums_the_sessions_llm_calls(db_pool: Pool) -> None:
    await begin(db_pool)
    await llm_call(db_pool, "a1", "s1", input_tokens=1000, output_tokens=200,
                   latency_ms=4000.0, cost_usd=0.006)  # fmt: skip
    await llm_call(db_pool, "a2", "s1", input_tokens=500, output_tokens=100,
                   latency_ms=2000.0, cost_usd=0.003)  # fmt: skip
    await llm_call(db_pool, "other", "s2", input_tokens=7777, output_tokens=7777,
                   latency_ms=9999.0, cost_usd=0.5)  # fmt: skip
    prod = await prod_designer(db_pool)
    stored = await experiment_service(db_pool).record(
        task_input(prompt_id=prod.id, session_id="s1", cycle_outcome="success", metrics=BAD,
                   statistical_gate=statistical_gate(0.96))
    )  # fmt: skip
    assert (stored.experiment_id, stored.task_id, stored.rollout) == ("e1", RISK, 1)
    assert not stored.passed and stored.outcome == "success" and stored.metrics == BAD
    assert stored.score == 0.0  # a DSR of 0.96, but neither criterion holds on BAD
    assert stored.reasons == ["sharpe 0.21 < 0.5 (needs >= 0.5)", "trades 2 < 3 (needs >= 3)"]
    assert (stored.tokens, stored.latency_ms) == (1800, 6000.0)
    assert stored.cost_usd == pytest.approx(0.009)
    assert await ExperimentRepo(db_pool).results("e1") == [stored]


async def test_record_scores_with_the_fits_own_trials_when_the_fit_is_stored(
    db_pool: Pool,
) -> None:
    await begin(db_pool)
    research = ResearchRepo(db_pool)
    spec = StrategySpec(name="sma-cross", kind="rules", symbol="sp500", entry="fast > slow")
    await research.insert_strategy("st1", spec, session_id="s1", iteration=1)
    await research.upsert_training_run("tr1", strategy_id="st1", session_id="s1",
                                       status="completed", report=fit_report())  # fmt: skip
    own = own_trials_gate(fit_report())
    assert own is not None
    late = statistical_gate(0.1)  # what the cycle's gate said, after many looks
    prod = await prod_designer(db_pool)
    service = experiment_service(db_pool)
    stored = await service.record(
        task_input(prompt_id=prod.id, session_id="s1", cycle_outcome="failed_backtest_gate",
                   metrics=GOOD, statistical_gate=late, training_run_id="tr1")
    )  # fmt: skip
    assert stored.score == pytest.approx(own.checks[1].value) and stored.score > 0.1
    # The verdict's reasons still quote the cycle's own gate.
    assert "statistical gate: deflated_sharpe too low (needs >= 0.95)" in stored.reasons
    # A fit that is not stored (or not completed) falls back on the cycle's gate.
    other = await service.record(
        task_input(prompt_id=prod.id, task_id=PRESERVE, cycle_outcome="failed_backtest_gate",
                   metrics=GOOD, statistical_gate=late, training_run_id="ghost")
    )  # fmt: skip
    assert other.score == pytest.approx(0.1)  # both criteria hold on GOOD


async def test_record_without_a_session_charges_nothing(db_pool: Pool) -> None:
    await begin(db_pool)
    prod = await prod_designer(db_pool)
    stored = await experiment_service(db_pool).record(
        task_input(prompt_id=prod.id, error="the cycle never started")
    )
    assert not stored.passed and (stored.tokens, stored.latency_ms, stored.cost_usd) == (0, 0, 0)


async def test_record_is_idempotent(db_pool: Pool) -> None:
    await begin(db_pool)
    await llm_call(db_pool, "a1", "s1", input_tokens=1000, output_tokens=200)
    prod = await prod_designer(db_pool)
    service = experiment_service(db_pool)
    first = await service.record(
        task_input(prompt_id=prod.id, session_id="s1", cycle_outcome="success", metrics=BAD)
    )
    await llm_call(db_pool, "a2", "s1", input_tokens=5000, output_tokens=5000)
    retried = await service.record(
        task_input(prompt_id=prod.id, session_id="s1", cycle_outcome="success", metrics=GOOD)
    )
    assert retried == first
    assert await count(db_pool, "experiment_results") == 1


async def record_two_tasks(pool: Pool) -> None:
    """RISK passes (1800 tokens, 6000 ms, $0.009); PRESERVE fails (1200, 8000, $0.0084)."""
    await llm_call(pool, "a1", "s1", input_tokens=1000, output_tokens=200, latency_ms=4000.0,
                   cost_usd=0.006)  # fmt: skip
    await llm_call(pool, "a2", "s1", input_tokens=500, output_tokens=100, latency_ms=2000.0,
                   cost_usd=0.003)  # fmt: skip
    await llm_call(pool, "a3", "s2", input_tokens=800, output_tokens=400, latency_ms=8000.0,
                   cost_usd=0.0084)  # fmt: skip
    prod = await prod_designer(pool)
    service = experiment_service(pool)
    await service.record(
        task_input(prompt_id=prod.id, session_id="s1", cycle_outcome="success", metrics=GOOD)
    )
    await service.record(
        task_input(prompt_id=prod.id, task_id=PRESERVE, session_id="s2",
                   cycle_outcome="failed_backtest_gate")
    )  # fmt: skip


async def test_finish_aggregates_the_results_and_completes(db_pool: Pool) -> None:
    await begin(db_pool)
    await record_two_tasks(db_pool)
    done = await experiment_service(db_pool).finish(FinishExperimentInput(experiment_id="e1"))
    assert (done.experiment_id, done.status, done.stopped_reason) == ("e1", "completed", None)
    assert done.fitness is not None
    assert (done.fitness.success_rate, done.fitness.tasks, done.fitness.passed) == (0.5, 2, 1)
    assert (done.fitness.mean_tokens, done.fitness.mean_latency_ms) == (1500, 7000)
    assert done.fitness.cost_usd == pytest.approx(0.0174)
    stored = await ExperimentRepo(db_pool).get("e1")
    assert stored is not None and stored.status == "completed" and stored.fitness == done.fitness


async def test_finish_with_a_stop_reason_marks_the_run_stopped_by_budget(db_pool: Pool) -> None:
    await begin(db_pool)
    await record_two_tasks(db_pool)
    done = await experiment_service(db_pool).finish(
        FinishExperimentInput(experiment_id="e1", stopped_reason="the optimizer budget ran out")
    )
    assert (done.status, done.stopped_reason) == (
        "stopped_budget",
        "the optimizer budget ran out",
    )
    assert done.fitness is not None and done.fitness.tasks == 2


async def test_begin_reuses_a_completed_run_of_the_same_prompt_and_tasks(db_pool: Pool) -> None:
    await begin(db_pool)
    await record_two_tasks(db_pool)
    done = await experiment_service(db_pool).finish(FinishExperimentInput(experiment_id="e1"))
    prod = await prod_designer(db_pool)
    plan = await experiment_service(db_pool).begin(
        RegressionRunInput(prompt_id=prod.id, task_ids=[PRESERVE, RISK], experiment_id="e2"),
        workflow_id="wf-2",
    )
    assert plan.reused and plan.tasks == []
    assert plan.experiment.experiment_id == "e1" and plan.experiment.fitness == done.fitness
    assert await count(db_pool, "experiments") == 1


async def test_begin_without_reuse_starts_a_new_run(db_pool: Pool) -> None:
    await begin(db_pool)
    await experiment_service(db_pool).finish(FinishExperimentInput(experiment_id="e1"))
    prod = await prod_designer(db_pool)
    plan = await experiment_service(db_pool).begin(
        RegressionRunInput(prompt_id=prod.id, task_ids=[RISK, PRESERVE], experiment_id="e2",
                           reuse=False),
        workflow_id="wf-2",
    )  # fmt: skip
    assert not plan.reused and plan.experiment.experiment_id == "e2"
    assert plan.experiment.status == "running"


async def test_begin_does_not_reuse_a_run_measured_before_scores(db_pool: Pool) -> None:
    await begin(db_pool)
    old = Fitness(success_rate=0.5, tasks=2, passed=1)  # version 0: no score
    await ExperimentRepo(db_pool).finish("e1", status="completed", fitness=old)
    await begin(db_pool, "e2")
    assert await count(db_pool, "experiments") == 2


async def test_begin_does_not_reuse_a_run_stopped_by_budget(db_pool: Pool) -> None:
    await begin(db_pool)
    await experiment_service(db_pool).finish(
        FinishExperimentInput(experiment_id="e1", stopped_reason="budget")
    )
    await begin(db_pool, "e2")
    assert await count(db_pool, "experiments") == 2


# --- GenerationService: begin, register --------------------------------------------------------


async def test_begin_generation_zero_breeds_from_prod(db_pool: Pool) -> None:
    prod = await prod_designer(db_pool)
    plan = await generation_service(db_pool).begin(OptimizationInput(seed=42, campaign_id="c1"))
    assert (plan.generation, plan.seed, plan.campaign_id) == (0, derive_seed(42, 0), "c1")
    assert (plan.prod_prompt_id, plan.parent_ids) == (prod.id, [prod.id])
    assert plan.suite_task_ids == OWN_IDS
    assert (plan.previous_archive, plan.previous_task_ids) == ([], [])


async def test_begin_breeds_from_the_last_survivors_that_are_not_archived(db_pool: Pool) -> None:
    prod = await prod_designer(db_pool)
    await add_prompt(db_pool, "kid-a", "Design {{ symbol }} A")
    await add_prompt(db_pool, "kid-gone", "Design {{ symbol }} B", tag="archived")
    survivors = [Individual(prompt_id=p) for p in ("kid-a", "kid-gone", prod.id, "never-stored")]
    scored = Individual(prompt_id="kid-a", fitness=Fitness(score=0.4, version=FITNESS_VERSION))
    unscored = Individual(prompt_id="kid-old", fitness=Fitness(success_rate=0.5))
    await GenerationRepo(db_pool).record(
        GenerationRecord(generation=0, seed=1, task_ids=[RISK], population=survivors,
                         archive=[scored, unscored])
    )  # fmt: skip
    plan = await generation_service(db_pool).begin(OptimizationInput(seed=42))
    assert (plan.generation, plan.seed) == (1, derive_seed(42, 1))
    assert plan.parent_ids == [prod.id, "kid-a"]
    # A member measured before scores existed is not comparable and leaves the archive.
    assert plan.previous_task_ids == [RISK] and plan.previous_archive == [scored]


def child(content: str, parent_id: str, *, accepted: bool = True, reason: str = "") -> CheckedChild:
    proposed = ProposedChild(system="", content=content, parent_ids=[parent_id],
                             operator="llm_mutation", rationale=f"why {content}")  # fmt: skip
    return CheckedChild(child=proposed, accepted=accepted, reason=reason)


async def test_register_inserts_accepted_children_as_experimental_prompts(db_pool: Pool) -> None:
    prompts = PromptRepo(db_pool)
    children = [child("Child A {{ symbol }}", "par"),
                child("Child B {{ symbol }}", "par", accepted=False, reason="sanity: unsafe"),
                child("Child C {{ symbol }}", "par")]  # fmt: skip
    records = await generation_service(db_pool).register(
        RegisterInput(role="designer", generation=2, children=children)
    )
    # Ids follow from role and text, so the same child gets the same id in any database.
    a_id = default_prompt_id("designer", prompt_content_hash("", "Child A {{ symbol }}"))
    c_id = default_prompt_id("designer", prompt_content_hash("", "Child C {{ symbol }}"))
    assert [(r.prompt_id, r.accepted) for r in records] == [
        (a_id, True), (None, False), (c_id, True),
    ]  # fmt: skip
    assert records[1].reason == "sanity: unsafe"
    assert records[0].content_hash == prompt_content_hash("", "Child A {{ symbol }}")
    stored = await prompts.get(a_id)
    assert stored is not None
    assert (stored.version, stored.generation, stored.parent_ids) == ("1.3.0", 2, ["par"])
    assert (stored.tag, stored.content) == ("experimental", "Child A {{ symbol }}")
    assert await prompts.metadata(a_id) == {
        "operator": "llm_mutation",
        "rationale": "why Child A {{ symbol }}",
    }
    assert [(e.tag, e.actor) for e in await prompts.tags(a_id)] == [
        ("draft", "optimizer"),
        ("experimental", "optimizer"),
    ]
    third = await prompts.get(c_id)
    assert third is not None and third.version == "1.3.2"


async def test_register_does_not_insert_a_rejected_child(db_pool: Pool) -> None:
    before = await count(db_pool, "prompts")
    records = await generation_service(db_pool).register(
        RegisterInput(role="designer", generation=0,
                      children=[child("{{ ''.__class__ }}", "par", accepted=False,
                                      reason="template: sandbox violation")])
    )  # fmt: skip
    assert records[0].prompt_id is None and not records[0].accepted
    assert await count(db_pool, "prompts") == before


async def test_register_resolves_a_known_text_to_its_prompt_without_retagging(
    db_pool: Pool,
) -> None:
    prompts = PromptRepo(db_pool)
    prod = await prod_designer(db_pool)
    events = await prompts.tags(prod.id)
    rediscovered = ProposedChild(system=prod.system, content=prod.content, parent_ids=[prod.id],
                                 operator="rephrase")  # fmt: skip
    records = await generation_service(db_pool).register(
        RegisterInput(role="designer", generation=0,
                      children=[CheckedChild(child=rediscovered, accepted=True)])
    )  # fmt: skip
    assert records[0].prompt_id == prod.id
    assert await prompts.tags(prod.id) == events
    assert (await prod_designer(db_pool)).id == prod.id


async def test_retried_register_adds_no_prompts_and_no_tag_events(db_pool: Pool) -> None:
    service = generation_service(db_pool)
    children = [child("A {{ symbol }}", "par"), child("B {{ symbol }}", "par")]
    inp = RegisterInput(role="designer", generation=1, children=children)
    first = await service.register(inp)
    prompts, tags = await count(db_pool, "prompts"), await count(db_pool, "prompt_tags")
    assert await service.register(inp) == first
    assert (await count(db_pool, "prompts"), await count(db_pool, "prompt_tags")) == (prompts, tags)


# --- GenerationService: task selection, parents, review -------------------------------------


FAILING = SUITE_IDS[:6]
PASSING = SUITE_IDS[6:10]
SKIPPED = SUITE_IDS[10]


async def baseline(pool: Pool, experiment_id: str = "base") -> None:
    """A prod run on the suite: FAILING fail, PASSING pass, SKIPPED was skipped for budget."""
    prod = await prod_designer(pool)
    service = experiment_service(pool)
    await service.begin(
        RegressionRunInput(prompt_id=prod.id, task_ids=[*FAILING, *PASSING, SKIPPED],
                           experiment_id=experiment_id),
        workflow_id="wf",
    )  # fmt: skip
    repo = ExperimentRepo(pool)
    for task_id in [*FAILING, *PASSING, SKIPPED]:
        outcome = "skipped_budget" if task_id == SKIPPED else "success"
        await repo.record_result(
            TaskResult(experiment_id=experiment_id, task_id=task_id, prompt_id=prod.id,
                       passed=task_id in PASSING, outcome=outcome)
        )  # fmt: skip


def selection(prod_id: str, *, targets: int, controls: int, seed: int) -> SelectTasksInput:
    return SelectTasksInput(role="designer", prod_prompt_id=prod_id, baseline_experiment_id="base",
                            targets=targets, controls=controls, seed=seed)  # fmt: skip


async def test_select_tasks_draws_targets_from_failures_and_controls_from_passes(
    db_pool: Pool,
) -> None:
    await baseline(db_pool)
    prod = await prod_designer(db_pool)
    chosen = await generation_service(db_pool).select_tasks(
        selection(prod.id, targets=3, controls=2, seed=7)
    )
    assert len(chosen.targets) == 3 and set(chosen.targets) <= set(FAILING)
    assert len(chosen.controls) == 2 and set(chosen.controls) <= set(PASSING)
    assert chosen.task_ids == sorted(chosen.targets + chosen.controls)
    assert SKIPPED not in chosen.task_ids


async def test_select_tasks_is_reproducible_for_a_seed(db_pool: Pool) -> None:
    await baseline(db_pool)
    prod = await prod_designer(db_pool)
    service = generation_service(db_pool)
    draws = [
        await service.select_tasks(selection(prod.id, targets=3, controls=2, seed=seed))
        for seed in (7, 7, *range(10))
    ]
    assert draws[0] == draws[1]
    assert len({tuple(d.task_ids) for d in draws}) > 1  # the seed does choose


async def test_select_tasks_takes_at_most_what_the_baseline_has(db_pool: Pool) -> None:
    await baseline(db_pool)
    prod = await prod_designer(db_pool)
    chosen = await generation_service(db_pool).select_tasks(
        selection(prod.id, targets=50, controls=50, seed=1)
    )
    assert (chosen.targets, chosen.controls) == (FAILING, PASSING)
    nothing = await generation_service(db_pool).select_tasks(
        selection(prod.id, targets=0, controls=0, seed=1)
    )
    assert nothing.task_ids == []


async def test_select_tasks_splits_a_fixed_task_set_by_the_baseline(db_pool: Pool) -> None:
    await baseline(db_pool)
    prod = await prod_designer(db_pool)
    inp = selection(prod.id, targets=1, controls=1, seed=1).model_copy(
        update={"task_ids": [PASSING[0], FAILING[0], FAILING[1], PASSING[0]]}
    )
    chosen = await generation_service(db_pool).select_tasks(inp)
    assert chosen.task_ids == sorted([PASSING[0], FAILING[0], FAILING[1]])
    assert (chosen.targets, chosen.controls) == ([FAILING[0], FAILING[1]], [PASSING[0]])


async def test_load_parents_ranks_best_first_and_gives_the_llm_the_best_fresh_parent(
    db_pool: Pool,
) -> None:
    prod = await prod_designer(db_pool)
    await add_prompt(db_pool, "kid-a", "Design {{ symbol }} better")
    service, repo = experiment_service(db_pool), ExperimentRepo(db_pool)
    for prompt_id, eid, passes in ((prod.id, "e-prod", False), ("kid-a", "e-kid", True)):
        await service.begin(RegressionRunInput(prompt_id=prompt_id, task_ids=[RISK],
                                               experiment_id=eid), workflow_id="wf")  # fmt: skip
        await repo.record_result(
            TaskResult(experiment_id=eid, task_id=RISK, prompt_id=prompt_id, passed=passes,
                       outcome="success", reasons=[] if passes else ["sharpe 0.1 < 0.5 (x)"],
                       score=0.97 if passes else 0.2)
        )  # fmt: skip
        await service.finish(FinishExperimentInput(experiment_id=eid))
    generations = generation_service(db_pool)
    inp = LoadParentsInput(role="designer", prompt_ids=[prod.id, "kid-a"],
                           experiment_ids=["e-prod", "e-kid"], generation=0)  # fmt: skip

    first = await generations.load_parents(inp)
    assert [p.prompt_id for p in first.parents] == ["kid-a", prod.id]
    assert first.parents[0].fitness is not None and first.parents[0].fitness.score == 0.97
    assert (first.mutation_parent, first.failure_summary) == (0, "")  # kid-a failed nothing
    assert prompt_content_hash(prod.system, prod.content) in first.known_hashes

    # Not mutated yet: the best parent again, whatever the generation.
    again = await generations.load_parents(inp.model_copy(update={"generation": 1}))
    assert again.mutation_parent == 0
    prompts = PromptRepo(db_pool)

    async def llm_child_of(parent: str, prompt_id: str, operator: str = LLM_MUTATION) -> None:
        await prompts.insert(
            prompt_id=prompt_id,
            role="designer",
            content=f"{prompt_id} {{{{ symbol }}}}",
            parent_ids=[parent],
            metadata={"operator": operator},
        )

    await llm_child_of("kid-a", "kid-a-crossed", operator="crossover")  # not the LLM's
    assert (await generations.load_parents(inp)).mutation_parent == 0
    await llm_child_of("kid-a", "kid-a-llm")  # kid-a had its turn: prod, the next best
    second = await generations.load_parents(inp.model_copy(update={"generation": 1}))
    assert second.mutation_parent == 1
    assert "sharpe too low: 1 tasks" in second.failure_summary
    await llm_child_of(prod.id, "prod-llm")  # every parent had its turn: by generation
    turns = [(await generations.load_parents(inp.model_copy(update={"generation": g})))
             .mutation_parent for g in (2, 3)]  # fmt: skip
    assert turns == [0, 1]


async def test_random_search_draws_the_llm_parent_by_seed_alone(db_pool: Pool) -> None:
    prod = await prod_designer(db_pool)
    for kid in ("kid-a", "kid-b", "kid-c"):
        await add_prompt(db_pool, kid, f"Design {{{{ symbol }}}} {kid}")
    ids = [prod.id, "kid-a", "kid-b", "kid-c"]
    service = experiment_service(db_pool)
    for prompt_id in ids:
        eid = f"e-{prompt_id}"
        run = RegressionRunInput(prompt_id=prompt_id, task_ids=[RISK], experiment_id=eid)
        await service.begin(run, workflow_id="wf")
        await service.finish(FinishExperimentInput(experiment_id=eid))
    inp = LoadParentsInput(role="designer", prompt_ids=ids, search="random",
                           experiment_ids=[f"e-{p}" for p in ids], generation=0)  # fmt: skip
    chosen = {
        (await generation_service(db_pool).load_parents(inp.model_copy(update={"seed": s})))
        .mutation_parent for s in range(12)
    }  # fmt: skip
    assert len(chosen) > 1  # the seed decides, not the ranking


async def test_load_parents_refuses_an_unknown_prompt(db_pool: Pool) -> None:
    with pytest.raises(LookupError, match="'ghost'"):
        await generation_service(db_pool).load_parents(
            LoadParentsInput(role="designer", prompt_ids=["ghost"], experiment_ids=["e"])
        )


async def test_approving_a_candidate_makes_it_prod_and_archives_the_old_prod(
    db_pool: Pool,
) -> None:
    prompts = PromptRepo(db_pool)
    prod = await prod_designer(db_pool)
    await add_prompt(db_pool, "cand", "Design {{ symbol }} carefully", tag="candidate")
    outcome = await generation_service(db_pool).apply_review(
        ApplyReviewInput(prompt_id="cand", decision="approved", reason="wins", actor="alice")
    )
    assert (outcome.decision, outcome.previous_prod_id, outcome.actor) == (
        "approved",
        prod.id,
        "alice",
    )
    assert (await prod_designer(db_pool)).id == "cand"
    [*_, promoted] = await prompts.tags("cand")
    assert (promoted.tag, promoted.actor, promoted.reason) == ("prod", "alice", "wins")
    [*_, retired] = await prompts.tags(prod.id)
    assert (retired.tag, retired.reason) == ("archived", "replaced as prod by cand")


async def test_rejecting_a_candidate_archives_it_with_the_reason(db_pool: Pool) -> None:
    prompts = PromptRepo(db_pool)
    prod = await prod_designer(db_pool)
    await add_prompt(db_pool, "cand", "Design {{ symbol }} carefully", tag="candidate")
    outcome = await generation_service(db_pool).apply_review(
        ApplyReviewInput(prompt_id="cand", decision="rejected", reason="overfits 2008",
                         actor="alice")
    )  # fmt: skip
    assert (outcome.decision, outcome.previous_prod_id) == ("rejected", None)
    [*_, archived] = await prompts.tags("cand")
    assert (archived.tag, archived.actor, archived.reason) == ("archived", "alice", "overfits 2008")
    assert (await prod_designer(db_pool)).id == prod.id


async def test_an_expired_review_archives_the_candidate(db_pool: Pool) -> None:
    await add_prompt(db_pool, "cand", "Design {{ symbol }} carefully", tag="candidate")
    await generation_service(db_pool).apply_review(
        ApplyReviewInput(prompt_id="cand", decision="expired", actor="timer")
    )
    [*_, archived] = await PromptRepo(db_pool).tags("cand")
    assert (archived.tag, archived.reason) == ("archived", "expired")


async def test_reviewing_an_unknown_prompt_fails(db_pool: Pool) -> None:
    with pytest.raises(LookupError, match="'ghost'"):
        await generation_service(db_pool).apply_review(
            ApplyReviewInput(prompt_id="ghost", decision="approved")
        )


# --- GenerationService: record and candidates -------------------------------------------------


def loose(inp: RecordGenerationInput) -> RecordGenerationInput:
    """The generation at a candidate level of 0.6. Its two targets cannot show significance
    at 0.05 (the least p-value of two tasks is 1/4; kid-good, better on one and tied on
    the other, has 1/2); these tests are about what a candidate gets, not the level
    (tests/unit/test_generation_verdicts.py tests that)."""
    return inp.model_copy(update={"plan": inp.plan.model_copy(update={"significance": 0.6})})


async def test_an_offspring_on_the_front_that_beats_prod_and_keeps_controls_is_a_candidate(
    db_pool: Pool,
) -> None:
    _, inp = await record_generation(db_pool)
    done = await generation_service(db_pool).record(loose(inp))
    assert done.candidates == ["kid-good"]
    kid = await PromptRepo(db_pool).get("kid-good")
    assert kid is not None and kid.tag == "candidate"


async def test_an_offspring_that_only_matches_prods_score_is_not_a_candidate(
    db_pool: Pool,
) -> None:
    _, inp = await record_generation(db_pool)
    done = await generation_service(db_pool).record(inp)
    assert "kid-same" not in done.candidates
    same = await PromptRepo(db_pool).get("kid-same")
    assert same is not None and same.tag == "archived"


async def test_an_offspring_that_loses_a_control_is_not_a_candidate_and_is_archived(
    db_pool: Pool,
) -> None:
    _, inp = await record_generation(db_pool)
    await generation_service(db_pool).record(inp)
    [*_, archived] = await PromptRepo(db_pool).tags("kid-bad")
    assert (archived.tag, archived.actor) == ("archived", "optimizer")
    assert archived.reason == "not selected in generation 0"


async def test_a_survivor_off_the_front_stays_experimental_and_prod_stays_prod(
    db_pool: Pool,
) -> None:
    prod_id, inp = await record_generation(db_pool)
    await generation_service(db_pool).record(inp)
    survivor = await PromptRepo(db_pool).get("kid-survivor")
    assert survivor is not None and survivor.tag == "experimental"
    assert (await prod_designer(db_pool)).id == prod_id


async def test_no_prod_run_means_no_candidates(db_pool: Pool) -> None:
    _, inp = await record_generation(db_pool)
    done = await generation_service(db_pool).record(
        inp.model_copy(update={"prod_experiment_id": None})
    )
    assert done.candidates == []
    kid = await PromptRepo(db_pool).get("kid-good")
    assert kid is not None and kid.tag == "experimental"  # a survivor, not archived


async def test_record_stores_the_generation_with_this_generations_evaluations(
    db_pool: Pool,
) -> None:
    prod_id, inp = await record_generation(db_pool)
    done = await generation_service(db_pool).record(loose(inp))
    stored = await GenerationRepo(db_pool).get("designer", 0)
    assert stored is not None
    assert (stored.seed, stored.campaign_id, stored.prod_prompt_id) == (
        derive_seed(1, 0),
        "camp",
        prod_id,
    )
    assert stored.candidates == ["kid-good"] == done.candidates
    assert stored.front == [prod_id, "kid-good", "kid-bad", "kid-same"]
    # Four offspring runs of generation 0 on 4 tasks; prod's run has no generation.
    assert (stored.evaluations, done.evaluations) == (16, 16)
    assert stored.cost_usd == pytest.approx(0.16)
    assert stored.best_success_rate == 0.75  # kid-bad passes 3 of 4
    assert stored.best_score == pytest.approx((0.8 * 3 + 0.02) / 4)  # kid-bad's mean
    assert done.best_score == stored.best_score
    assert stored.prod_fitness is None  # prod's Individual carried no fitness


def test_aggregate_gives_the_score_an_interval_only_over_several_rollouts() -> None:
    once = [result(t, passed=True, score=0.8) for t in ("a", "b")]
    assert aggregate(once).score_low is None and aggregate(once).score_high is None
    again = [result("a", passed=False, score=0.4), result("b", passed=True, score=0.7),
             result("a", passed=True, score=0.6), result("b", passed=True, score=0.9)]  # fmt: skip
    fitness = aggregate([*once, *again])
    assert fitness.score == pytest.approx(0.7)
    low, high = score_interval({"a": [0.8, 0.4, 0.6], "b": [0.8, 0.7, 0.9]}) or (0, 0)
    assert (fitness.score_low, fitness.score_high) == pytest.approx((low, high))
    assert 0.0 < low < fitness.score < high < 1.0
