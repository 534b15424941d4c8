"""Racing: an offspring stops being measured once prod dominates it with confidence, and
only then."""

from __future__ import annotations

from stratlab.evolution.racing import raced_out
from stratlab.evolution.verdicts import Measured, offspring_verdicts
from stratlab.models.optimization import (
    Fitness,
    Individual,
    OffspringRecord,
    RaceAgainst,
    TaskResult,
)

TASKS = [f"t{i}" for i in range(1, 10)]
PROD = RaceAgainst(
    prompt_id="prod",
    scores=dict.fromkeys(TASKS, 0.6),
    mean_tokens=1_000.0,
    mean_latency_ms=4_000.0,
)


def results(scores: list[float], tokens: int = 1_200, latency: float = 4_500.0) -> list[TaskResult]:
    return [
        TaskResult(experiment_id="e", task_id=t, prompt_id="kid", passed=False, score=s,
                   tokens=tokens, latency_ms=latency, outcome="failed_backtest_gate")
        for t, s in zip(TASKS, scores, strict=False)
    ]  # fmt: skip


def test_worse_everywhere_and_no_cheaper_is_raced_out_after_the_minimum() -> None:
    assert raced_out(results([0.1] * 4), PROD, planned=9) is None  # min_tasks is 5
    reason = raced_out(results([0.1] * 5), PROD, planned=9)
    assert reason == (
        "dominated by prod with confidence after 5 of 9 cycles: score 0.100 vs 0.600 "
        "(p = 0.031), tokens 1,200 vs 1,000, latency 4,500 vs 4,000 ms"
    )


def test_a_cheaper_or_not_clearly_worse_prompt_runs_on() -> None:
    # Worse, but cheaper: it may still belong on the Pareto front.
    assert raced_out(results([0.1] * 6, tokens=900), PROD, planned=9) is None
    assert raced_out(results([0.1] * 6, latency=3_000.0), PROD, planned=9) is None
    # Worse on four, better on two: p = 8/64 = 0.125, not confident yet.
    mixed = results([0.1, 0.1, 0.1, 0.1, 0.9, 0.9])
    assert raced_out(mixed, PROD, planned=9) is None
    # Worse on five, better on one by less: p = 2/64, and it is out.
    assert raced_out(results([0.1] * 5 + [0.9]), PROD, planned=9) is not None
    # Equal is not worse.
    assert raced_out(results([0.6] * 9), PROD, planned=9) is None


def test_cycles_skipped_for_budget_and_unknown_tasks_do_not_count() -> None:
    skipped = [r.model_copy(update={"outcome": "skipped_budget"}) for r in results([0.0] * 5)]
    assert raced_out(skipped, PROD, planned=9) is None
    stranger = [r.model_copy(update={"task_id": "other"}) for r in results([0.0] * 5)]
    assert raced_out(stranger, PROD, planned=9) is None


def test_a_raced_out_offspring_says_so_and_is_no_candidate() -> None:
    fitness = Fitness(score=0.1, mean_tokens=1_200, mean_latency_ms=4_500, tasks=5)
    kid = Individual(prompt_id="kid", fitness=fitness, origin="offspring",
                     raced_out="dominated by prod with confidence after 5 of 9 cycles")  # fmt: skip
    measured = Measured(
        prod_prompt_id="prod", parent_ids=["prod"], front=["prod"], evaluated=[kid],
        targets=TASKS[:5], controls=[], prod_scores=PROD.scores,
        scores={"kid": dict.fromkeys(TASKS[:5], 0.1)},
    )  # fmt: skip
    (verdict,) = offspring_verdicts([OffspringRecord(prompt_id="kid", operator="add")], measured)
    assert (verdict.cause, verdict.candidate) == ("raced_out", False)
    assert verdict.reason == (
        "raced out, not measured on every task: dominated by prod with confidence after 5 of "
        "9 cycles"
    )
