"""The offline provider's mutator for the optimizer (its sanity checker is
``_sanity``).

It reads its prompt (templates/mutator.j2) like the other offline roles read theirs,
forgivingly:

    Role: <role>                       the role whose prompt is mutated or checked
    Variations: <n>                    (mutator) how many variations; missing means 3
    <current_prompt> ... </current_prompt>   (mutator) the template to mutate
    <failures> ... </failures>               (mutator) recent benchmark failures

The mutator maps failure wording to directives of ``stratlab.llm.offline._directives`` (only
``mutable`` ones of the role) and answers whole templates, each the current one with one
instruction line added under ``## Instructions`` or one removed; the designs those
directives cause are then measured by real backtests, so what the optimizer finds is real.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from stratlab.llm.offline._directives import DIRECTIVES, Directive, find_directives, normalise
from stratlab.llm.pricing import estimate_tokens
from stratlab.models.optimization import PromptVariation, PromptVariations

INSTRUCTIONS_HEADING = "## Instructions"
MAX_VARIATIONS = 10
DEFAULT_VARIATIONS = 3
# More instruction lines than this and the mutator also tries removing one.
MAX_INSTRUCTIONS = 6
MIN_WORD_SHARE = 0.6
MAX_LENGTH_RATIO = 3.0

_FLAGS = re.IGNORECASE | re.MULTILINE
_ROLE = re.compile(r"^[ \t]*role[ \t]*:[ \t]*([A-Za-z_]+)", _FLAGS)
_VARIATIONS = re.compile(r"^[ \t]*variations[ \t]*:[ \t]*(\d+)", _FLAGS)
_HEADING = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)
_INSTRUCTIONS = re.compile(r"^#{1,6}[ \t]+instructions[ \t]*$", _FLAGS)
_ANSWER = re.compile(r"^#{1,6}[ \t]+answer\b", _FLAGS)
_BULLET = re.compile(r"^[ \t]*[-*][ \t]+(.*\S)[ \t]*$")

# --- instructions section ----------------------------------------------------------------


def instruction_lines(template: str) -> list[str]:
    """The bullet texts under ``## Instructions`` (empty when the section is absent)."""
    span = _instructions_span(template)
    if span is None:
        return []
    body = template[span[0] : span[1]]
    return [m.group(1) for line in body.splitlines() if (m := _BULLET.match(line))]


def add_instruction(template: str, instruction: str) -> str:
    """``template`` with ``- instruction`` as the last line of its ``## Instructions``
    section, which is created before the ``## Answer`` heading (or at the end)."""
    line = f"- {instruction.strip()}"
    span = _instructions_span(template)
    if span is not None:
        body = template[span[0] : span[1]].rstrip("\n")
        rest = template[span[1] :]
        return f"{template[: span[0]]}{body}\n{line}\n" + ("\n" if rest else "") + rest.lstrip("\n")
    section = f"{INSTRUCTIONS_HEADING}\n{line}\n"
    answer = _ANSWER.search(template)
    if answer is None:
        return f"{template.rstrip()}\n\n{section}"
    head = template[: answer.start()].rstrip("\n")
    return f"{head}\n\n{section}\n{template[answer.start() :]}"


def remove_instruction(template: str, instruction: str) -> str:
    """``template`` without the ``## Instructions`` bullet ``instruction``; the heading
    goes too when it was the last one."""
    span = _instructions_span(template)
    if span is None:
        return template
    lines = template[span[0] : span[1]].splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if not ((m := _BULLET.match(line)) and m.group(1) == instruction.strip())
    ]
    if not any(_BULLET.match(line) for line in kept):
        start = template.rfind("\n", 0, max(0, span[0] - 1)) + 1  # the heading line
        head = template[:start].rstrip("\n")
        rest = template[span[1] :].lstrip("\n")
        return f"{head}\n\n{rest}" if head and rest else head + rest
    return template[: span[0]] + "".join(kept) + template[span[1] :]


def _instructions_span(template: str) -> tuple[int, int] | None:
    """(start, end) of the Instructions section's body: after its heading line, up to the
    next heading or the end."""
    heading = _INSTRUCTIONS.search(template)
    if heading is None:
        return None
    start = min(len(template), heading.end() + 1)
    following = _HEADING.search(template, start)
    return start, following.start() if following else len(template)


# --- mutator -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureSignal:
    """A kind of failure, the wording that reports it (a case-insensitive regex), and the
    directives whose lines are added or removed to address it."""

    label: str
    pattern: str
    adds: tuple[str, ...]
    removes: tuple[str, ...] = ()


