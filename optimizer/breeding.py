"""Offspring proposal: tournament-chosen parents, crossover and mutation, deduplicated.

``propose`` is the "propose" step of the generation loop. It draws every random choice
from one ``random.Random(seed)``, so a stored seed replays a generation's offspring
exactly; evaluation and selection happen elsewhere.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from optimizer.genome import PromptGenome, content_key, parse, render
from optimizer.operators import (
    MUTATIONS,
    Library,
    crossover_sections,
    mutate_add,
    mutate_remove,
    mutate_rephrase,
    mutate_swap_example,
)

CROSSOVER_PROBABILITY = 0.5
MUTATION_AFTER_CROSSOVER = 0.5
ATTEMPTS_PER_CHILD = 20
"""``propose`` gives up after this many tries per wanted child (the space may be spent)."""


@dataclass(frozen=True)
class Parent:
    """A registered prompt that may breed; ``objectives`` is None when never measured."""

    prompt_id: str
    system: str
    content: str
    objectives: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Child:
    """A proposed prompt, its parents' ids and the operators that made it."""

    system: str
    content: str
    parent_ids: tuple[str, ...]
    operator: str


def derive_seed(campaign_seed: int, generation: int) -> int:
    """A generation's seed: the first 8 bytes of sha256(``"{campaign_seed}:{generation}"``)
    as a big-endian integer shifted right by one, so it fits a signed 64-bit column."""
    digest = hashlib.sha256(f"{campaign_seed}:{generation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def propose(
    parents: Sequence[Parent],
    n: int,
    seed: int,
    library: Library,
    examples: Sequence[str],
    exclude: Collection[str] = (),
    *,
    uniform: bool = False,
) -> list[Child]:
    """Up to ``n`` children, distinct by ``content_key`` from each other, from every parent
    and from the keys in ``exclude`` (prompts already registered).

    Each try picks parents by binary tournament; with p=0.5 (two parents or more) it
    crosses two of them and mutates the child with p=0.5 (always when the cross copied a
    known prompt), else it applies one mutation drawn uniformly, falling back on the
    others when one does not apply. Fewer than ``n`` come back when ``n *
    ATTEMPTS_PER_CHILD`` tries run out.

    ``uniform`` is the random-search baseline: every parent is drawn uniformly at random
    instead of by tournament, so fitness plays no part; the operators, their
    probabilities and the random stream's use are otherwise the same."""
    if n <= 0 or not parents:
        return []
    breeder = _Breeder(parents, random.Random(seed), library, examples, uniform=uniform)
    seen = set(exclude) | {content_key(p.system, p.content) for p in parents}
    children: list[Child] = []
    for _ in range(n * ATTEMPTS_PER_CHILD):
        if len(children) >= n:
            break
        bred = breeder.breed_one(seen)
        if bred is None:
            continue
        genome, parent_ids, operator = bred
        system, content = render(genome)
        key = content_key(system, content)
        if key not in seen:
            seen.add(key)
            children.append(Child(system, content, parent_ids, operator))
    return children


class _Breeder:
    """The parents (parsed once), the random stream and the mutation material."""

    def __init__(
        self,
        parents: Sequence[Parent],
        rng: random.Random,
        library: Library,
        examples: Sequence[str],
        *,
        uniform: bool = False,
    ) -> None:
        self.uniform = uniform
        self.parents = list(parents)
        self.genomes = [parse(p.system, p.content) for p in parents]
        self.rng = rng
        self.library = library
        self.examples = examples

    def breed_one(self, seen: set[str]) -> tuple[PromptGenome, tuple[str, ...], str] | None:
        rng = self.rng
        if len(self.parents) >= 2 and rng.random() < CROSSOVER_PROBABILITY:
            first = self.tournament(range(len(self.parents)))
            second = self.tournament([i for i in range(len(self.parents)) if i != first])
            child = crossover_sections(self.genomes[first], self.genomes[second], rng)
            ids = (self.parents[first].prompt_id, self.parents[second].prompt_id)
            copied = content_key(*render(child)) in seen
            if rng.random() < MUTATION_AFTER_CROSSOVER or copied:
                mutated = self.mutate(child)
                if mutated is not None:
                    return mutated[1], ids, f"crossover+{mutated[0]}"
            return child, ids, "crossover"
        index = self.tournament(range(len(self.parents)))
        mutated = self.mutate(self.genomes[index])
        if mutated is None:
            return None
        return mutated[1], (self.parents[index].prompt_id,), mutated[0]

    def tournament(self, candidates: Sequence[int]) -> int:
        """Binary tournament: higher score, then fewer tokens, then lower latency wins;
        a coin decides when either has no objectives or they tie."""
        if len(candidates) == 1:
            return candidates[0]
        a, b = self.rng.sample(list(candidates), 2)
        fa, fb = self.parents[a].objectives, self.parents[b].objectives
        if self.uniform or fa is None or fb is None:
            return self.rng.choice((a, b))
        rank_a, rank_b = (-fa[0], fa[1], fa[2]), (-fb[0], fb[1], fb[2])
        if rank_a == rank_b:
            return self.rng.choice((a, b))
        return a if rank_a < rank_b else b

    def mutate(self, genome: PromptGenome) -> tuple[str, PromptGenome] | None:
        """One mutation, the first drawn that applies, with its name."""
        for name in self.rng.sample(MUTATIONS, len(MUTATIONS)):
            if name == "add":
                child = mutate_add(genome, self.rng, self.library)
            elif name == "remove":
                child = mutate_remove(genome, self.rng)
            elif name == "rephrase":
                child = mutate_rephrase(genome, self.rng, self.library)
            else:
                child = mutate_swap_example(genome, self.rng, self.examples)
            if child is not None:
                return name, child
        return None
