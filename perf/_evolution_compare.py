"""perf/evolution.py's comparison of the two searches: pure functions over stored runs.

A run is one campaign as ``perf/evolution.py`` records it (seed, search, and per
generation the cumulative research cycles, the archive's hypervolume and points, the
prod point); ``compare`` turns the runs of a benchmark into its summary. Kept apart from
the campaigns so they can be recomputed (``--summarise``) and tested without a lab.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from optimizer.selection import hypervolume

SEARCHES = ("nsga2", "random")
TARGET_RATIO = 1.2


def hypervolume_at(run: dict[str, Any], budget: int) -> float:
    """The archive hypervolume of the run's last generation within ``budget`` evaluations
    (0 when even the first generation spent more)."""
    within = [g for g in run["generations"] if g["cumulative_evaluations"] <= budget]
    return within[-1]["archive_hypervolume"] if within else 0.0


def headroom(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """How much room the start left, measured on what the benchmark found.

    ``start`` is the hypervolume of the start prompt alone (generation 0's prod point;
    the same for every campaign of one start). ``ceiling`` is that of the best front any
    campaign of this run found, searches pooled: the most a search could have reached as
    far as this benchmark knows. ``max_ratio`` (ceiling / start) bounds the ratio any
    search could show against one that found nothing: when it is below the target, the
    target cannot be met from this start, however good the search. ``perfect_ratio`` is a
    bound that needs no search at all: a prompt scoring 1 on every task at the start's
    tokens and latency, against the start."""
    points = [
        tuple(r["generations"][0]["prod_point"])
        for r in runs
        if r["generations"] and r["generations"][0].get("prod_point")
    ]
    found = [tuple(p) for r in runs for g in r["generations"] for p in g.get("archive_points", [])]
    if not points or not found:
        return {"start": None, "ceiling": None, "max_ratio": None, "perfect_ratio": None}
    start_point = min(points)  # one start: every campaign measured the same prompt
    start, ceiling = hypervolume([start_point]), hypervolume(found)
    perfect = hypervolume([(1.0, start_point[1], start_point[2])])
    return {
        "start": start,
        "ceiling": ceiling,
        "max_ratio": ceiling / start if start else None,
        "perfect_ratio": perfect / start if start else None,
    }


def share_of_headroom(hv: float, room: dict[str, Any]) -> float | None:
    """The part of the room between the start and the ceiling that ``hv`` covers."""
    if room["start"] is None or room["ceiling"] <= room["start"]:
        return None
    return (hv - room["start"]) / (room["ceiling"] - room["start"])


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign-test p-value of ``wins`` against ``losses`` (ties dropped): the
    chance of ``wins`` or more heads in ``wins + losses`` fair coin flips (Conover 1999,
    Practical Nonparametric Statistics, 3rd ed., §3.4)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per seed: the equal budget, both hypervolumes at it, their ratio and the share of
    the headroom each covered; then the median and range of the ratios, the median
    shares and a sign test of NSGA-II against random over the seeds."""
    room = headroom(runs)
    per_seed = []
    for seed in sorted({r["seed"] for r in runs}):
        pair = {r["search"]: r for r in runs if r["seed"] == seed}
        if set(pair) != set(SEARCHES) or not all(p["generations"] for p in pair.values()):
            continue
        budget = min(p["generations"][-1]["cumulative_evaluations"] for p in pair.values())
        hv = {s: hypervolume_at(pair[s], budget) for s in SEARCHES}
        ratio = hv["nsga2"] / hv["random"] if hv["random"] > 0 else None
        # What search added after generation 0 (the same for both: one parent, one seed).
        gain = {s: hv[s] - pair[s]["generations"][0]["archive_hypervolume"] for s in SEARCHES}
        saved = {s: sum(g["evaluations_saved"] for g in pair[s]["generations"]) for s in SEARCHES}
        share = {s: share_of_headroom(hv[s], room) for s in SEARCHES}
        per_seed.append(
            {"seed": seed, "budget": budget, "hypervolume": hv, "ratio": ratio, "gain": gain,
             "evaluations_saved": saved, "headroom_share": share}
        )  # fmt: skip
    ratios = [p["ratio"] for p in per_seed if p["ratio"] is not None]
    wins = sum(p["hypervolume"]["nsga2"] > p["hypervolume"]["random"] for p in per_seed)
    losses = sum(p["hypervolume"]["nsga2"] < p["hypervolume"]["random"] for p in per_seed)
    shares = {
        s: [p["headroom_share"][s] for p in per_seed if p["headroom_share"][s] is not None]
        for s in SEARCHES
    }
    return {
        "per_seed": per_seed,
        "ratio_median": statistics.median(ratios) if ratios else None,
        "ratio_range": [min(ratios), max(ratios)] if ratios else None,
        "target": TARGET_RATIO,
        "headroom": room,
        "headroom_share_median": {
            s: statistics.median(v) if v else None for s, v in shares.items()
        },
        "sign_test": {"wins": wins, "losses": losses, "p_value": sign_test(wins, losses)},
    }
