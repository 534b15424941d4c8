"""Variation operators and offspring proposal: children are valid templates, and a seed
replays them exactly."""

from __future__ import annotations

import random
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from optimizer.breeding import Child, Parent, derive_seed, propose
from optimizer.genome import (
    PromptGenome,
    content_key,
    instructions,
    is_balanced,
    parse,
    render,
    with_instructions,
)
from optimizer.operators import (
    MUTATIONS,
    OPERATORS,
    crossover_sections,
    mutate_add,
    mutate_remove,
    mutate_rephrase,
    mutate_swap_example,
)
from stratlab.evolution.library import instruction_library
from stratlab.llm.prompts import DEFAULT_PROMPTS, example_context

ENV = SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

LIBRARY = {
    "stop_loss": ["Always set a stop loss.", "Include a stop loss."],
    "lookbacks": ["Prefer longer lookbacks.", "Use longer lookbacks.", "Longer lookback windows."],
    "brief": ["Keep the rationale short."],
}
DIRECTIVE_LIBRARY = instruction_library("designer")
EXAMPLES = [
    '{"name": "rsi-dip", "kind": "rules", "symbol": "{{ symbol }}",\n'
    ' "rationale": "buy short dips in an uptrend",\n'
    ' "indicators": [{"alias": "rsi", "kind": "rsi", "params": {"window": "rsi_window"}}],\n'
    ' "entry": "rsi < 30", "exit": "rsi > 55",\n'
    ' "parameters": [{"name": "rsi_window", "low": 5, "high": 25, "step": 5}],\n'
    ' "stop_loss": 0.05, "take_profit": null, "ml": null}\n',
    '{"name": "{{ symbol }}-breakout", "kind": "rules", "symbol": "{{ symbol }}",\n'
    ' "rationale": "new highs continue", "indicators": [], "entry": "close > 1",\n'
    ' "exit": "close < 1", "parameters": [], "stop_loss": null, "take_profit": 0.1, "ml": null}',
]


def contexts(role: str) -> list[dict[str, Any]]:
    """Contexts that take every branch of the real templates."""
    base = example_context(role).model_dump()
    if role == "designer":
        return [
            {**base, "kind": kind, **extra}
            for kind in ("rules", "ml", "code", "any")
            for extra in (
                {},
                {"feedback": "f", "skills": "s", "previous_spec_json": "{}"},
                {
                    "recent_strategies": [
                        {"name": "n", "kind": "rules", "outcome": "ok", "sharpe": 1}
                    ]
                },
            )
        ]
    return [
        base,
        {**base, "gate_passed": False, "gate_failures": ["sharpe"], "iteration": 3},
    ]


def assert_renders(role: str, genome: PromptGenome) -> None:
    system, content = render(genome)
    assert is_balanced(content)
    assert all(is_balanced(s.body) for s in parse(system, content).sections)
    template = ENV.from_string(content)
    for context in contexts(role):
        assert template.render(context)


def genome_of(role: str) -> PromptGenome:
    prompt = DEFAULT_PROMPTS[role]
    return parse(prompt.system, prompt.content)


def apply(name: str, genome: PromptGenome, other: PromptGenome, rng: random.Random) -> Any:
    if name == "crossover":
        return crossover_sections(genome, other, rng)
    if name == "add":
        return mutate_add(genome, rng, DIRECTIVE_LIBRARY)
    if name == "remove":
        return mutate_remove(genome, rng)
    if name == "rephrase":
        return mutate_rephrase(genome, rng, DIRECTIVE_LIBRARY)
    return mutate_swap_example(genome, rng, EXAMPLES)


def test_the_registry_names_every_operator() -> None:
    assert set(OPERATORS) == {"crossover", "add", "remove", "rephrase", "swap_example"}
    assert set(MUTATIONS) < set(OPERATORS)


