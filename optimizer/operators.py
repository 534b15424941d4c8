"""Variation operators on prompt genomes (seed 003: crossover, add, remove, rephrase, swap).

Each operator is a pure function of its genomes and a ``random.Random``: it returns a new
genome, or None when it does not apply (nothing to remove, no example markers...), so the
breeder can try another one. Operators only move whole sections, edit the instruction
list or replace literal example lines, so a child is as balanced a Jinja template as its
parents.

Instructions are compared ignoring case, runs of whitespace and final punctuation, so
"Always set a stop loss." and "always set a stop loss" are the same instruction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from optimizer.genome import (
    ANSWER_PREFIX,
    PromptGenome,
    Section,
    assemble,
    instructions,
    is_balanced,
    with_body,
    with_instructions,
)

Library = Mapping[str, Sequence[str]]
"""Instruction groups: a key (``"stop_loss"``) and alternative phrasings of it."""

EXAMPLE_START = "Reply with one JSON object"
EXAMPLE_END = '"stop_loss"'


def normalise(instruction: str) -> str:
    """The form instructions are compared in."""
    return " ".join(instruction.casefold().split()).rstrip(".!;:, ")


def crossover_sections(a: PromptGenome, b: PromptGenome, rng: random.Random) -> PromptGenome:
    """A child with ``a``'s sections in ``a``'s order plus those only ``b`` has.

    A ``b``-only section goes right after the nearest section it follows in ``b``. Shared
    sections take either parent's body (p=0.5); the instruction lists merge (each item of
    the union kept with p=0.5, at least one kept), so a child can hold "Always check
    collisions." and "Think step by step about cost." from different parents."""
    keyed_a, keyed_b = _keyed(a), _keyed(b)
    order = list(keyed_a)
    keys_b = list(keyed_b)
    for i, key in enumerate(keys_b):
        if key not in keyed_a:
            before = [k for k in keys_b[:i] if k in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, key)
    sections = []
    for key in order:
        if key in keyed_a and key in keyed_b:
            sections.append(keyed_a[key] if rng.random() < 0.5 else keyed_b[key])
        else:
            sections.append(keyed_a.get(key) or keyed_b[key])
    system = a.system if rng.random() < 0.5 else b.system
    child = assemble(system, sections)
    union = _merge(instructions(a), instructions(b))
    if not union:
        return child
    kept = [item for item in union if rng.random() < 0.5] or [rng.choice(union)]
    return with_instructions(child, kept)


def mutate_add(genome: PromptGenome, rng: random.Random, library: Library) -> PromptGenome | None:
    """Append one phrasing of a library group the prompt does not hold yet."""
    items = instructions(genome)
    held = {normalise(item) for item in items}
    candidates = [
        phrasing
        for group in sorted(library)
        if not any(normalise(p) in held for p in library[group])
        for phrasing in library[group]
        if _usable(phrasing)
    ]
    if not candidates:
        return None
    return with_instructions(genome, [*items, rng.choice(candidates).strip()])


def mutate_remove(genome: PromptGenome, rng: random.Random) -> PromptGenome | None:
    """Drop one instruction; the section goes when it was the last one."""
    items = instructions(genome)
    if not items:
        return None
    del items[rng.randrange(len(items))]
    return with_instructions(genome, items)


def mutate_rephrase(
    genome: PromptGenome, rng: random.Random, library: Library
) -> PromptGenome | None:
    """Replace one instruction of a library group by another phrasing of that group."""
    items = instructions(genome)
    held = {normalise(item) for item in items}
    options: list[tuple[int, list[str]]] = []
    for i, item in enumerate(items):
        group = _group_of(item, library)
        if group is None:
            continue
        others = _distinct(p for p in library[group] if _usable(p) and normalise(p) not in held)
        if others:
            options.append((i, others))
    if not options:
        return None
    index, others = rng.choice(options)
    items[index] = rng.choice(others).strip()
    return with_instructions(genome, items)


