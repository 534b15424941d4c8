"""The random-search baseline's selection: survivors drawn with no regard to fitness.

Evolution has to prove it beats chance (GEPA and CAPO report their gains against simpler
search with the same number of evaluations). The baseline breeds with the same operators
(``breeding.propose(..., uniform=True)``: parents drawn uniformly instead of by
tournament) and keeps a uniformly drawn sample of everyone measured as the next
generation's parents, so selection pressure is the only difference. Its archive and
hypervolume are computed exactly as NSGA-II's: the non-dominated set of everything
measured, so the two searches compare at equal evaluations.
"""

from __future__ import annotations

import random
from collections.abc import Iterable


def random_survivors(keys: Iterable[str], k: int, seed: int) -> list[str]:
    """``k`` of ``keys`` (all when there are fewer) drawn uniformly with ``seed``; the
    same keys and seed always give the same survivors, whatever order the keys came in."""
    pool = sorted(set(keys))
    if k >= len(pool):
        return pool
    return sorted(random.Random(seed).sample(pool, k))