FAILURE_SIGNALS: tuple[FailureSignal, ...] = (
    FailureSignal("deep drawdowns", r"drawdown", ("stop_loss", "trend_filter")),
    FailureSignal(
        "too few trades",
        r"too few trades|not enough trades|no trades|zero trades|validation_trades"
        r"|(?<![a-z_])(?:min_)?trades (?:\d+ <|too low)",
        ("shorter_lookbacks",),
        ("small_grid", "trend_filter", "longer_lookbacks"),
    ),
    FailureSignal(
        "too many trades",
        r"too many trades|overtrad|(?<![a-z_])trades (?:\d+ >|too high)",
        ("longer_lookbacks",),
        ("shorter_lookbacks",),
    ),
    FailureSignal(
        "weak risk-adjusted or excess returns",
        r"sharpe|sortino|excess_return|buy.and.hold|total_return|cagr|profit_factor",
        ("trend_filter", "longer_lookbacks"),
    ),
    FailureSignal("low win rates", r"win[ _]rate", ("take_profit", "mean_reversion")),
    FailureSignal(
        "backtest gate failures (out-of-sample win rate, drawdown or Sharpe)",
        r"failed_backtest_gate|backtest gate",
        ("take_profit", "trend_filter", "stop_loss"),
    ),
    FailureSignal(
        "models that barely learn",
        r"loss_decrease|final_loss|accuracy",
        ("long_training",),
    ),
    FailureSignal(
        "training failures",
        r"failed_training|training gate|accuracy|final_loss|loss_decrease",
        # The rules training gate mostly fails on too few validation trades, the ml one on
        # a loss that barely falls: more trades first, then rules, then a smaller search.
        ("shorter_lookbacks", "rules_only", "small_grid"),
        ("machine_learning", "longer_lookbacks"),
    ),
    FailureSignal(
        # The statistical gate: a grid that overfits (PBO), or a "discovery" on noise.
        "overfitting (a discovery on noise, or a grid that overfits)",
        r"(?<![a-z_])pbo\b|false discovery|on noise",
        ("small_grid",),
    ),
    FailureSignal(
        "high token use or latency",
        r"tokens|latency|cost|verbose|too long",
        ("concise",),
        ("detailed",),
    ),
)
"""Checked in this order; a summary's signals are addressed most frequent first."""

# Pairs that contradict each other: with both present, removing one is a variation.
_CONTRADICTIONS = (
    ("longer_lookbacks", "shorter_lookbacks"),
    ("mean_reversion", "trend_following"),
    ("mean_reversion", "breakout"),
    ("machine_learning", "rules_only"),
    ("concise", "detailed"),
)


@dataclass(frozen=True)
class _Edit:
    op: str  # "add" | "remove"
    line: str
    why: str
    key: str = ""  # the directive added or removed: one variation per (op, key)


def mutate(
    role: str, template: str, failures: str, count: int, rng: random.Random
) -> PromptVariations:
    """``count`` distinct variations of ``template`` (fewer only when no distinct edit is
    left), most frequent failure first, then contradictions, then exploration."""
    mutable = {d.key: d for d in DIRECTIVES if d.mutable and role in d.roles}
    present = find_directives(template, role) & mutable.keys()
    edits = _failure_edits(template, failures, mutable, present, rng)
    edits += _cleanup_edits(template, mutable, present, rng)
    explore = [key for key in sorted(mutable) if key not in present]
    rng.shuffle(explore)
    edits += [
        _Edit(
            "add",
            _phrase(mutable[key], rng),
            f"no failure in the summary maps to a change; it explores: {mutable[key].effect}",
            key,
        )
        for key in explore
    ]
    variations: list[PromptVariation] = []
    seen, done = {template}, set()
    for edit in edits:
        if len(variations) >= count:
            break
        content = (
            add_instruction(template, edit.line)
            if edit.op == "add"
            else remove_instruction(template, edit.line)
        )
        # Another phrase of a directive already used is the same change, not a new one.
        if content in seen or (edit.key and (edit.op, edit.key) in done):
            continue
        seen.add(content)
        done.add((edit.op, edit.key))
        verb = f"Adds '{edit.line}'" if edit.op == "add" else f"Removes '{edit.line}'"
        variations.append(PromptVariation(rationale=f"{verb}: {edit.why}.", content=content))
    return PromptVariations(variations=variations)


