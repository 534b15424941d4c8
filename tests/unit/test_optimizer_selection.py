"""NSGA-II selection, fronts, crowding, hypervolume and the archive, checked by hand and by
brute force."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
from deap import creator, tools  # type: ignore[import-untyped]

from optimizer.selection import (
    REFERENCE,
    Point,
    PromptFitness,
    archive_update,
    crowding,
    hypervolume,
    logbook_record,
    nondominated_sort,
    select_survivors,
)
from stratlab.models.optimization import Fitness, GenerationRecord


def dominates(p: Point, q: Point) -> bool:
    """p is at least as good everywhere and better somewhere (success ↑, the rest ↓)."""
    better_or_equal = p[0] >= q[0] and p[1] <= q[1] and p[2] <= q[2]
    return better_or_equal and p != q


def random_points(rng: random.Random, n: int, prefix: str = "k") -> dict[str, Point]:
    # Coarse grids make ties and duplicates common, where sorting bugs hide.
    return {
        f"{prefix}{i}": (
            rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]),
            float(rng.choice([1_000, 4_000, 9_000, 15_000, 25_000])),
            float(rng.choice([5_000, 20_000, 45_000, 70_000])),
        )
        for i in range(n)
    }


def union_volume(points: list[Point]) -> float:
    """Exact normalised hypervolume by inclusion-exclusion over the boxes [p, ideal]."""
    boxes = [
        (p[0], p[1] / REFERENCE[1], p[2] / REFERENCE[2])
        for p in points
        if p[0] > 0 and p[1] < REFERENCE[1] and p[2] < REFERENCE[2]
    ]
    total = 0.0
    for size in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, size):
            s = min(b[0] for b in subset)
            t = 1 - max(b[1] for b in subset)
            lat = 1 - max(b[2] for b in subset)
            total += (-1) ** (size + 1) * s * t * lat
    return total


POINTS: dict[str, Point] = {
    "best-success": (0.8, 5_000.0, 10_000.0),
    "cheapest": (0.5, 1_000.0, 3_000.0),
    "balanced": (0.6, 3_000.0, 6_000.0),
    "dominated": (0.5, 5_000.0, 10_000.0),
    "worst": (0.1, 9_000.0, 30_000.0),
}


def test_fitness_class_does_not_touch_deaps_global_creator() -> None:
    assert PromptFitness.weights == (1.0, -1.0, -1.0)
    assert not hasattr(creator, "PromptFitness")


def test_survivors_keep_the_whole_front_and_drop_the_dominated() -> None:
    assert select_survivors(POINTS, 3) == ["balanced", "best-success", "cheapest"]
    assert select_survivors(POINTS, 4) == ["balanced", "best-success", "cheapest", "dominated"]
    assert select_survivors(POINTS, 10) == [
        "balanced",
        "best-success",
        "cheapest",
        "dominated",
        "worst",
    ]
    assert select_survivors(POINTS, 0) == [] and select_survivors({}, 3) == []


def test_survivors_keep_every_non_dominated_point_on_random_populations() -> None:
    for seed in range(100):
        rng = random.Random(seed)
        points = random_points(rng, rng.randint(1, 20))
        front = [k for k, p in points.items() if not any(dominates(q, p) for q in points.values())]
        k = rng.randint(len(front), len(points))
        chosen = select_survivors(points, k)
        assert len(chosen) == k and set(front) <= set(chosen)
        # Input order does not matter.
        shuffled = dict(rng.sample(sorted(points.items()), len(points)))
        assert select_survivors(shuffled, k) == chosen


def test_survivors_cut_the_last_front_by_crowding() -> None:
    # Four points on one front: the two extremes have infinite crowding distance.
    front = {
        "a": (0.2, 1_000.0, 1_000.0),
        "b": (0.4, 2_000.0, 2_000.0),
        "c": (0.5, 2_500.0, 2_500.0),
        "d": (0.8, 4_000.0, 4_000.0),
    }
    assert select_survivors(front, 2) == ["a", "d"]
    # Crowding: b has 3 * (0.5 - 0.2) / (3 * 0.6) = 0.5, c has 3 * (0.8 - 0.4) / 1.8 = 0.67.
    assert crowding(front)["b"] == pytest.approx(0.5)
    assert select_survivors(front, 3) == ["a", "c", "d"]


def test_nondominated_sort_matches_brute_force() -> None:
    assert nondominated_sort(POINTS) == [
        ["balanced", "best-success", "cheapest"],
        ["dominated"],
        ["worst"],
    ]
    for seed in range(100):
        rng = random.Random(seed)
        points = random_points(rng, rng.randint(1, 25))
        remaining = dict(points)
        expected = []
        while remaining:
            front = sorted(
                k
                for k, p in remaining.items()
                if not any(dominates(q, p) for q in remaining.values())
            )
            expected.append(front)
            for key in front:
                del remaining[key]
        assert nondominated_sort(points) == expected
    assert nondominated_sort({}) == []


def test_crowding_is_infinite_at_the_ends_and_hand_checked_inside() -> None:
    distances = crowding(
        {"a": (0.0, 0.0, 0.0), "b": (0.5, 1.0, 1.0), "c": (1.0, 4.0, 4.0), "z": (0.0, 9.0, 9.0)}
    )
    assert distances["a"] == distances["c"] == math.inf
    # b: per objective (next - prev) / (3 * range): 1/3 + 4/12 + 4/12.
    assert distances["b"] == pytest.approx(1.0)
    # z is alone in front 1.
    assert distances["z"] == math.inf


def test_hypervolume_hand_checked() -> None:
    assert hypervolume([(0.5, 10_000.0, 30_000.0)]) == pytest.approx(0.125)
    two = [(0.5, 10_000.0, 30_000.0), (1.0, 15_000.0, 45_000.0)]
    # 0.125 + 1 * 0.25 * 0.25 - overlap 0.5 * 0.25 * 0.25.
    assert hypervolume(two) == pytest.approx(0.15625)
    assert hypervolume([(1.0, 0.0, 0.0)]) == pytest.approx(1.0)
    assert hypervolume([]) == 0.0
    # On or beyond the reference on any axis: nothing.
    assert hypervolume([(0.0, 1.0, 1.0), (0.9, 20_000.0, 1.0), (0.9, 1.0, 70_000.0)]) == 0.0
    # A dominated point adds nothing.
    assert hypervolume([*two, (0.4, 12_000.0, 40_000.0)]) == pytest.approx(0.15625)
    custom = hypervolume([(0.5, 10_000.0, 30_000.0)], reference=(0.0, 40_000.0, 60_000.0))
    assert custom == pytest.approx(0.5 * 0.75 * 0.5)
    with pytest.raises(ValueError):
        hypervolume([(0.5, 1.0, 1.0)], reference=(1.0, 1.0, 1.0))


def test_hypervolume_matches_inclusion_exclusion() -> None:
    for seed in range(60):
        rng = random.Random(seed)
        points = list(random_points(rng, rng.randint(1, 7)).values())
        value = hypervolume(points)
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx(union_volume(points), abs=1e-12)


def test_archive_update_keeps_the_non_dominated_union() -> None:
    assert archive_update({}, POINTS) == ["balanced", "best-success", "cheapest"]
    archive = {"old": (0.6, 3_000.0, 6_000.0), "kept": (0.9, 9_000.0, 9_000.0)}
    # An exact duplicate keeps the smaller key; a re-measured key takes its new point.
    new = {"balanced": (0.6, 3_000.0, 6_000.0), "kept": (0.1, 9_000.0, 9_000.0)}
    assert archive_update(archive, new) == ["balanced"]
    assert archive_update({"a": (0.5, 1.0, 1.0)}, {"b": (0.6, 1.0, 1.0)}) == ["b"]


def test_archive_hypervolume_never_decreases() -> None:
    rng = random.Random(2024)
    archive: dict[str, Point] = {}
    previous = 0.0
    grew = 0
    for generation in range(40):
        batch = random_points(rng, rng.randint(1, 8), prefix=f"g{generation}-")
        union = {**archive, **batch}
        archive = {key: union[key] for key in archive_update(archive, batch)}
        value = hypervolume(list(archive.values()))
        assert value >= previous - 1e-12
        grew += value > previous
        previous = value
        assert all(not dominates(q, p) for p in archive.values() for q in archive.values())
    assert grew >= 2 and previous > 0.5


def test_nsga_climbs_the_graded_score_where_every_success_rate_is_zero() -> None:
    """Under honest gates nothing passes; the score still orders the prompts."""
    fitness = {
        "closer": Fitness(score=0.42, success_rate=0.0, mean_tokens=3_000, mean_latency_ms=5_000),
        "further": Fitness(score=0.11, success_rate=0.0, mean_tokens=3_000, mean_latency_ms=5_000),
        "cheap": Fitness(score=0.05, success_rate=0.0, mean_tokens=1_000, mean_latency_ms=2_000),
        "nothing": Fitness(score=0.0, success_rate=0.0, mean_tokens=4_000, mean_latency_ms=6_000),
    }
    points = {k: f.objectives() for k, f in fitness.items()}
    assert nondominated_sort(points)[0] == ["cheap", "closer"]
    assert select_survivors(points, 1)[0] in ("cheap", "closer")
    assert "further" not in select_survivors(points, 2)
    assert hypervolume([points["closer"]]) > hypervolume([points["further"]]) > 0.0


def test_logbook_record_is_plain_json_and_fits_the_generation_record() -> None:
    points = {
        k: Fitness(score=p[0], mean_tokens=p[1], mean_latency_ms=p[2]).objectives()
        for k, p in POINTS.items()
    }
    record = logbook_record(3, points, evaluations=5)
    assert record["gen"] == 3 and record["evals"] == 5
    assert record["size"] == 5 and record["front_size"] == 3
    assert record["score_max"] == 0.8 and record["tokens_min"] == 1_000.0
    assert record["latency_avg"] == pytest.approx(59_000.0 / 5)
    assert record["hypervolume"] == pytest.approx(hypervolume(list(points.values())))
    assert json.loads(json.dumps(record)) == record
    assert all(type(v) in (int, float) for v in record.values())
    GenerationRecord(generation=3, seed=1, logbook=[record])
    logbook = tools.Logbook()
    logbook.record(**record)
    assert logbook.select("front_size") == [3]
    empty = logbook_record(0, {}, 0)
    assert empty == {"gen": 0, "evals": 0, "size": 0, "front_size": 0, "hypervolume": 0.0}