@pytest.mark.parametrize("role", ["designer", "assessor"])
def test_operator_chains_keep_the_real_templates_renderable(role: str) -> None:
    base = genome_of(role)
    applied = dict.fromkeys(OPERATORS, 0)
    for seed in range(40):
        rng = random.Random(seed)
        pool = [base]
        for _ in range(6):
            name = rng.choice(sorted(OPERATORS))
            child = apply(name, rng.choice(pool), rng.choice(pool), rng)
            if child is None:
                continue
            applied[name] += 1
            assert_renders(role, child)
            pool.append(child)
    expected = set(OPERATORS) - ({"swap_example"} if role == "assessor" else set())
    assert {name for name, count in applied.items() if count} == expected


def test_crossover_merges_instructions_of_both_parents() -> None:
    base = genome_of("designer")
    a = with_instructions(base, ["Always check collisions."])
    b = with_instructions(base, ["Think step by step about cost."])
    seen: set[tuple[str, ...]] = set()
    for seed in range(50):
        child = crossover_sections(a, b, random.Random(seed))
        items = tuple(instructions(child))
        assert items
        assert set(items) <= {"Always check collisions.", "Think step by step about cost."}
        seen.add(items)
        assert_renders("designer", child)
    assert ("Always check collisions.", "Think step by step about cost.") in seen
    assert len(seen) == 3


def test_crossover_keeps_a_order_and_places_b_only_sections_after_their_predecessor() -> None:
    a = parse("sa", "pre a\n## A\na1\n## C\na3\n")
    b = parse("sb", "pre b\n## A\nb1\n## B\nb2\n## C\nb3\n## D\nb4")
    bodies = set()
    for seed in range(30):
        child = crossover_sections(a, b, random.Random(seed))
        assert [s.heading for s in child.sections] == ["", "## A", "## B", "## C", "## D"]
        assert child.system in {"sa", "sb"}
        bodies.add(tuple(s.body for s in child.sections))
        assert parse(*render(child)) == child
    # b's last body had no newline: it gets one when a's section comes after it.
    assert ("pre a\n", "a1\n", "b2\n", "a3\n", "b4") in bodies
    assert len(bodies) > 4


def test_add_skips_held_groups_case_insensitively_and_runs_out() -> None:
    genome = with_instructions(genome_of("designer"), ["always SET a stop loss"])
    for seed in range(20):
        child = mutate_add(genome, random.Random(seed), LIBRARY)
        assert child is not None
        items = instructions(child)
        assert items[0] == "always SET a stop loss" and len(items) == 2
        assert items[1] not in LIBRARY["stop_loss"]
    full = with_instructions(
        genome, ["Include a stop loss.", "Use longer lookbacks.", "Keep the rationale short"]
    )
    assert mutate_add(full, random.Random(0), LIBRARY) is None


def test_remove_takes_one_instruction_and_the_section_with_the_last() -> None:
    base = genome_of("designer")
    assert mutate_remove(base, random.Random(0)) is None
    one = with_instructions(base, ["Be brief."])
    assert render(mutate_remove(one, random.Random(0)) or one) == render(base)
    two = with_instructions(base, ["Be brief.", "Be bold."])
    left = {tuple(instructions(mutate_remove(two, random.Random(s)) or two)) for s in range(20)}
    assert left == {("Be brief.",), ("Be bold.",)}


def test_rephrase_stays_within_the_group() -> None:
    base = genome_of("designer")
    genome = with_instructions(
        base, ["Unknown advice.", "prefer longer lookbacks", "Keep the rationale short."]
    )
    outcomes = set()
    for seed in range(30):
        child = mutate_rephrase(genome, random.Random(seed), LIBRARY)
        assert child is not None
        items = instructions(child)
        assert items[0] == "Unknown advice." and items[2] == "Keep the rationale short."
        outcomes.add(items[1])
    assert outcomes == {"Use longer lookbacks.", "Longer lookback windows."}
    only_unknown = with_instructions(base, ["Unknown advice.", "Keep the rationale short."])
    assert mutate_rephrase(only_unknown, random.Random(0), LIBRARY) is None


