"""Prompt genomes: exact round trip, Jinja-safe sections, the instruction list, the key."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from optimizer.genome import (
    PromptGenome,
    Section,
    content_key,
    instructions,
    is_balanced,
    parse,
    render,
    with_instructions,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "stratlab" / "llm" / "templates"
TEMPLATE_NAMES = sorted(p.name for p in TEMPLATES.glob("*.j2"))

HAND_MADE = [
    "",
    "no headings at all",
    "no headings at all\n",
    "## Only\nbody",
    "## Only\nbody\n",
    "## Unterminated heading",
    "pre\n## A\n## B\n",
    "\n\n## A\n\n\n## B\nlast line",
    "crlf\r\n## A\r\nbody\r\n",
    "form\x0cfeed and\u2028separator\n## A\nx\x85y\n",
    "### Not level two\n##NoSpace\n## Real\n",
    "## A\n{% if x %}\n## Inside if\n{% else %}\n## Inside else\n{% endif %}\n## C\nend",
    "{# a comment\n## not a heading #}\n## H\n",
    "{% raw %}\n{% if %}\n## In raw\n{% endraw %}\n## After raw\n",
    "{% if a\n   and b %}\n## Inside multi-line tag\n{% endif %}\n",
    "{%- for i in xs -%}\n## Loop\n{%- endfor %}\n## Out\n",
    "{% set block %}\n## In set\n{% endset %}\n{% set x = 1 %}\n## After set\n",
    "stray {% endif %}\n## After stray\n",
]

FRAGMENTS = [
    "## H1\n",
    "## H2\n",
    "## Answer\n",
    "## Instructions\n",
    "text\n",
    "{% if x %}\n",
    "{% endif %}\n",
    "{% for i in y %}",
    "{% endfor %}\n",
    "{{ v }}",
    "\n",
    "- item\n",
    "##",
    " ## x\n",
    "\r\n",
    "tail",
]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_round_trip_is_exact_on_the_real_templates(name: str) -> None:
    content = (TEMPLATES / name).read_text("utf-8")
    system = "You are a test system prompt.\n## Not split\n"
    assert render(parse(system, content)) == (system, content)


@pytest.mark.parametrize("text", HAND_MADE)
def test_round_trip_is_exact_on_hand_made_text(text: str) -> None:
    genome = parse("sys", text)
    assert render(genome) == ("sys", text)
    assert genome.sections[0].heading == ""


def test_round_trip_is_exact_on_random_fragment_soups() -> None:
    for seed in range(300):
        rng = random.Random(seed)
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 30)))
        assert render(parse("s", text)) == ("s", text), text


def test_designer_sections_never_cut_a_jinja_block() -> None:
    genome = parse("", (TEMPLATES / "designer.j2").read_text("utf-8"))
    headings = [s.heading for s in genome.sections]
    assert headings == [
        "",
        "## Data (training and validation splits only)",
        "## Indicators",
        "## Recent strategies on this symbol",
        "## Strategy kinds",
        "## Answer",
    ]
    # The conditional sections travel with the section before them.
    assert "## Code contract (kind code)" in genome.sections[4].body
    assert "## Skills" in genome.sections[3].body
    assert all(is_balanced(s.body) for s in genome.sections)


def test_heading_on_the_last_line_without_newline_stays_body() -> None:
    genome = parse("", "intro\n## Last")
    assert genome.sections == (Section("", "intro\n## Last"),)


def test_is_balanced() -> None:
    assert is_balanced("{% if a %}x{% elif b %}y{% else %}z{% endif %}")
    assert is_balanced("{% for a in b %}{% if a %}{% endif %}{% endfor %}{% set c = 1 %}")
    assert not is_balanced("{% if a %}")
    assert not is_balanced("{% endif %}{% if a %}")
    assert is_balanced("{# {% if a %} #}{% raw %}{% if %}{% endraw %}")


def test_instructions_are_created_before_the_answer_and_removed_again() -> None:
    content = (TEMPLATES / "designer.j2").read_text("utf-8")
    genome = parse("sys", content)
    assert instructions(genome) == []
    added = with_instructions(genome, ["Always set a stop loss.", "Prefer longer lookbacks."])
    assert instructions(added) == ["Always set a stop loss.", "Prefer longer lookbacks."]
    headings = [s.heading for s in added.sections]
    assert headings[-2:] == ["## Instructions", "## Answer"]
    _, text = render(added)
    assert (
        "\n\n## Instructions\n- Always set a stop loss.\n- Prefer longer lookbacks.\n\n## Answer\n"
        in text
    )
    assert render(with_instructions(added, [])) == ("sys", content)
    # Re-parsing the rendered text finds the same genome.
    assert parse(*render(added)) == added


def test_instructions_go_at_the_end_without_an_answer_section() -> None:
    genome = with_instructions(parse("", "## Task\nDo it."), ["Be brief."])
    assert render(genome)[1] == "## Task\nDo it.\n\n## Instructions\n- Be brief.\n"
    assert with_instructions(parse("", ""), ["x"]).sections[-1] == Section(
        "## Instructions", "- x\n"
    )


def test_replacing_instructions_keeps_the_rest_of_the_section() -> None:
    content = "## Instructions\nFollow these.\n- one\n- two\n\n## Answer\nJSON\n"
    genome = parse("", content)
    assert instructions(genome) == ["one", "two"]
    replaced = with_instructions(genome, ["three"])
    assert render(replaced)[1] == "## Instructions\nFollow these.\n- three\n\n## Answer\nJSON\n"
    assert render(with_instructions(replaced, ["one", "two"]))[1] == content


def test_instructions_must_be_single_lines() -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        with_instructions(parse("", ""), ["two\nlines"])
    with pytest.raises(ValueError, match="one non-empty line"):
        with_instructions(parse("", ""), ["  "])


def test_content_key_is_the_registry_hash() -> None:
    from stratlab.store.db import prompt_content_hash

    expected = hashlib.sha256(b"sys\n---\ncontent").hexdigest()
    assert content_key("sys", "content") == expected == prompt_content_hash("sys", "content")
    assert content_key("ab", "c") != content_key("a", "bc")


def test_genomes_are_frozen_values() -> None:
    genome = PromptGenome("s", (Section("", "x"),))
    assert genome == parse("s", "x")
    with pytest.raises(AttributeError):
        genome.system = "t"  # type: ignore[misc]