def mutate_swap_example(
    genome: PromptGenome, rng: random.Random, examples: Sequence[str]
) -> PromptGenome | None:
    """Replace the few-shot example of the ``## Answer`` section by another of ``examples``.

    The example is the run of lines after one starting ``Reply with one JSON object`` up
    to (not including) the next line starting ``"stop_loss"``. A template may hold several
    (designer.j2 has one per branch of ``{% if kind == "code" %}``): one is picked at
    random. Examples that would unbalance Jinja blocks or add markers are never used."""
    pool = _distinct(_as_block(e) for e in examples if _safe_example(e))
    slots = []
    for index, start, end in _example_slots(genome):
        lines = genome.sections[index].body.split("\n")
        current = "".join(line + "\n" for line in lines[start:end])
        different = [e for e in pool if e != current]
        if different:
            slots.append((index, start, end, different))
    if not slots:
        return None
    index, start, end, different = rng.choice(slots)
    lines = genome.sections[index].body.split("\n")
    new_lines = rng.choice(different).split("\n")[:-1]
    body = "\n".join([*lines[:start], *new_lines, *lines[end:]])
    return with_body(genome, index, body)


OPERATORS: Mapping[str, Callable[..., PromptGenome | None]] = MappingProxyType(
    {
        "crossover": crossover_sections,
        "add": mutate_add,
        "remove": mutate_remove,
        "rephrase": mutate_rephrase,
        "swap_example": mutate_swap_example,
    }
)
"""Operator names as they appear in offspring labels ("crossover+add")."""

MUTATIONS: tuple[str, ...] = ("add", "remove", "rephrase", "swap_example")


def _keyed(genome: PromptGenome) -> dict[tuple[str, int], Section]:
    """Sections keyed by (heading, occurrence), so a repeated heading pairs up in order."""
    seen: dict[str, int] = {}
    keyed = {}
    for section in genome.sections:
        heading = section.heading.rstrip()
        seen[heading] = seen.get(heading, 0) + 1
        keyed[(heading, seen[heading])] = section
    return keyed


def _merge(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return _distinct([*first, *second])


def _distinct(items: Any) -> list[str]:
    """Items without repeats (compared normalised), first occurrence kept, order kept."""
    seen: set[str] = set()
    out = []
    for item in items:
        if normalise(item) not in seen:
            seen.add(normalise(item))
            out.append(item)
    return out


def _group_of(item: str, library: Library) -> str | None:
    wanted = normalise(item)
    matches = (g for g in sorted(library) if any(normalise(p) == wanted for p in library[g]))
    return next(matches, None)


def _usable(phrasing: str) -> bool:
    """One line that opens no Jinja block it does not close (it goes into the template)."""
    return bool(phrasing.strip()) and "\n" not in phrasing and is_balanced(phrasing)


def _as_block(example: str) -> str:
    return example if example.endswith("\n") else example + "\n"


def _safe_example(example: str) -> bool:
    lines = example.split("\n")
    return (
        bool(example.strip())
        and is_balanced(example)
        and not any(line.startswith(("## ", EXAMPLE_START, EXAMPLE_END)) for line in lines)
    )


def _example_slots(genome: PromptGenome) -> list[tuple[int, int, int]]:
    """(section index, first line, end line) of each example in ``## Answer`` sections."""
    slots = []
    for index, section in enumerate(genome.sections):
        if not section.heading.startswith(ANSWER_PREFIX):
            continue
        lines = section.body.split("\n")
        i = 0
        while i < len(lines):
            if lines[i].startswith(EXAMPLE_START):
                end = next(
                    (j for j in range(i + 1, len(lines)) if lines[j].startswith(EXAMPLE_END)),
                    None,
                )
                if end is None:
                    break
                slots.append((index, i + 1, end))
                i = end
            i += 1
    return slots