def test_swap_example_replaces_only_the_example_lines() -> None:
    genome = genome_of("designer")
    swapped = set()
    for seed in range(20):
        child = mutate_swap_example(genome, random.Random(seed), EXAMPLES)
        assert child is not None
        body = child.sections[-1].body
        assert body.count("Reply with one JSON object that matches StrategySpec") == 2
        assert body.count('"stop_loss" and "take_profit" are null or fractions') == 2
        assert body.count('"rationale": "why this should work on this symbol"') == 1
        assert child.sections[:-1] == genome.sections[:-1]
        swapped.add(body)
        template = ENV.from_string(render(child)[1])
        rendered = [
            template.render({**contexts("designer")[0], "symbol": "gold", "kind": kind})
            for kind in ("rules", "code")
        ]
        assert sum('"symbol": "gold"' in text for text in rendered) == 2
        assert any('"rsi-dip"' in text or '"gold-breakout"' in text for text in rendered)
    # Two slots (the code and the rules branch) times two examples.
    assert len(swapped) == 4


def test_swap_example_needs_markers_and_a_different_balanced_example() -> None:
    rng = random.Random(0)
    assert mutate_swap_example(genome_of("assessor"), rng, EXAMPLES) is None
    no_end = parse("", "## Answer\nReply with one JSON object\n{}\n")
    assert mutate_swap_example(no_end, rng, EXAMPLES) is None
    assert mutate_swap_example(genome_of("designer"), rng, ["{% if x %}\n{}\n", ""]) is None
    genome = parse("", '## Answer\nReply with one JSON object:\n{"a": 1}\n"stop_loss" is null\n')
    assert mutate_swap_example(genome, rng, ['{"a": 1}']) is None
    child = mutate_swap_example(genome, rng, ['{"a": 1}', '{"b": 2}'])
    assert child is not None
    expected = '## Answer\nReply with one JSON object:\n{"b": 2}\n"stop_loss" is null\n'
    assert render(child)[1] == expected


def parents_pool() -> list[Parent]:
    prompt = DEFAULT_PROMPTS["designer"]
    base = parse(prompt.system, prompt.content)
    variants = [
        base,
        with_instructions(base, ["Always set a stop loss."]),
        with_instructions(base, ["Prefer longer lookbacks.", "Keep the rationale short."]),
    ]
    objectives = [(0.4, 3000.0, 900.0), (0.6, 3500.0, 1000.0), None]
    return [Parent(f"p{i}", *render(g), objectives[i]) for i, g in enumerate(variants)]


def test_propose_is_deterministic_distinct_and_valid() -> None:
    parents = parents_pool()
    known = with_instructions(
        parse(parents[0].system, parents[0].content), ["Include a stop loss."]
    )
    exclude = {content_key(*render(known))}
    children = propose(parents, 12, 7, LIBRARY, EXAMPLES, exclude=exclude)
    assert children == propose(parents, 12, 7, LIBRARY, EXAMPLES, exclude=exclude)
    assert children != propose(parents, 12, 8, LIBRARY, EXAMPLES, exclude=exclude)
    assert len(children) == 12
    keys = [content_key(c.system, c.content) for c in children]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & (exclude | {content_key(p.system, p.content) for p in parents})
    ids = {p.prompt_id for p in parents}
    for child in children:
        assert isinstance(child, Child)
        assert set(child.parent_ids) <= ids and child.parent_ids
        first, *rest = child.operator.split("+")
        assert first in OPERATORS and all(r in MUTATIONS for r in rest)
        assert (first == "crossover") == (len(child.parent_ids) == 2)
        assert_renders("designer", parse(child.system, child.content))
    assert any(c.operator.startswith("crossover") for c in children)


def test_propose_stops_when_the_space_is_spent() -> None:
    parent = Parent("only", "sys", "## Answer\nno example here\n", None)
    children = propose([parent], 10, 1, {"g": ["Do one thing."]}, [])
    # One parent, one library group: adding it, then nothing new is reachable.
    assert [c.operator for c in children] == ["add"]
    assert propose([parent], 0, 1, LIBRARY, EXAMPLES) == []
    assert propose([], 3, 1, LIBRARY, EXAMPLES) == []


def test_derive_seed_is_a_stable_63_bit_number() -> None:
    seed = derive_seed(42, 3)
    assert seed == derive_seed(42, 3)
    assert 0 <= seed < 2**63
    assert len({derive_seed(42, g) for g in range(100)} | {derive_seed(43, 3)}) == 101
