"""perf/_evolution_compare.py: equal budget, room left by the start, sign test."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer.selection import hypervolume
from perf._evolution_compare import compare, headroom, sign_test

START = [0.5, 2_000.0, 6_000.0]
BETTER = [0.9, 2_000.0, 6_000.0]


Step = tuple[int, float, list[list[float]]]


def run(seed: int, search: str, steps: list[Step]) -> dict[str, Any]:
    """A campaign: per generation (cumulative cycles, archive hypervolume, archive points)."""
    return {
        "seed": seed,
        "search": search,
        "generations": [
            {"generation": i, "prod_point": START, "cumulative_evaluations": spent,
             "archive_hypervolume": hv, "archive_points": points, "evaluations_saved": 0}
            for i, (spent, hv, points) in enumerate(steps)
        ],
    }  # fmt: skip


def test_sign_test_is_the_binomial_tail() -> None:
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(0, 5) == 1.0
    assert sign_test(3, 2) == pytest.approx(16 / 32)  # C(5,3)+C(5,4)+C(5,5) = 16
    assert sign_test(0, 0) == 1.0


def test_the_room_is_bounded_by_the_best_front_any_campaign_found() -> None:
    start, best = hypervolume([tuple(START)]), hypervolume([tuple(BETTER)])
    runs = [
        run(1, "nsga2", [(80, start, [START]), (150, best, [BETTER])]),
        run(1, "random", [(80, start, [START]), (150, start, [START])]),
    ]
    room = headroom(runs)
    assert room["start"] == pytest.approx(start)
    assert room["ceiling"] == pytest.approx(best)
    assert room["max_ratio"] == pytest.approx(best / start)  # 0.9 / 0.5 on the score axis
    assert room["max_ratio"] == pytest.approx(1.8)
    assert room["perfect_ratio"] == pytest.approx(2.0)  # a score of 1 against 0.5


def test_compare_at_equal_budget_counts_shares_and_wins() -> None:
    start, best = hypervolume([tuple(START)]), hypervolume([tuple(BETTER)])
    runs = [
        # NSGA-II spent more: only what it had within random's 140 cycles counts.
        run(1, "nsga2", [(80, start, [START]), (130, best, [BETTER]), (200, best, [BETTER])]),
        run(1, "random", [(80, start, [START]), (140, start, [START])]),
        run(2, "nsga2", [(80, start, [START]), (140, start, [START])]),
        run(2, "random", [(80, start, [START]), (140, start, [START])]),
    ]
    summary = compare(runs)
    first, second = summary["per_seed"]
    assert first["budget"] == 140 and first["ratio"] == pytest.approx(best / start)
    assert first["headroom_share"] == {"nsga2": pytest.approx(1.0), "random": pytest.approx(0.0)}
    assert second["ratio"] == pytest.approx(1.0)
    assert summary["sign_test"] == {"wins": 1, "losses": 0, "p_value": pytest.approx(0.5)}
