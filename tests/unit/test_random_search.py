"""The random-search baseline: the same operators and budget as NSGA-II, no selection
pressure, reproducible from its seed."""

from __future__ import annotations

from collections import Counter

from activities.evolution import OptimizerActivities
from optimizer.breeding import Parent, propose
from optimizer.genome import parse, render, with_instructions
from optimizer.random_search import random_survivors
from stratlab.evolution.library import answer_examples, instruction_library
from stratlab.llm.prompts import DEFAULT_PROMPTS
from stratlab.models.optimization import Fitness, Individual, SelectInput

LIBRARY = instruction_library("designer")
EXAMPLES = answer_examples("designer")


def _parents() -> list[Parent]:
    """Two parents: ``best`` dominates ``worst`` on every objective."""
    prompt = DEFAULT_PROMPTS["designer"]
    base = parse(prompt.system, prompt.content)
    other = with_instructions(base, ["Keep the strategy simple."])
    return [
        Parent("best", *render(base), (0.9, 1_000.0, 500.0)),
        Parent("worst", *render(other), (0.1, 9_000.0, 5_000.0)),
    ]


def _sources(children: list, parent_ids: set[str]) -> Counter[str]:
    """How often each parent was the single source of a mutated child."""
    return Counter(c.parent_ids[0] for c in children if len(c.parent_ids) == 1)


def test_uniform_breeding_uses_the_same_operators_and_ignores_fitness() -> None:
    parents = _parents()
    tournament = Counter[str]()
    uniform = Counter[str]()
    operators: dict[bool, set[str]] = {False: set(), True: set()}
    for seed in range(60):
        for flag, tally in ((False, tournament), (True, uniform)):
            children = propose(parents, 6, seed, LIBRARY, EXAMPLES, uniform=flag)
            assert len(children) == 6  # the same budget of children
            operators[flag] |= {c.operator.split("+")[0] for c in children}
            tally.update(_sources(children, {"best", "worst"}))
    # The same operators breed in both searches.
    assert operators[True] == operators[False]
    # A binary tournament between two parents always picks the dominant one...
    assert tournament["worst"] == 0 and tournament["best"] > 100
    # ...the baseline picks either with equal chance (about 1/2; 3 sigma at n ~ 180).
    share = uniform["worst"] / (uniform["worst"] + uniform["best"])
    assert 0.38 < share < 0.62


def test_uniform_breeding_is_reproducible_from_the_seed() -> None:
    parents = _parents()
    first = propose(parents, 8, 11, LIBRARY, EXAMPLES, uniform=True)
    assert first == propose(parents, 8, 11, LIBRARY, EXAMPLES, uniform=True)
    assert first != propose(parents, 8, 12, LIBRARY, EXAMPLES, uniform=True)


def test_random_survivors_are_a_seeded_uniform_sample() -> None:
    keys = [f"p{i}" for i in range(10)]
    chosen = random_survivors(keys, 4, seed=3)
    assert len(chosen) == 4 and set(chosen) <= set(keys)
    assert chosen == random_survivors(list(reversed(keys)), 4, seed=3)  # order-free
    assert random_survivors(keys, 20, seed=3) == sorted(keys)
    counts = Counter(k for seed in range(500) for k in random_survivors(keys, 4, seed))
    # Each key survives in about 4/10 of the seeds (200 of 500; 3 sigma is about 33).
    assert all(160 < n < 240 for n in counts.values()), counts


def _individual(pid: str, score: float, tokens: float, latency: float) -> Individual:
    fitness = Fitness(score=score, mean_tokens=tokens, mean_latency_ms=latency, tasks=3)
    return Individual(prompt_id=pid, fitness=fitness, experiment_id=f"x-{pid}", origin="offspring")


async def test_random_selection_keeps_dominated_members_and_the_same_archive() -> None:
    # One member dominates; the other five are each dominated by it.
    members = [_individual("top", 0.9, 1_000.0, 100.0)] + [
        _individual(f"d{i}", 0.1 * i, 2_000.0 + i, 200.0 + i) for i in range(5)
    ]
    optimizer = OptimizerActivities()
    nsga2 = await optimizer.select_survivors(
        SelectInput(role="designer", generation=1, population=2, individuals=members)
    )
    kept_dominated = False
    for seed in range(10):
        random = await optimizer.select_survivors(
            SelectInput(
                role="designer",
                generation=1,
                population=2,
                individuals=members,
                search="random",
                seed=seed,
            )
        )
        survivors = [s.prompt_id for s in random.survivors]
        assert len(survivors) == 2
        assert survivors == random_survivors([m.prompt_id for m in members], 2, seed)
        kept_dominated |= "top" not in survivors
        # What was found is judged the same way: archive, front and hypervolume.
        assert random.archive == nsga2.archive and random.front == nsga2.front
        assert random.archive_hypervolume == nsga2.archive_hypervolume
    assert "top" in [s.prompt_id for s in nsga2.survivors]
    assert kept_dominated  # NSGA-II never drops the dominant member; the baseline may
