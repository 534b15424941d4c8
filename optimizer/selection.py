"""NSGA-II survivor selection, fronts, archive and hypervolume on DEAP, keyed by prompt id.

Points are ``(score ↑, mean_tokens ↓, mean_latency_ms ↓)``, as
``stratlab.models.optimization.Fitness.objectives()`` returns them: ``score`` is the mean
graded task score in [0, 1] (deflated Sharpe probability times the share of criteria met;
on noise tasks one minus it), which stays informative where the success rate is near 0.
Every function sorts its keys before handing individuals to DEAP, whose ties are broken
by input order, so a result depends only on the points, never on dict order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean
from typing import Any

from deap import base, tools  # type: ignore[import-untyped]
from deap.benchmarks import tools as benchmark_tools  # type: ignore[import-untyped]
from deap.tools.emo import assignCrowdingDist  # type: ignore[import-untyped]

Point = tuple[float, float, float]

REFERENCE: Point = (0.0, 20_000.0, 60_000.0)
"""The fixed hypervolume reference: score 0, 20k tokens and 60 s latency per task.

Fixed rather than derived from the population, so hypervolumes of different generations
and campaigns are comparable; a prompt worse than it on any axis adds nothing."""

OBJECTIVES: tuple[str, ...] = ("score", "tokens", "latency")


class PromptFitness(base.Fitness):  # type: ignore[misc]
    """Score is maximised, tokens and latency minimised.

    A plain subclass instead of ``creator.create``, which would register a class in
    DEAP's global ``creator`` module."""

    weights = (1.0, -1.0, -1.0)


class PromptIndividual:
    """What DEAP's selection needs of an individual: a ``fitness``; ``key`` names it."""

    __slots__ = ("fitness", "key")

    def __init__(self, key: str, point: Point) -> None:
        self.key = key
        self.fitness = PromptFitness(_checked(key, point))


def select_survivors(points: Mapping[str, Point], k: int) -> list[str]:
    """The ``k`` keys NSGA-II keeps (``selNSGA2``, log-time non-dominated sort): whole
    fronts first, the last front cut by crowding distance. Ordered by front, then key."""
    if k <= 0 or not points:
        return []
    chosen = tools.selNSGA2(_individuals(points), min(k, len(points)), nd="log")
    rank = front_ranks(points)
    return sorted((ind.key for ind in chosen), key=lambda key: (rank[key], key))


def nondominated_sort(points: Mapping[str, Point]) -> list[list[str]]:
    """Keys by non-dominated front, front 0 (the Pareto front) first, keys sorted."""
    if not points:
        return []
    fronts = tools.sortLogNondominated(_individuals(points), len(points))
    return [sorted(ind.key for ind in front) for front in fronts]


def front_ranks(points: Mapping[str, Point]) -> dict[str, int]:
    """Each key's front in ``nondominated_sort``: 0 for the Pareto front, 1 for what only
    front 0 dominates, and so on."""
    return {key: rank for rank, front in enumerate(nondominated_sort(points)) for key in front}


def crowding(points: Mapping[str, Point]) -> dict[str, float]:
    """NSGA-II crowding distance of each key within its own front (``inf`` at the ends)."""
    distances: dict[str, float] = {}
    if not points:
        return distances
    for front in tools.sortLogNondominated(_individuals(points), len(points)):
        assignCrowdingDist(front)
        distances.update({ind.key: float(ind.fitness.crowding_dist) for ind in front})
    return distances


def hypervolume(points: Sequence[Point], reference: Point = REFERENCE) -> float:
    """Hypervolume of ``points`` against ``reference``, normalised to [0, 1].

    Volume is measured in minimisation space ``(-score, tokens, latency)`` (DEAP's
    ``benchmarks.tools.hypervolume`` negates weighted values) and divided by the box
    between the ideal point (score 1, no tokens, no latency) and the reference, so 1
    means a perfect prompt. Points not strictly better than the reference on every axis
    contribute nothing and are dropped before DEAP sees them."""
    ref_score, ref_tokens, ref_latency = reference
    if not (ref_score < 1.0 and ref_tokens > 0.0 and ref_latency > 0.0):
        raise ValueError(f"reference must leave room below the ideal point: {reference}")
    inside = [
        (min(s, 1.0), max(t, 0.0), max(lat, 0.0))
        for s, t, lat in (_checked("point", p) for p in points)
        if s > ref_score and t < ref_tokens and lat < ref_latency
    ]
    if not inside:
        return 0.0
    front = [PromptIndividual(str(i), p) for i, p in enumerate(inside)]
    volume = benchmark_tools.hypervolume(front, ref=[-ref_score, ref_tokens, ref_latency])
    return min(1.0, float(volume) / ((1.0 - ref_score) * ref_tokens * ref_latency))


def archive_update(archive: Mapping[str, Point], new: Mapping[str, Point]) -> list[str]:
    """Sorted keys of the non-dominated points of ``archive`` ∪ ``new``.

    A key in both takes its ``new`` point (a re-measurement). Of several keys with
    identical points only the lexicographically smallest is kept, so the archive does not
    fill up with copies. Nothing of the old front is lost without a point that dominates
    it, so the archive's hypervolume never decreases."""
    union = {**archive, **new}
    first: dict[Point, str] = {}
    for key in sorted(union):
        first.setdefault(_checked(key, union[key]), key)
    unique = {key: point for point, key in first.items()}
    fronts = nondominated_sort(unique)
    return fronts[0] if fronts else []


def logbook_record(gen: int, points: Mapping[str, Point], evaluations: int) -> dict[str, Any]:
    """One generation's statistics as a flat dict of plain ints and floats.

    Flat (``score_min``, ``tokens_avg``, ...) so it fits
    ``GenerationRecord.logbook`` (``dict[str, float | int | str]``) and JSON, and can
    still go to ``tools.Logbook.record(**record)``. The min/max/avg keys are left out
    when there are no points. ``front_size`` is the size of front 0, ``hypervolume``
    that of all points against ``REFERENCE``."""
    record: dict[str, Any] = {
        "gen": int(gen),
        "evals": int(evaluations),
        "size": len(points),
        "front_size": len(nondominated_sort(points)[0]) if points else 0,
        "hypervolume": hypervolume(list(points.values())),
    }
    if not points:
        return record
    stats = tools.MultiStatistics(
        {
            name: tools.Statistics(key=lambda ind, i=i: float(ind.fitness.values[i]))
            for i, name in enumerate(OBJECTIVES)
        }
    )
    stats.register("min", min)
    stats.register("max", max)
    stats.register("avg", fmean)
    for chapter, values in stats.compile(_individuals(points)).items():
        record.update({f"{chapter}_{name}": float(v) for name, v in values.items()})
    return record


def _individuals(points: Mapping[str, Point]) -> list[PromptIndividual]:
    return [PromptIndividual(key, points[key]) for key in sorted(points)]


def _checked(key: str, point: Iterable[float]) -> Point:
    values = tuple(float(v) for v in point)
    if len(values) != 3 or any(math.isnan(v) for v in values):
        raise ValueError(f"{key}: expected three numbers (score, tokens, latency), got {point}")
    return values[0], values[1], values[2]
