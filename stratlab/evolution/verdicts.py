"""Why each offspring of a generation is, or is not, a candidate, and how many research
cycles a generation measured.

The candidate rule: an offspring on the generation's first front whose mean graded score
on the targets (tasks prod fails) beats prod's **significantly** (the paired
randomization test over the targets, ``paired_test``, p < ``SIGNIFICANCE``), that is not
significantly worse than prod over the controls (tasks prod passes), and on no control
falls more than ``CONTROL_TOLERANCE`` below prod's. One lucky task cannot make a
candidate: with n targets the least p-value is 2^-n, and better on one of six is p = 0.5.
A verdict names every rule an offspring fails ("not on the Pareto front: dominated by
prod on tokens; fails control task X"), so an offspring that scores more than prod and
is still no candidate says why. Pure functions of what the generation measured: the
store reads are the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from stratlab.evolution.paired_test import paired_p_value
from stratlab.models.optimization import (
    Individual,
    NotCandidateCause,
    OffspringRecord,
    OffspringVerdict,
    TaskResult,
)

CONTROL_TOLERANCE = 0.05
"""How far a control's score may fall below prod's before it counts as a regression. One
rollout of a real model's design moves a little from run to run (a lookback here, a
threshold there); losing a control moves it by far more (a discovery on noise scores at
most 0.05 where prod's rejection scored 1 - its deflated Sharpe)."""

SIGNIFICANCE = 0.05
"""The candidate rule's default level: better on the targets with p below it."""
CONTROL_SIGNIFICANCE = 0.05
"""Worse on the controls with p below it loses a candidate. Fixed, not the generation's
level: loosening the bar for "better" must not make a slight slip on the controls count
as a proven loss."""


@dataclass(frozen=True)
class Measured:
    """What a generation measured, as the candidate rule compares it."""

    prod_prompt_id: str
    parent_ids: Sequence[str]
    front: Sequence[str]
    evaluated: Sequence[Individual]
    targets: Sequence[str]
    controls: Sequence[str]
    prod_scores: Mapping[str, float] | None
    """Prod's mean score per task on the task set; None when prod has no run on it."""
    scores: Mapping[str, Mapping[str, float]]
    """Each measured offspring's mean score per task, by prompt id."""
    stopped_reason: str | None = None
    significance: float = SIGNIFICANCE
    """The level of the targets' test (``OptimizationInput.significance``)."""


def offspring_verdicts(
    offspring: Sequence[OffspringRecord], measured: Measured
) -> list[OffspringVerdict]:
    """One verdict per offspring: per registered prompt (a text bred twice is one prompt),
    and per child the checks turned away."""
    verdicts: list[OffspringVerdict] = []
    seen: set[str] = set()
    for child in offspring:
        if not child.accepted or not child.prompt_id:
            verdicts.append(
                OffspringVerdict(
                    prompt_id=child.prompt_id,
                    operator=child.operator,
                    cause="failed_checks",
                    reason=f"failed the checks: {child.reason or 'rejected'}",
                )
            )
        elif child.prompt_id not in seen:
            seen.add(child.prompt_id)
            cause, reason = _judge(child.prompt_id, measured)
            verdicts.append(
                OffspringVerdict(
                    prompt_id=child.prompt_id,
                    operator=child.operator,
                    candidate=cause == "candidate",
                    cause=cause,
                    reason=reason,
                )
            )
    return verdicts


_Failure = tuple[NotCandidateCause, str]
"""A rule an offspring fails: its cause and the sentence that says why."""


def _judge(prompt_id: str, m: Measured) -> _Failure:
    """The offspring's verdict: the first rule it fails (every failed rule's sentence in
    the reason), or ``candidate``."""
    if prompt_id in m.parent_ids:
        return "same_as_parent", f"same text as {_who(prompt_id, m)}: measured as a parent"
    member = next(
        (e for e in m.evaluated if e.prompt_id == prompt_id and e.origin == "offspring"), None
    )
    scores = m.scores.get(prompt_id)
    if member is None or member.fitness is None or scores is None:
        return "not_measured", f"not measured: {m.stopped_reason or 'its run measured no task'}"
    if member.raced_out:
        return "raced_out", f"raced out, not measured on every task: {member.raced_out}"
    if m.prod_scores is None:
        return "no_prod_run", "prod has no run on this task set to compare with"
    prod = m.prod_scores
    failed: list[_Failure] = []
    if prompt_id not in m.front:
        failed.append(("dominated", _dominated(member, m)))
    on_targets, p = _on_targets(scores, prod, m)
    failed += on_targets
    failed += _on_controls(scores, prod, m)
    if failed:
        return failed[0][0], "; ".join(text for _, text in failed)
    assert p is not None  # no target rule failed, so the targets' test ran
    mine, prods = _mean(scores, m.targets), _mean(prod, m.targets)
    return "candidate", (
        f"on the Pareto front, beats prod on the targets ({mine:.3f} vs {prods:.3f}, "
        f"p = {p:.3f}) and keeps {len(m.controls)} control(s)"
    )


def _on_targets(
    scores: Mapping[str, float], prod: Mapping[str, float], m: Measured
) -> tuple[list[_Failure], float | None]:
    """The target rule the offspring fails, if any, and the p-value of its test when the
    offspring's mean is above prod's (the test runs only then)."""
    mine, prods = _mean(scores, m.targets), _mean(prod, m.targets)
    if not m.targets:
        return [("no_targets", "no target task: prod fails none of the task set")], None
    if not mine > prods:
        return [
            (
                "not_better_on_targets",
                f"no better than prod on the targets (mean score {mine:.3f} vs {prods:.3f})",
            )
        ], None
    p = paired_p_value(_differences(scores, prod, m.targets))
    if p >= m.significance:
        return [
            (
                "not_significant_on_targets",
                f"better than prod on the targets ({mine:.3f} vs {prods:.3f}) but not "
                f"significantly: p = {p:.3f} over {len(m.targets)} target(s), needs < "
                f"{m.significance:g}",
            )
        ], p
    return [], p


def _on_controls(
    scores: Mapping[str, float], prod: Mapping[str, float], m: Measured
) -> list[_Failure]:
    """The control rules the offspring fails: significantly worse over the controls, and
    any one control falling more than ``CONTROL_TOLERANCE`` below prod's score."""
    failed: list[_Failure] = []
    known = [t for t in m.controls if t in prod]
    worse = paired_p_value(_differences(scores, prod, known), alternative="less")
    if known and worse < CONTROL_SIGNIFICANCE:
        failed.append(
            (
                "worse_on_controls",
                f"significantly worse than prod on the controls (mean score "
                f"{_mean(scores, known):.3f} vs {_mean(prod, known):.3f}, p = {worse:.3f})",
            )
        )
    lost = [t for t in m.controls if t in prod and scores.get(t, 0.0) < prod[t] - CONTROL_TOLERANCE]
    if lost:
        more = f", and {len(lost) - 1} more" if len(lost) > 1 else ""
        failed.append(
            (
                "loses_control",
                f"fails control task {lost[0]} (score {scores.get(lost[0], 0.0):.3f} vs "
                f"prod {prod[lost[0]]:.3f}{more})",
            )
        )
    return failed


def _dominated(member: Individual, m: Measured) -> str:
    """Who dominates ``member`` (prod if it does, else the best of the front) and where."""
    assert member.fitness is not None
    mine = member.fitness
    others = [
        e
        for e in m.evaluated
        if e.fitness is not None and e.prompt_id != member.prompt_id and e.fitness.dominates(mine)
    ]
    if not others:  # only an equal point keeps it off the front
        return "not on the Pareto front"
    best = next((e for e in others if e.prompt_id == m.prod_prompt_id), None) or min(
        others, key=lambda e: (e.prompt_id not in m.front, *_rank(e), e.prompt_id)
    )
    assert best.fitness is not None
    return (
        f"not on the Pareto front: dominated by {_who(best.prompt_id, m)} on "
        f"{_listed(best.fitness.better_on(mine))}"
    )


def _listed(words: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _rank(member: Individual) -> tuple[float, float, float]:
    f = member.fitness
    assert f is not None
    return (-f.score, f.mean_tokens, f.mean_latency_ms)


def _who(prompt_id: str, m: Measured) -> str:
    if prompt_id == m.prod_prompt_id:
        return "prod"
    kind = "parent" if prompt_id in m.parent_ids else "offspring"
    return f"{kind} {prompt_id[:8]}"


def _differences(
    scores: Mapping[str, float], prod: Mapping[str, float], tasks: Sequence[str]
) -> list[float]:
    """Per task, the offspring's score less prod's (a task not measured counts 0)."""
    return [scores.get(t, 0.0) - prod.get(t, 0.0) for t in tasks]


def _mean(scores: Mapping[str, float], tasks: Sequence[str]) -> float:
    """The mean score over ``tasks`` (a task not measured counts 0); 0 for no tasks."""
    return sum(scores.get(t, 0.0) for t in tasks) / len(tasks) if tasks else 0.0


def rollout_scores(results: Sequence[TaskResult]) -> dict[str, list[float]]:
    """Each task's measured rollout scores, in the order given (a cycle skipped for budget
    measured nothing)."""
    scores: dict[str, list[float]] = {}
    for r in results:
        if r.outcome != "skipped_budget":
            scores.setdefault(r.task_id, []).append(r.score)
    return scores


def score_by_task(results: Sequence[TaskResult]) -> dict[str, float]:
    """A task's score: the mean over its measured rollouts."""
    return {task: sum(v) / len(v) for task, v in rollout_scores(results).items()}


# --- evaluations ------------------------------------------------------------------------------


class ResultSource(Protocol):
    async def results(self, experiment_id: str) -> list[TaskResult]: ...


async def measured_cycles(source: ResultSource, experiment_ids: Iterable[str]) -> int:
    """Research cycles measured by these regression runs: one per task result, each run
    once, a cycle skipped for budget not counted. A run that reused an earlier measurement
    has no results of its own and adds nothing. The live ``optimize`` table and the
    recorded generation both count this way, so the live count ends where the record
    starts."""
    total = 0
    for experiment_id in dict.fromkeys(experiment_ids):
        results = await source.results(experiment_id)
        total += sum(1 for r in results if r.outcome != "skipped_budget")
    return total
