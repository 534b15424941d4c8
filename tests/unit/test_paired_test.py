"""The paired randomization test the candidate rule uses: exact values by hand, the
lucky-single-task case, symmetry, and agreement of the Monte Carlo branch with theory."""

from __future__ import annotations

import math

import pytest

from stratlab.evolution.paired_test import EXACT_UP_TO, paired_p_value


def test_all_better_on_n_tasks_gives_the_smallest_p_of_two_to_the_minus_n() -> None:
    for n in range(1, 9):
        assert paired_p_value([0.2] * n) == pytest.approx(2.0**-n)
    # Four of four better is still not significant at 0.05: 1/16 = 0.0625.
    assert paired_p_value([0.3, 0.1, 0.2, 0.4]) == pytest.approx(0.0625)


def test_one_lucky_task_is_not_significant() -> None:
    # Better by 0.9 on one task, equal on five: half of all sign assignments do as well.
    assert paired_p_value([0.9, 0, 0, 0, 0, 0]) == pytest.approx(0.5)


def test_hand_computed_mixed_signs() -> None:
    # Sums of +-1 +-2 +-3: (6, 4, 2, 0, 0, -2, -4, -6); observed 1 + 2 - 3 = 0, so the
    # assignments with a sum >= 0 are 5 of 8.
    assert paired_p_value([1.0, 2.0, -3.0]) == pytest.approx(5 / 8)
    assert paired_p_value([1.0, 2.0, -3.0], alternative="less") == pytest.approx(5 / 8)
    assert paired_p_value([-0.2] * 5, alternative="less") == pytest.approx(1 / 32)
    assert paired_p_value([-0.2] * 5) == 1.0


def test_no_tasks_and_bad_alternatives() -> None:
    assert paired_p_value([]) == 1.0
    with pytest.raises(ValueError, match="alternative"):
        paired_p_value([1.0], alternative="two-sided")  # type: ignore[arg-type]


def test_the_monte_carlo_branch_agrees_with_the_exact_value() -> None:
    n = EXACT_UP_TO + 4
    # All better: exact p = 2^-20, the estimate's floor is 1 / (draws + 1).
    assert paired_p_value([0.1] * n) < 2e-5
    # Half better, half worse by the same amount: the mean is 0, p a little over 1/2
    # (ties count): exact value by the binomial distribution of the sum's sign.
    d = [0.1] * (n // 2) + [-0.1] * (n // 2)
    exact = sum(math.comb(n, k) for k in range(n // 2, n + 1)) / 2**n
    assert paired_p_value(d, seed=3) == pytest.approx(exact, abs=0.01)
    assert paired_p_value(d, seed=3) == paired_p_value(d, seed=3)
