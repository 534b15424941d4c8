"""Is one prompt better than another on the same tasks, beyond what chance would give?

The candidate rule compares an offspring with prod task by task: each task was measured
for both, so the differences are paired. Under the null hypothesis that the two prompts
are exchangeable, each task's difference is as likely to have either sign, so the
observed mean difference is compared with the means of all 2^n sign assignments: the
paired randomization test (Fisher 1935, "The Design of Experiments", §21; Pitman 1937,
"Significance tests which may be applied to samples from any populations", JRSS Suppl.
4, eq. 1). It needs no distributional assumption, which matters for graded scores in
[0, 1] that pile up at 0 and 1, and it is exact: with n tasks the smallest p-value it
can give is 2^-n, so an offspring that is better on one task by luck (or on four of four)
cannot be significant at 0.05, and that is the point.

Exact enumeration up to ``EXACT_UP_TO`` tasks; above it a seeded Monte Carlo sample of
sign assignments (the estimate counts the observed assignment, so it is never 0;
Phipson & Smyth 2010, "Permutation p-values should never be zero", eq. 2).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np

EXACT_UP_TO = 16
"""2^16 = 65,536 sign assignments: enumerated in milliseconds."""
MONTE_CARLO_DRAWS = 100_000
_TOLERANCE = 1e-12  # equal means (ties) count as at least as extreme


def paired_p_value(
    differences: Sequence[float],
    *,
    alternative: Literal["greater", "less"] = "greater",
    seed: int = 0,
) -> float:
    """One-sided p-value of the paired randomization test for ``differences`` (a - b per
    task): the chance, under exchangeability, of a mean difference at least as large
    (``greater``) or as small (``less``) as observed. 1.0 for no differences."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return 1.0
    if alternative == "less":
        d = -d
    elif alternative != "greater":
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    observed = d.sum()
    if d.size <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        sums = signs @ d
        return float(np.mean(sums >= observed - _TOLERANCE))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(MONTE_CARLO_DRAWS, d.size))
    extreme = int(np.count_nonzero(signs @ d >= observed - _TOLERANCE))
    return (extreme + 1) / (MONTE_CARLO_DRAWS + 1)
