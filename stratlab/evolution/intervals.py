"""How sure a regression run's score is: a 95 % interval from the spread of its rollouts.

A prompt's score is the mean over its tasks of each task's mean rollout score. The tasks
are fixed (the same for every prompt a generation compares), so the noise in the score is
the rollouts' noise within each task: with the tasks as strata of equal weight ``1/n``,
the variance of the mean is that of a stratified sample mean (Cochran 1977, *Sampling
Techniques*, 3rd ed., eq. 5.6):

    V(score) = sum_h W_h^2 * s_h^2 / r_h,    W_h = 1/n,

with ``s_h^2`` the sample variance of task h's ``r_h`` rollouts. The interval is
``score +- t * sqrt(V)``, clipped to the score's range [0, 1], with ``t`` Student's 97.5 %
quantile at Satterthwaite's effective degrees of freedom (Satterthwaite 1946, eq. 17;
Cochran eq. 5.16): ``(sum a_h s_h^2)^2 / sum (a_h s_h^2)^2 / (r_h - 1)``, ``a_h = W_h^2 /
r_h``. With a few rollouts a task the normal quantile would be too narrow (it covered
92-93 % where 95 % was asked, in the coverage test's simulation). It needs at least two
rollouts of every task: with one (the default, and all the deterministic offline
provider needs) the noise was not measured, and there is no interval rather than a
zero-width one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from scipy import stats


def score_interval(rollouts: Mapping[str, Sequence[float]]) -> tuple[float, float] | None:
    """The 95 % interval of the mean task score from each task's rollout scores, or None
    when a task has fewer than two rollouts (its noise is unknown)."""
    if not rollouts or any(len(scores) < 2 for scores in rollouts.values()):
        return None
    n = len(rollouts)
    centre = statistics.fmean(statistics.fmean(scores) for scores in rollouts.values())
    # a_h * s_h^2 per task, and its degrees of freedom r_h - 1
    parts = [(statistics.variance(s) / len(s) / n**2, len(s) - 1) for s in rollouts.values()]
    variance = sum(part for part, _ in parts)
    if variance == 0.0:  # every task's rollouts agree
        return centre, centre
    dof = variance**2 / sum(part**2 / df for part, df in parts)
    half = float(stats.t.ppf(0.975, dof)) * math.sqrt(variance)
    return max(0.0, centre - half), min(1.0, centre + half)
