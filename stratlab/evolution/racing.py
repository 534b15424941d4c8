"""Racing: stop measuring a prompt once it is dominated with confidence.

An offspring is measured on every task of the generation's set, one research cycle per
task. Most offspring are no better than prod, and many are clearly worse after a few
tasks; the cycles spent on the rest of their tasks change no decision. Racing (Maron &
Moore 1997, "The racing algorithm: model selection for lazy learners", Artificial
Intelligence Review 11; used for prompts by CAPO, Zehle et al. 2025) stops evaluating a
candidate as soon as the evidence says it loses.

Here "loses" means dominated by prod on the generation's three objectives, with
confidence on the noisy one: on the tasks measured so far the score is worse than prod's
by the paired randomization test (``paired_test``, one-sided, p below the generation's
significance level, after at least ``min_tasks`` tasks), and the mean tokens and latency
are no better than prod's. A prompt that is worse but cheaper may still belong on the
Pareto front, so it is never raced out. The decision is a pure function of the results
so far, so the workflow can make it between two cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from stratlab.evolution.paired_test import paired_p_value
from stratlab.evolution.verdicts import score_by_task
from stratlab.models.optimization import RaceAgainst, TaskResult


def raced_out(results: Sequence[TaskResult], against: RaceAgainst, *, planned: int) -> str | None:
    """Why the run of these ``results`` should start no more cycles (None: go on)."""
    measured = [r for r in results if r.outcome != "skipped_budget" and r.task_id in against.scores]
    by_task = score_by_task(measured)
    if len(by_task) < against.min_tasks:
        return None
    differences = [score - against.scores[t] for t, score in by_task.items()]
    p = paired_p_value(differences, alternative="less")
    tokens = fmean(r.tokens for r in measured)
    latency = fmean(r.latency_ms for r in measured)
    if p >= against.significance or tokens < against.mean_tokens:
        return None
    if latency < against.mean_latency_ms:
        return None
    mine = fmean(by_task.values())
    theirs = fmean(against.scores[t] for t in by_task)
    return (
        f"dominated by prod with confidence after {len(measured)} of {planned} cycles: "
        f"score {mine:.3f} vs {theirs:.3f} (p = {p:.3f}), tokens {tokens:,.0f} vs "
        f"{against.mean_tokens:,.0f}, latency {latency:,.0f} vs {against.mean_latency_ms:,.0f} ms"
    )
