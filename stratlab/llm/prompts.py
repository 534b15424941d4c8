"""Prompt rendering: sandboxed Jinja2 templates, their context models and the defaults.

Templates are text prompts, so autoescape is off. They come from the prompt registry and
are rewritten by the optimizer, so they are untrusted: rendering runs in Jinja2's
``SandboxedEnvironment`` with ``StrictUndefined``, and every failure becomes a
``PromptRenderError`` with a one-line message the optimizer can store and show.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from pydantic import BaseModel, Field

from stratlab.models.research import BacktestMetrics

PROMPT_VERSION = "1.0.0"

_ENV = SandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)
"""One shared environment: it holds no state that a render can change."""


class PromptRenderError(ValueError):
    """A template could not be rendered; the message is one line."""


class RecentStrategy(BaseModel):
    """A recent design on the same symbol, shown so the designer does not repeat itself."""

    name: str
    kind: str
    outcome: str
    sharpe: float | None = None


class DesignerContext(BaseModel):
    symbol: str
    kind: Literal["rules", "ml", "code", "any"] = "any"
    iteration: int = 1
    max_iterations: int = 3
    indicator_catalogue: str
    data_summary: str
    recent_strategies: list[RecentStrategy] = Field(default_factory=list)
    feedback: str = ""
    previous_spec_json: str = ""
    # Rendered by stratlab.research.skills.skills_context: past winners, shown as data.
    skills: str = ""
    objective: str = ""
    """What the strategy is asked to achieve; empty: no section in the prompt."""


class AssessorContext(BaseModel):
    symbol: str
    iteration: int = 1
    max_iterations: int = 3
    spec_json: str
    training_summary: str
    metrics: BacktestMetrics
    benchmark_return: float
    gate_passed: bool
    gate_failures: list[str] = Field(default_factory=list)


class MutatorContext(BaseModel):
    """The optimizer's meta-prompt (seed 003): a role's prompt and what it failed at.

    ``system`` and ``template`` are rendered as values inside data blocks, never
    compiled, so a template under mutation cannot run in this render."""

    role: str
    system: str
    template: str
    failure_summary: str
    variations: int = 3


class SanityContext(BaseModel):
    """A candidate template to check before it is tested, and the one it came from."""

    role: str
    system: str
    template: str
    parent_template: str = ""


class ComposerInstrument(BaseModel):
    symbol: str
    position: float = 0.0
    features: dict[str, float] = Field(default_factory=dict)


class ComposerContext(BaseModel):
    """One decision of the paper-trading composer (seed 001's ComposeContext, rendered)."""

    ts: str
    equity: float
    cash: float
    max_position_notional: float
    allow_short: bool = False
    halted: bool = False
    instruments: list[ComposerInstrument] = Field(default_factory=list)
    digest: list[str] = Field(default_factory=list, description="one line per instrument")
    skill: str = ""


@dataclass(frozen=True)
class DefaultPrompt:
    """A role's built-in prompt: the seed of the prompt registry."""

    role: str
    system: str
    content: str
    version: str = PROMPT_VERSION


def render_prompt(template: str, context: BaseModel | Mapping[str, Any]) -> str:
    """Render ``template`` with ``context`` in the sandbox; raise ``PromptRenderError``."""
    values = context.model_dump() if isinstance(context, BaseModel) else dict(context)
    try:
        compiled = _ENV.from_string(template)
    except TemplateSyntaxError as exc:
        raise PromptRenderError(f"syntax error at line {exc.lineno}: {_one_line(exc)}") from exc
    except TemplateError as exc:
        raise PromptRenderError(f"invalid template: {_one_line(exc)}") from exc
    try:
        return compiled.render(values)
    except SecurityError as exc:
        raise PromptRenderError(f"sandbox violation{_at(exc)}: {_one_line(exc)}") from exc
    except UndefinedError as exc:
        raise PromptRenderError(f"undefined variable{_at(exc)}: {_one_line(exc)}") from exc
    except Exception as exc:  # a template can raise anything its expressions can
        raise PromptRenderError(
            f"render failed{_at(exc)}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _at(exc: BaseException) -> str:
    """' at line N' from Jinja's rewritten traceback, or '' when it has none."""
    line = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def _load(name: str) -> str:
    return resources.files("stratlab.llm").joinpath("templates", name).read_text("utf-8")


def _default(role: str) -> DefaultPrompt:
    # The system prompts sit beside the templates as .j2 files so the package-data glob
    # ships them; they are plain text and are not rendered.
    return DefaultPrompt(
        role=role,
        system=_load(f"{role}.system.j2").strip(),
        content=_load(f"{role}.j2"),
    )


DEFAULT_PROMPTS: dict[str, DefaultPrompt] = {
    role: _default(role) for role in ("designer", "assessor", "mutator", "sanity", "composer")
}


def example_context(role: str) -> BaseModel:
    """A plausible context for ``role``: for dry renders of candidate templates and tests."""
    example = _EXAMPLE_CONTEXTS.get(role)
    if example is None:
        known = ", ".join(DEFAULT_PROMPTS)
        raise ValueError(f"no example context for role {role!r}; known: {known}")
    return example()


def _example_designer() -> DesignerContext:
    # Imported here: the indicator catalogue imports pandas, which no other render needs.
    from stratlab.market.indicators import describe_indicators

    return DesignerContext(
        symbol="sp500",
        kind="any",
        iteration=1,
        max_iterations=3,
        indicator_catalogue=describe_indicators(),
        data_summary="sp500 daily bars 1999-01-04 to 2014-12-31 (train and validation).",
    )


def _example_assessor() -> AssessorContext:
    return AssessorContext(
        symbol="sp500",
        iteration=1,
        max_iterations=3,
        spec_json='{"name": "example", "kind": "rules"}',
        training_summary="grid of 25 combinations; validation sharpe 0.62 over 14 trades",
        metrics=BacktestMetrics.model_validate(
            {
                "sharpe": 0.42,
                "total_return": 0.08,
                "max_drawdown": 0.12,
                "trades": 12,
                "win_rate": 0.5,
                "exposure": 0.4,
                "benchmark_return": 0.15,
                "bars": 1000,
            }
        ),
        benchmark_return=0.15,
        gate_passed=True,
    )


def _example_mutator() -> MutatorContext:
    designer = DEFAULT_PROMPTS["designer"]
    return MutatorContext(
        role="designer",
        system=designer.system,
        template=designer.content,
        failure_summary=(
            "12 of 30 benchmark tasks failed. Most common causes:\n"
            "- max_drawdown too high: 7 tasks\n"
            "- outcome failed_training_gate: 3 tasks\n"
            "Failed tasks:\n"
            "- sp500-gfc-crash-capital-preservation: max_drawdown 0.31 > 0.12 "
            "(needs <= 0.12)"
        ),
        variations=3,
    )


def _example_sanity() -> SanityContext:
    designer = DEFAULT_PROMPTS["designer"]
    return SanityContext(
        role="designer",
        system=designer.system,
        template=designer.content,
        parent_template=designer.content,
    )


def _example_composer() -> ComposerContext:
    return ComposerContext(
        ts="2016-01-04T00:00:00+00:00",
        equity=100_000.0,
        cash=100_000.0,
        max_position_notional=50_000.0,
        instruments=[
            ComposerInstrument(
                symbol="sp500",
                features={"close": 2012.66, "ret_20": 0.012, "sma_ratio_20_50": 1.01},
            )
        ],
        digest=["sp500: 2 trades, realised P&L +120.50, win rate 50%"],
    )


_EXAMPLE_CONTEXTS: dict[str, Callable[[], BaseModel]] = {
    "designer": _example_designer,
    "assessor": _example_assessor,
    "mutator": _example_mutator,
    "sanity": _example_sanity,
    "composer": _example_composer,
}
"""One example per role of ``DEFAULT_PROMPTS``; each is built on demand, so the designer's
indicator catalogue is only read when asked for."""
