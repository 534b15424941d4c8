"""A prompt as a genome: the system prompt carried whole, the template cut into sections.

Evolution recombines and edits ``## `` sections of a Jinja2 markdown template. A section
is cut only where no Jinja block (``{% if %}``, ``{% for %}``, ...) is open, so every
section is a balanced piece of template and any concatenation of sections still parses:
a ``{% if %}`` that spans several headings keeps them in one section. ``render(parse(s,
c)) == (s, c)`` holds exactly for any text, so a genome never changes a prompt by itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

INSTRUCTIONS_HEADING = "## Instructions"
ANSWER_PREFIX = "## Answer"
_HEADING_PREFIX = "## "
_BULLET = "- "

# Raw blocks first (their inside is literal text), then comments, then block statements.
_JINJA = re.compile(
    r"\{%[-+]?\s*raw\s*[-+]?%\}.*?\{%[-+]?\s*endraw\s*[-+]?%\}"
    r"|\{#.*?#\}"
    r"|\{%[-+]?\s*(?P<word>\w*)(?P<rest>.*?)[-+]?%\}",
    re.DOTALL,
)
_OPENERS = frozenset(
    {"if", "for", "macro", "block", "call", "filter", "with", "autoescape", "trans"}
)


@dataclass(frozen=True)
class Section:
    """A heading line (without its newline; ``""`` for the preamble) and the text after it."""

    heading: str
    body: str


@dataclass(frozen=True)
class PromptGenome:
    """A prompt: the system text and the template's sections, preamble first (always)."""

    system: str
    sections: tuple[Section, ...]


def content_key(system: str, content: str) -> str:
    """The registry's identity of a prompt, so children can be checked against it.

    Duplicates ``stratlab.store.db.prompt_content_hash`` (the optimizer may not import the
    store): sha256 hex of ``system + "\\n---\\n" + content``."""
    return hashlib.sha256(f"{system}\n---\n{content}".encode()).hexdigest()


def parse(system: str, content: str) -> PromptGenome:
    """Split ``content`` at ``## `` heading lines outside Jinja blocks.

    A heading line must end with a newline: a heading on the unterminated last line stays
    in the body before it, which keeps ``render`` exact without an extra field."""
    lines = _split_lf(content)
    closed = _closed_offsets(content)
    sections: list[Section] = []
    heading = ""
    body: list[str] = []
    offset = 0
    for line in lines:
        if line.startswith(_HEADING_PREFIX) and line.endswith("\n") and offset in closed:
            sections.append(Section(heading, "".join(body)))
            heading, body = line[:-1], []
        else:
            body.append(line)
        offset += len(line)
    sections.append(Section(heading, "".join(body)))
    return PromptGenome(system=system, sections=tuple(sections))


def render(genome: PromptGenome) -> tuple[str, str]:
    """``(system, content)``: the inverse of ``parse``."""
    parts = [s.body if not s.heading else f"{s.heading}\n{s.body}" for s in genome.sections]
    return genome.system, "".join(parts)


def assemble(system: str, sections: Sequence[Section]) -> PromptGenome:
    """A genome from sections in a new order: every body followed by another section gets
    a final newline, so the next heading still starts a line."""
    fixed = [
        Section(s.heading, s.body + "\n")
        if i < len(sections) - 1 and s.body and not s.body.endswith("\n")
        else s
        for i, s in enumerate(sections)
    ]
    if not fixed or fixed[0].heading:
        fixed.insert(0, Section("", ""))
    return PromptGenome(system=system, sections=tuple(fixed))


def is_balanced(text: str) -> bool:
    """Whether ``text`` opens and closes its Jinja blocks in order (safe to splice in)."""
    depth = 0
    for match in _JINJA.finditer(text):
        depth += _delta(match)
        if depth < 0:
            return False
    return depth == 0


def instructions(genome: PromptGenome) -> list[str]:
    """The ``- `` items of the ``## Instructions`` section (empty when there is none)."""
    index = _instructions_index(genome)
    if index is None:
        return []
    lines = genome.sections[index].body.split("\n")
    items = [line[len(_BULLET) :].strip() for line in lines if line.startswith(_BULLET)]
    return [item for item in items if item]


def with_instructions(genome: PromptGenome, items: Sequence[str]) -> PromptGenome:
    """``genome`` with its instruction list replaced by ``items``.

    The section is created just before ``## Answer...`` (the reply format stays last) or
    at the end, and removed when ``items`` is empty. In an existing section the text before
    the first item and after the last (an intro sentence, the blank line before the next
    heading) is kept; items are single lines, so lines between items are dropped."""
    for item in items:
        if "\n" in item or not item.strip():
            raise ValueError(f"an instruction is one non-empty line: {item!r}")
    sections = list(genome.sections)
    index = _instructions_index(genome)
    if not items:
        if index is not None:
            del sections[index]
        return assemble(genome.system, sections)
    bullets = "".join(f"{_BULLET}{item.strip()}\n" for item in items)
    if index is not None:
        head, tail = _around_bullets(sections[index].body)
        sections[index] = Section(INSTRUCTIONS_HEADING, head + bullets + tail)
        return assemble(genome.system, sections)
    answer = next((i for i, s in enumerate(sections) if s.heading.startswith(ANSWER_PREFIX)), None)
    if answer is None:
        last = sections[-1]
        if last.body and not last.body.endswith("\n\n"):  # a blank line before the heading
            sections[-1] = replace(last, body=last.body.rstrip("\n") + "\n\n")
        sections.append(Section(INSTRUCTIONS_HEADING, bullets))
    else:
        sections.insert(answer, Section(INSTRUCTIONS_HEADING, bullets + "\n"))
    return assemble(genome.system, sections)


def with_body(genome: PromptGenome, index: int, body: str) -> PromptGenome:
    """``genome`` with section ``index``'s body replaced."""
    sections = list(genome.sections)
    sections[index] = replace(sections[index], body=body)
    return PromptGenome(system=genome.system, sections=tuple(sections))


def _instructions_index(genome: PromptGenome) -> int | None:
    for i, section in enumerate(genome.sections):
        if section.heading.rstrip() == INSTRUCTIONS_HEADING:
            return i
    return None


def _around_bullets(body: str) -> tuple[str, str]:
    """The text before the first and after the last ``- `` line of a body."""
    lines = _split_lf(body)
    marks = [i for i, line in enumerate(lines) if line.startswith(_BULLET)]
    if not marks:
        content_end = len(body.rstrip("\n"))
        head, tail = body[:content_end], body[content_end:]
        return (head + "\n", tail.removeprefix("\n")) if head else ("", tail)
    return "".join(lines[: marks[0]]), "".join(lines[marks[-1] + 1 :])


def _split_lf(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``splitlines`` also cuts at ``\\r``, ``\\x0c``...)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _delta(match: re.Match[str]) -> int:
    word = match.group("word")
    if word is None:  # a comment or a whole raw block
        return 0
    if word.startswith("end"):
        return -1
    if word in _OPENERS or (word == "set" and "=" not in match.group("rest")):
        return 1
    return 0


def _closed_offsets(content: str) -> set[int]:
    """Offsets of line starts where no Jinja block, tag or comment is open."""
    starts = [0] + [m.end() for m in re.finditer("\n", content)]
    closed: set[int] = set()
    depth = 0
    matches = iter(_JINJA.finditer(content))
    match = next(matches, None)
    for start in starts:
        while match is not None and match.end() <= start:
            depth = max(0, depth + _delta(match))
            match = next(matches, None)
        inside_tag = match is not None and match.start() < start
        if depth == 0 and not inside_tag:
            closed.add(start)
    return closed