def _failure_edits(
    template: str,
    failures: str,
    mutable: dict[str, Directive],
    present: frozenset[str],
    rng: random.Random,
) -> list[_Edit]:
    """Edits per signal (removals of contradicting lines first), interleaved across
    signals so that N variations address the N most frequent failures."""
    lines = [_without_task_id(line) for line in failures.splitlines() if line.strip()]
    weights = [
        (sum(_weight(line) for line in lines if re.search(s.pattern, line, re.I)), s)
        for s in FAILURE_SIGNALS
    ]
    # sorted() is stable: equal weights keep FAILURE_SIGNALS' order, so ties are reproducible.
    ranked = [(n, s) for n, s in sorted(weights, key=lambda c: -c[0]) if n > 0]
    per_signal: list[list[_Edit]] = []
    for n, signal in ranked:
        why = f"addresses {signal.label} ({n} mentions in the failure summary)"
        edits = [
            _Edit("remove", line, why, key)
            for key in signal.removes
            if key in mutable
            for line in _lines_of(template, mutable[key])
        ]
        edits += [
            _Edit("add", _phrase(mutable[key], rng), why, key)
            for key in signal.adds
            if key in mutable and key not in present
        ]
        per_signal.append(edits)
    depth = max((len(e) for e in per_signal), default=0)
    return [edits[i] for i in range(depth) for edits in per_signal if i < len(edits)]


_TASK_ID_PREFIX = re.compile(r"^\s*[-*]?\s*[a-z0-9]+(?:-[a-z0-9]+)+\s*:")
_COUNT = re.compile(r":\s*(\d+)\s+(?:tasks?|runs?|times|failures)\b", re.IGNORECASE)


def _without_task_id(line: str) -> str:
    """The line without a leading "- <task-id>:": ids such as "...-beat-buy-and-hold" name
    objectives, they do not report a failure."""
    return _TASK_ID_PREFIX.sub("", line)


def _weight(line: str) -> int:
    """A count line ("- max_drawdown too high: 7 tasks") weighs its count, others 1."""
    count = _COUNT.search(line)
    return max(1, int(count.group(1))) if count else 1


def _cleanup_edits(
    template: str, mutable: dict[str, Directive], present: frozenset[str], rng: random.Random
) -> list[_Edit]:
    edits = []
    for first, second in _CONTRADICTIONS:
        if first in present and second in present and second in mutable:
            why = f"'{first}' and '{second}' contradict each other"
            lines = _lines_of(template, mutable[second])
            edits += [_Edit("remove", line, why, second) for line in lines]
    lines = instruction_lines(template)
    if len(lines) > MAX_INSTRUCTIONS:
        why = f"the prompt has {len(lines)} instruction lines; fewer are easier to follow"
        edits.append(_Edit("remove", rng.choice(lines), why))
    return edits


def _lines_of(template: str, directive: Directive) -> list[str]:
    """Instruction lines of ``template`` that carry ``directive``."""
    return [
        line
        for line in instruction_lines(template)
        if any(normalise(phrase) in normalise(line) for phrase in directive.phrases)
    ]


def _phrase(directive: Directive, rng: random.Random) -> str:
    phrase = rng.choice(directive.phrases)
    return f"{phrase[0].upper()}{phrase[1:]}."


def read_mutator(prompt: str) -> tuple[str, str, str, int]:
    """(role, current template, failure summary, variations) from a mutator prompt."""
    role = _ROLE.search(prompt)
    count = _VARIATIONS.search(prompt)
    variations = int(count.group(1)) if count else DEFAULT_VARIATIONS
    template, end = raw_block(prompt, "current_prompt")
    failures, _ = raw_block(prompt[end:], "failures", greedy=False)
    return (
        role.group(1).lower() if role else "designer",
        template or "",
        (failures or "").strip(),
        max(1, min(MAX_VARIATIONS, variations)),
    )


def raw_block(text: str, tag: str, *, greedy: bool = True) -> tuple[str | None, int]:
    """The content of ``<tag>...</tag>`` and the offset after it; None when absent.

    Only the one newline the layout puts at each end is removed: a template's own
    whitespace is kept. Greedy (up to the LAST closing tag) for a block holding a
    template, so a closing tag inside the template cannot end the block early."""
    lower = text.lower()
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = lower.find(opening)
    if start < 0:
        return None, 0
    start += len(opening)
    end = lower.rfind(closing) if greedy else lower.find(closing, start)
    if end < start:
        return None, 0
    content = text[start:end]
    content = content[1:] if content.startswith("\n") else content
    content = content[:-1] if content.endswith("\n") else content
    return content, end + len(closing)


def fit_variations(answer: PromptVariations, cap_tokens: int) -> PromptVariations:
    """The leading variations whose compact JSON fits in ``cap_tokens`` (at least one).

    Whole templates are long (the designer's is ~1,500 tokens): rather than be cut off
    mid-answer, the stand-in answers fewer variations; one that alone exceeds the cap is
    still cut off by the provider, as a real model's answer would be."""
    kept: list[PromptVariation] = []
    for variation in answer.variations:
        trial = PromptVariations(variations=[*kept, variation])
        text = json.dumps(trial.model_dump(mode="json"), separators=(",", ":"))  # as sent
        if kept and estimate_tokens(text) > cap_tokens:
            break
        kept.append(variation)
    return PromptVariations(variations=kept)
