"""Prompt rendering: sandbox, strict undefined, one-line errors, and the default prompts."""

from __future__ import annotations

import pytest

from stratlab.llm.offline import find_directives
from stratlab.llm.prompts import (
    DEFAULT_PROMPTS,
    AssessorContext,
    DesignerContext,
    PromptRenderError,
    RecentStrategy,
    example_context,
    render_prompt,
)
from stratlab.models.research import BacktestMetrics


def test_renders_mapping_and_model_contexts() -> None:
    assert render_prompt("Symbol: {{ symbol }}", {"symbol": "sp500"}) == "Symbol: sp500"
    context = example_context("designer")
    assert "Symbol: sp500" in render_prompt("Symbol: {{ symbol }}", context)


def test_undefined_variable_is_a_one_line_error_with_its_name() -> None:
    with pytest.raises(PromptRenderError) as caught:
        render_prompt("line one\nHello {{ missing_name }}", {"symbol": "x"})
    message = str(caught.value)
    assert "undefined variable" in message and "missing_name" in message
    assert "line 2" in message
    assert "\n" not in message


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(PromptRenderError) as caught:
        render_prompt("ok\n{% if symbol %}\nno endif", {"symbol": "x"})
    assert str(caught.value).startswith("syntax error at line")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ symbol.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_blocks_attribute_escapes(template: str) -> None:
    with pytest.raises(PromptRenderError) as caught:
        render_prompt(template, {"symbol": "x"})
    message = str(caught.value)
    assert message.startswith(("sandbox violation", "undefined variable")), message
    assert "\n" not in message


def test_sandbox_blocks_unsafe_method_calls() -> None:
    with pytest.raises(PromptRenderError, match="sandbox violation"):
        render_prompt("{{ '{0.__class__}'.format(symbol) }}", {"symbol": "x"})


def test_runtime_error_in_template_is_wrapped() -> None:
    with pytest.raises(PromptRenderError, match="ZeroDivisionError"):
        render_prompt("{{ 1 / 0 }}", {})


def test_default_prompts_load_with_version_and_system() -> None:
    assert set(DEFAULT_PROMPTS) == {"designer", "assessor", "mutator", "sanity", "composer"}
    for role, prompt in DEFAULT_PROMPTS.items():
        assert prompt.role == role
        assert prompt.version == "1.0.0"
        assert prompt.system.strip() and prompt.content.strip()
        render_prompt(prompt.system, {})  # a system prompt contains no template syntax


def _designer_context(**changes: object) -> DesignerContext:
    base = example_context("designer")
    assert isinstance(base, DesignerContext)
    return base.model_copy(update=changes)


def test_designer_template_presents_context_and_language() -> None:
    context = _designer_context(
        symbol="nasdaq",
        kind="rules",
        iteration=2,
        max_iterations=4,
        recent_strategies=[
            RecentStrategy(name="old-rsi", kind="rules", outcome="failed_backtest", sharpe=-0.2),
            RecentStrategy(name="old-ml", kind="ml", outcome="failed_training", sharpe=None),
        ],
        feedback="Too few trades.",
        previous_spec_json='{"name": "old-rsi"}',
    )
    text = render_prompt(DEFAULT_PROMPTS["designer"].content, context)
    for expected in (
        "Symbol: nasdaq",
        "Kind: rules",
        "Iteration: 2 of 4",
        "- old-rsi | kind=rules | outcome=failed_backtest | sharpe=-0.20",
        "sharpe=n/a",
        "<feedback>\nToo few trades.\n</feedback>",
        '<previous_spec>\n{"name": "old-rsi"}\n</previous_spec>',
        "crosses_above(a, b)",
        "crosses_below(a, b)",
        "lag(x, n)",
        "abs(x), min(a, b), max(a, b)",
        "open, high, low, close, volume",
        "alias.output",
        "parameter names",
        "final holdout is never shown",
        '"ml"',
        "macd(fast",
    ):
        assert expected in text, expected


def test_designer_template_omits_empty_feedback_and_previous_spec() -> None:
    text = render_prompt(DEFAULT_PROMPTS["designer"].content, _designer_context())
    assert "<feedback>" not in text and "<previous_spec>" not in text
    assert "(none yet)" in text


def test_assessor_template_renders_metric_lines_and_gate() -> None:
    context = AssessorContext(
        symbol="sp500",
        iteration=3,
        max_iterations=3,
        spec_json="{}",
        training_summary="grid 25",
        metrics=BacktestMetrics(sharpe=0.53, max_drawdown=0.31, trades=7, win_rate=0.4),
        benchmark_return=0.2,
        gate_passed=False,
        gate_failures=["win_rate 0.40 < 0.45", "max_drawdown 0.31 > 0.25"],
    )
    text = render_prompt(DEFAULT_PROMPTS["assessor"].content, context)
    for expected in (
        "Gate: failed",
        "- win_rate 0.40 < 0.45",
        "sharpe: 0.5300",
        "max_drawdown: 0.3100",
        "trades: 7",
        "benchmark_return: 0.2000",
        '"verdict"',
        "last iteration",
    ):
        assert expected in text, expected


def test_default_prompts_carry_no_offline_directive() -> None:
    """The baseline is neutral, so that directives added by the optimizer are what differ."""
    for role in ("designer", "assessor"):
        prompt = DEFAULT_PROMPTS[role]
        text = prompt.system + "\n" + render_prompt(prompt.content, example_context(role))
        assert find_directives(text, role) == frozenset()
