"""The offline provider's sanity checker for the optimizer: is a candidate prompt safe?

It reads its prompt (templates/sanity.j2) forgivingly: ``Role: <role>``, the candidate
in ``<candidate> ... </candidate>`` and the template it came from in ``<parent> ...
</parent>``. It rejects injection phrases, nonsense (too few real words), a drastic change
of length and a template that lost the lines the offline designer or assessor reads.
"""

from __future__ import annotations

import re

from stratlab.llm.offline._optimizer import MAX_LENGTH_RATIO, MIN_WORD_SHARE, raw_block
from stratlab.models.optimization import SanityVerdict

_FLAGS = re.IGNORECASE | re.MULTILINE
_ROLE = re.compile(r"^[ \t]*role[ \t]*:[ \t]*([A-Za-z_]+)", _FLAGS)

# --- sanity ------------------------------------------------------------------------------

_INJECTION = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b(?:ignore|disregard|forget|override)\b(?:\s+(?:all|any|every|of|the|your|my|these"
        r"|those|previous|prior|above|earlier|preceding|original|system|other))+\s+"
        r"(?:instructions?|rules|prompts?|directions|guidelines|context)\b",
        r"\byou\s+are\s+now\b",
        r"\b(?:reveal|print|show|output|repeat|leak|display|dump)\b(?:\s+\w+){0,3}\s+"
        r"(?:system\s+prompt|system\s+message|hidden\s+instructions|initial\s+instructions)",
        r"\bpretend\s+(?:to\s+be|you\s+are)\b",
        r"\b(?:jailbreak|developer\s+mode|DAN\s+mode)\b",
        r"\bnew\s+instructions\s*:",
    )
)
# A candidate holding these tags could close its own data block in the prompts above.
_BLOCK_TAGS = re.compile(
    r"</?(?:candidate|parent|current_prompt|current_system|failures|system_prompt)>",
    re.IGNORECASE,
)
_WORD = re.compile(r"^[A-Za-z][A-Za-z'_\-.]*$")
_EDGE_PUNCTUATION = "\"'`.,:;!?()[]{}<>|=*#%"
# What the offline roles read from their prompt (stratlab.llm.offline._prompt).
_READ_MARKERS: dict[str, re.Pattern[str]] = {
    "Symbol:": re.compile(r"^[ \t]*symbol[ \t]*:", _FLAGS),
    "Kind:": re.compile(r"^[ \t]*kind[ \t]*:", _FLAGS),
    "Iteration:": re.compile(r"^[ \t]*iteration[ \t]*:", _FLAGS),
    "Gate:": re.compile(r"^[ \t]*gate[ \t]*:", _FLAGS),
    "Gate failures:": re.compile(r"^[ \t]*gate failures[ \t]*:", _FLAGS),
    **{
        f"<{tag}>": re.compile(rf"<{tag}>", re.IGNORECASE)
        for tag in ("feedback", "previous_spec", "recent_strategies", "spec", "metrics")
    },
}
_REQUIRED = {"designer": ("Symbol:", "Kind:"), "assessor": ("Symbol:", "Gate:", "<metrics>")}


def check_sanity(role: str, candidate: str, parent: str) -> SanityVerdict:
    """The offline sanity checker's verdict on ``candidate`` (``parent`` may be empty)."""
    escape = _BLOCK_TAGS.search(candidate)
    if escape:
        return SanityVerdict(safe=False, reason=f"contains the data-block tag {escape.group(0)!r}")
    for pattern in _INJECTION:
        found = pattern.search(candidate)
        if found:
            return SanityVerdict(safe=False, reason=f"injection phrase: {found.group(0)!r}")
    share = word_share(candidate)
    if share < MIN_WORD_SHARE:
        return SanityVerdict(
            safe=False,
            reason=f"mostly non-words: {share:.0%} of tokens are words "
            f"(needs {MIN_WORD_SHARE:.0%})",
        )
    if parent.strip():
        ratio = len(candidate) / max(1, len(parent))
        if not 1 / MAX_LENGTH_RATIO <= ratio <= MAX_LENGTH_RATIO:
            return SanityVerdict(
                safe=False,
                reason=f"length drifted: {len(candidate)} characters vs {len(parent)} in the "
                f"parent ({ratio:.1f}x; allowed 1/{MAX_LENGTH_RATIO:g} to {MAX_LENGTH_RATIO:g}x)",
            )
    lost = lost_markers(role, candidate, parent)
    if lost:
        return SanityVerdict(
            safe=False, reason=f"lost what the {role} reads from its prompt: {', '.join(lost)}"
        )
    return SanityVerdict(safe=True, reason="no injection, reads as instructions, keeps its fields")


def word_share(text: str) -> float:
    """Share of whitespace tokens that look like words (letters first, mostly letters)."""
    tokens = text.split()
    if not tokens:
        return 0.0
    words = 0
    for token in tokens:
        core = token.strip(_EDGE_PUNCTUATION)
        if not core:
            continue  # pure punctuation ("{{", "-") is layout, neither word nor noise
        words += bool(_WORD.match(core)) and _has_vowel(core)
    counted = sum(1 for token in tokens if token.strip(_EDGE_PUNCTUATION))
    return words / counted if counted else 0.0


def _has_vowel(word: str) -> bool:
    return len(word) <= 3 or any(ch in "aeiouyAEIOUY" for ch in word)


def lost_markers(role: str, candidate: str, parent: str) -> list[str]:
    """Read markers the parent has (or the role needs) that the candidate lacks."""
    wanted = set(_REQUIRED.get(role, ()))
    wanted |= {name for name, pattern in _READ_MARKERS.items() if pattern.search(parent)}
    return [
        name
        for name, pattern in _READ_MARKERS.items()
        if name in wanted and not pattern.search(candidate)
    ]


def read_sanity(prompt: str) -> tuple[str, str, str]:
    """(role, candidate template, parent template) from a sanity prompt."""
    role = _ROLE.search(prompt)
    candidate, end = raw_block(prompt, "candidate")
    # The parent is the block after the candidate's LAST closing tag: a "<parent>" written
    # inside the candidate stays part of the candidate (and makes it unsafe).
    parent, _ = raw_block(prompt[end:], "parent")
    return (role.group(1).lower() if role else "designer", candidate or "", parent or "")
