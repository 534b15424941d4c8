"""Read what the offline provider needs from a rendered prompt.

The line formats are the ones the default templates render (see templates/*.j2):

    Symbol: <name>                     first line starting with "Symbol:"
    Kind: rules | ml | code | any      missing or anything else means any
    Iteration: <n> of <max>            "of" or "/"; missing means 1 of 1
    <feedback> ... </feedback>         or a markdown section whose heading says Feedback
    <previous_spec> {json} </previous_spec>
    <recent_strategies> - <name> | kind=.. | outcome=<word> | sharpe=.. </recent_strategies>
    Gate: passed | failed              (assessor) missing means failed
    Gate failures: followed by "- ..." lines
    <spec> {json} </spec>              (assessor) the assessed strategy
    <metrics> name: number lines </metrics>; without the block, the last
                                       "name: number" line in the prompt wins

Keys are matched case-insensitively, so a mutated template that keeps these lines keeps
working; everything here is forgiving and falls back to a neutral default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from stratlab.llm.offline._directives import find_directives
from stratlab.llm.parsing import MalformedOutputError, parse_structured
from stratlab.models.research import BacktestMetrics, StrategySpec

_FLAGS = re.IGNORECASE | re.MULTILINE
_SYMBOL = re.compile(r"^[ \t]*symbol[ \t]*:[ \t]*(\S+)", _FLAGS)
_KIND = re.compile(r"^[ \t]*kind[ \t]*:[ \t]*([A-Za-z]+)", _FLAGS)
_ITERATION = re.compile(r"^[ \t]*iteration[ \t]*:[ \t]*(\d+)(?:[ \t]*(?:of|/)[ \t]*(\d+))?", _FLAGS)
_GATE = re.compile(r"^[ \t]*gate[ \t]*:[ \t]*(passed|pass|failed|fail)\b", _FLAGS)
_GATE_FAILURES = re.compile(r"^[ \t]*gate failures[ \t]*:[ \t]*\n((?:[ \t]*-[^\n]*\n?)+)", _FLAGS)
_RECENT_LINE = re.compile(r"^[ \t]*-[ \t]*(\S+)(.*)$", re.MULTILINE)
_OUTCOME = re.compile(r"outcome[ \t]*=[ \t]*(\w+)", re.IGNORECASE)
_DATA_SECTION = re.compile(r"^#+[ \t]*data\b[^\n]*\n(.*?)(?=^#+[ \t]|\Z)", _FLAGS | re.DOTALL)
_FEEDBACK_SECTION = re.compile(r"^#+[^\n]*feedback[^\n]*\n(.*?)(?=^#+[ \t]|\Z)", _FLAGS | re.DOTALL)
_NUMBER = r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|-?nan|-?inf)"
_METRIC_NAMES = tuple(BacktestMetrics.model_fields)
_METRIC_LINE = re.compile(
    rf"^[ \t]*({'|'.join(_METRIC_NAMES)})[ \t]*[:=][ \t]*{_NUMBER}[ \t]*$", _FLAGS
)


@dataclass(frozen=True)
class RecentView:
    name: str
    outcome: str


@dataclass(frozen=True)
class DesignerView:
    symbol: str
    kind: str
    iteration: int
    max_iterations: int
    feedback: str
    previous_spec: StrategySpec | None
    recent: tuple[RecentView, ...]
    directives: frozenset[str]
    data: str = ""

    def fingerprint(self) -> str:
        """What seeds the designer's random choices: the task (symbol, kind, round, data,
        feedback, history), never the wording of the prompt. Directives are applied on
        top of those choices, so each has the same effect wherever it appears and a
        rephrased prompt with the same instructions designs the same strategy."""
        previous = self.previous_spec.model_dump_json() if self.previous_spec else ""
        return "\x1f".join(
            [
                self.symbol,
                self.kind,
                f"{self.iteration}/{self.max_iterations}",
                self.data,
                self.feedback,
                previous,
                ";".join(f"{r.name}={r.outcome}" for r in self.recent),
            ]
        )


@dataclass(frozen=True)
class AssessorView:
    symbol: str
    iteration: int
    max_iterations: int
    gate_passed: bool
    gate_failures: tuple[str, ...]
    metrics: dict[str, float]
    spec: StrategySpec | None
    directives: frozenset[str]


def block(text: str, tag: str) -> str | None:
    """The stripped content of ``<tag>...</tag>``, or None when the block is absent."""
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL | re.IGNORECASE)
    return match.group(1).strip() if match else None


def read_designer(system: str, prompt: str) -> DesignerView:
    symbol = _SYMBOL.search(prompt)
    kind = _KIND.search(prompt)
    kind_value = kind.group(1).lower() if kind else "any"
    iteration, max_iterations = _iteration(prompt)
    return DesignerView(
        symbol=symbol.group(1) if symbol else "sp500",
        kind=kind_value if kind_value in ("rules", "ml", "code") else "any",
        iteration=iteration,
        max_iterations=max_iterations,
        feedback=_feedback(prompt),
        previous_spec=_spec(block(prompt, "previous_spec")),
        recent=_recent(block(prompt, "recent_strategies") or ""),
        directives=find_directives(f"{system}\n{prompt}", "designer"),
        data=_data(prompt),
    )


def _data(prompt: str) -> str:
    section = _DATA_SECTION.search(prompt)
    return " ".join(section.group(1).split()) if section else ""


def read_assessor(system: str, prompt: str) -> AssessorView:
    symbol = _SYMBOL.search(prompt)
    gate = _GATE.search(prompt)
    failures = _GATE_FAILURES.search(prompt)
    iteration, max_iterations = _iteration(prompt)
    return AssessorView(
        symbol=symbol.group(1) if symbol else "sp500",
        iteration=iteration,
        max_iterations=max_iterations,
        gate_passed=bool(gate) and gate.group(1).lower().startswith("pass"),  # type: ignore[union-attr]
        gate_failures=tuple(
            line.strip().lstrip("-").strip()
            for line in (failures.group(1).splitlines() if failures else [])
            if line.strip()
        ),
        metrics=_metrics(block(prompt, "metrics") or prompt),
        spec=_spec(block(prompt, "spec")),
        directives=find_directives(f"{system}\n{prompt}", "assessor"),
    )


def _iteration(prompt: str) -> tuple[int, int]:
    match = _ITERATION.search(prompt)
    if not match:
        return 1, 1
    iteration = max(1, int(match.group(1)))
    return iteration, max(iteration, int(match.group(2) or iteration))


def _feedback(prompt: str) -> str:
    tagged = block(prompt, "feedback")
    if tagged is not None:
        return tagged
    section = _FEEDBACK_SECTION.search(prompt)
    return section.group(1).strip() if section else ""


def _spec(text: str | None) -> StrategySpec | None:
    if not text:
        return None
    try:
        return parse_structured(text, StrategySpec)
    except MalformedOutputError:
        return None  # an unreadable previous spec means starting over, as a person would


def _recent(text: str) -> tuple[RecentView, ...]:
    views = []
    for match in _RECENT_LINE.finditer(text):
        outcome = _OUTCOME.search(match.group(2))
        views.append(RecentView(match.group(1), outcome.group(1).lower() if outcome else ""))
    return tuple(views)


def _metrics(text: str) -> dict[str, float]:
    """Metric lines; a later line wins and NaN or infinite values read as 0."""
    values: dict[str, float] = {}
    for match in _METRIC_LINE.finditer(text):
        value = float(match.group(2))
        values[match.group(1).lower()] = value if math.isfinite(value) else 0.0
    return values
