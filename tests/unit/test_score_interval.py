"""The score's 95 % interval over rollouts: Cochran's stratified variance with
Satterthwaite's degrees of freedom, checked by hand and by its coverage on simulated noisy
rollouts."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from stratlab.evolution.intervals import score_interval


def test_interval_by_hand() -> None:
    rollouts = {"a": [0.2, 0.4, 0.6, 0.8], "b": [0.5, 0.7, 0.6, 0.6]}
    # means 0.5 and 0.6; sample variances 0.2/3 and 0.02/3 over 4 rollouts, weights 1/2
    a, b = (0.2 / 3) / 4 / 4, (0.02 / 3) / 4 / 4
    dof = (a + b) ** 2 / (a**2 / 3 + b**2 / 3)  # Satterthwaite
    half = stats.t.ppf(0.975, dof) * math.sqrt(a + b)
    assert score_interval(rollouts) == pytest.approx((0.55 - half, 0.55 + half))


def test_two_rollouts_of_one_task_say_little() -> None:
    # one degree of freedom: Student's quantile is 12.7, and the interval is the whole range
    assert score_interval({"a": [0.0, 1.0], "b": [0.5, 0.5]}) == (0.0, 1.0)


def test_rollouts_that_agree_give_a_point() -> None:
    assert score_interval({"a": [0.3, 0.3, 0.3], "b": [0.9, 0.9]}) == pytest.approx((0.6, 0.6))


@pytest.mark.parametrize(
    "rollouts", [{}, {"a": [0.4]}, {"a": [0.4, 0.6], "b": [0.9]}], ids=["none", "one", "mixed"]
)
def test_no_interval_without_two_rollouts_of_every_task(rollouts: dict[str, list[float]]) -> None:
    assert score_interval(rollouts) is None


def test_covers_the_true_score_about_95_percent_of_the_time() -> None:
    # 12 tasks of fixed difficulty, 5 noisy rollouts each (a pass-or-partial score), 2,000
    # campaigns: the interval should hold the true mean score in about 95 % of them.
    rng = random.Random(7)
    difficulty = [rng.uniform(0.1, 0.9) for _ in range(12)]
    true_score = sum(0.2 + 0.8 * p for p in difficulty) / len(difficulty)
    covered = 0
    for _ in range(2000):
        rollouts = {
            f"t{i}": [1.0 if rng.random() < p else 0.2 for _ in range(5)]
            for i, p in enumerate(difficulty)
        }
        interval = score_interval(rollouts)
        assert interval is not None
        covered += interval[0] <= true_score <= interval[1]
    assert 0.93 <= covered / 2000 <= 0.97
