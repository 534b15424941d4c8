"""parse_structured: JSON found in plain, fenced or prose answers; one-line reasons."""

from __future__ import annotations

import json

import pytest

from stratlab.llm.parsing import MAX_OUTPUT_CHARS, MalformedOutputError, parse_structured
from stratlab.models.llm import LlmRequest
from stratlab.models.research import Assessment, StrategySpec

ASSESSMENT = {
    "verdict": "refine",
    "summary": "Sharpe 0.3 {not a brace problem}",
    "strengths": [],
    "weaknesses": ["drawdown"],
    "suggestions": ["add a stop loss"],
}
TEXT = json.dumps(ASSESSMENT)


def _reason(text: str, model: type = Assessment) -> str:
    with pytest.raises(MalformedOutputError) as caught:
        parse_structured(text, model)
    reason = str(caught.value)
    assert "\n" not in reason
    return reason


def test_plain_json() -> None:
    assert parse_structured(TEXT, Assessment).verdict == "refine"


def test_fenced_json_with_prose() -> None:
    text = f"Here is my assessment:\n```json\n{json.dumps(ASSESSMENT, indent=2)}\n```\nThanks!"
    assert parse_structured(text, Assessment).summary == ASSESSMENT["summary"]


def test_bare_fence() -> None:
    assert parse_structured(f"```\n{TEXT}\n```", Assessment).verdict == "refine"


def test_prose_around_json_takes_first_balanced_object() -> None:
    text = f'Sure. {TEXT} And a second one: {{"verdict": "accept"}}'
    assert parse_structured(text, Assessment).verdict == "refine"


def test_braces_inside_strings_do_not_confuse_the_scan() -> None:
    text = "Answer -> " + json.dumps({**ASSESSMENT, "summary": 'a } b { c \\" }'}) + " end"
    assert parse_structured(text, Assessment).summary == 'a } b { c \\" }'


def test_skips_a_non_json_brace_group_before_the_answer() -> None:
    text = "Using the {fast, slow} pair, my answer is " + TEXT
    assert parse_structured(text, Assessment).verdict == "refine"


def test_think_block_is_ignored() -> None:
    text = '<think>maybe {"verdict": "accept"} ... no</think>\n' + TEXT
    assert parse_structured(text, Assessment).verdict == "refine"


def test_no_json() -> None:
    assert _reason("I cannot help with that.").startswith("no JSON found")
    assert _reason("   ").startswith("no JSON found")


def test_invalid_json_reports_the_char() -> None:
    reason = _reason('{"verdict": "accept", "summary": oops}')
    assert reason.startswith("invalid JSON at char 33")


def test_invalid_json_in_fence_reports_the_position_in_the_whole_text() -> None:
    reason = _reason('Intro\n```json\n{"verdict": }\n```')
    assert reason.startswith("invalid JSON at char 26")


def test_truncated_output() -> None:
    assert "unbalanced" in _reason(TEXT[:40])


def test_non_object_json() -> None:
    assert "no JSON found" in _reason("[1, 2, 3]")


def test_missing_fields_are_summarised_with_paths() -> None:
    reason = _reason('{"verdict": "maybe"}')
    assert reason.startswith("schema errors: ")
    assert "verdict: " in reason and "summary: Field required" in reason


def test_nested_paths_and_at_most_five_errors() -> None:
    spec = {
        "name": "x",
        "indicators": [{"alias": 1}],
        "parameters": [{"name": "a"}, {"name": "b"}, {"low": "x"}],
    }
    reason = _reason(json.dumps(spec), StrategySpec)
    assert "indicators.0.alias" in reason
    assert reason.count(";") == 4 and "more)" in reason


def test_extra_fields_are_ignored() -> None:
    parsed = parse_structured(json.dumps({**ASSESSMENT, "confidence": 0.9}), Assessment)
    assert not hasattr(parsed, "confidence")


def test_oversized_output_is_rejected_before_scanning() -> None:
    text = "x" * (MAX_OUTPUT_CHARS + 1)
    assert _reason(text) == f"output is {len(text):,} characters; the limit is 1,000,000"


@pytest.mark.parametrize("answer", [StrategySpec, Assessment])
def test_a_request_carries_the_name_and_schema_of_the_answer_it_parses_into(
    answer: type[StrategySpec] | type[Assessment],
) -> None:
    request = LlmRequest.answered_by(
        answer, role="designer", system="s", prompt="p", max_output_tokens=512
    )
    assert (request.schema_name, request.max_output_tokens) == (answer.__name__, 512)
    assert request.json_schema == answer.model_json_schema()
