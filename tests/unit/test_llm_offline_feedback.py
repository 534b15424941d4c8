"""The offline provider reads feedback and assesses results from the numbers it is shown."""

from __future__ import annotations

import statistics

import pytest

from stratlab.llm.base import OFFLINE_MODEL, LlmRequestError
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.offline.inspect import (
    FAMILIES,
    FeedbackSignals,
    code_family_of,
    family_of,
    read_feedback,
    style_of,
)
from stratlab.llm.parsing import MalformedOutputError, parse_structured
from stratlab.llm.prompts import (
    DEFAULT_PROMPTS,
    AssessorContext,
    render_prompt,
)
from stratlab.models.llm import LlmRequest
from stratlab.models.research import Assessment, BacktestMetrics, StrategySpec
from tests.fixtures.offline_requests import (
    FEEDBACK,
    MA_CROSS,
    SETTINGS,
    SYMBOLS,
    complete,
    design,
    designer_request,
    window_highs,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Out-of-sample: sharpe 0.61, total return 20.0%, max drawdown 12.0%, win rate 55.0%, "
            "trades 25, buy-and-hold 30.0%.\nAssessment: Sharpe 0.61, 25 trades.",
            FeedbackSignals(),
        ),
        (
            "Out-of-sample: sharpe 0.10, total return 2.0%, max drawdown 35.0%, win rate 40.0%, "
            "trades 4, buy-and-hold 30.0%.",
            FeedbackSignals(drawdown=True, few_trades=True, low_win_rate=True),
        ),
        (
            "- weakness: Gate check failed: max_drawdown 0.450 (needs <= 0.4)\n"
            "- weakness: Gate check failed: min_validation_trades 1.000 (needs >= 3)",
            FeedbackSignals(drawdown=True, few_trades=True),
        ),
        ("Cut the drawdown. Too many trades.", FeedbackSignals(drawdown=True, many_trades=True)),
        (
            "The win rate is too low; no trades in 2008.",
            FeedbackSignals(few_trades=True, low_win_rate=True),
        ),
        (
            "- statistical gate: deflated_sharpe was 0.190, needs >= 0.95 (N = 1)",
            FeedbackSignals(no_edge=True),
        ),
        ("- statistical gate: deflated_sharpe was 0.910, needs >= 0.95", FeedbackSignals()),
    ],
)
def test_feedback_is_read_from_complaints_and_numbers(text: str, expected: FeedbackSignals) -> None:
    assert read_feedback(text) == expected


async def test_feedback_drawdown_adds_then_tightens_a_stop_loss() -> None:
    previous = StrategySpec.model_validate(MA_CROSS)
    first = await design(designer_request(previous=previous, feedback=FEEDBACK[1], iteration=2))
    assert first.stop_loss is not None and 0.05 <= first.stop_loss <= 0.08
    assert family_of(first) == "ma_cross" and first.entry == previous.entry
    assert first.name == "sp500-ma-cross-0001-r2"
    second = await design(designer_request(previous=first, feedback=FEEDBACK[1], iteration=3))
    assert second.stop_loss == pytest.approx(round(first.stop_loss * 0.7, 3))
    assert second.name == "sp500-ma-cross-0001-r3"


async def test_feedback_too_few_trades_shortens_windows() -> None:
    previous = StrategySpec.model_validate(MA_CROSS)
    revised = await design(designer_request(previous=previous, feedback=FEEDBACK[2]))
    assert family_of(revised) == "ma_cross"
    assert all(
        new.high < old.high
        for new, old in zip(revised.parameters, previous.parameters, strict=True)
    )
    fresh = [
        await design(designer_request(symbol=s, kind="rules", feedback=FEEDBACK[2]))
        for s in SYMBOLS
    ]
    plain = [await design(designer_request(symbol=s, kind="rules")) for s in SYMBOLS]
    assert statistics.mean(h for s in fresh for h in window_highs(s)) < statistics.mean(
        h for s in plain for h in window_highs(s)
    )


async def test_feedback_low_win_rate_switches_to_mean_reversion() -> None:
    previous = StrategySpec.model_validate(MA_CROSS)
    spec = await design(designer_request(previous=previous, feedback=FEEDBACK[3]))
    assert style_of(family_of(spec)) == "mean_reversion"
    assert "Switched from sp500-ma-cross-0001" in spec.rationale


@pytest.mark.parametrize("kind", ["rules", "code"])
async def test_no_edge_switches_to_another_family(kind: str) -> None:
    first = await design(designer_request(kind=kind))
    family = _family(first)
    feedback = "- statistical gate: deflated_sharpe was 0.120, needs >= 0.95 (N = 1)"
    spec = await design(designer_request(kind=kind, previous=first, feedback=feedback, iteration=2))
    assert spec.kind == kind and _family(spec) != family
    assert f"Switched from {first.name} to another family" in spec.rationale
    close = feedback.replace("0.120", "0.910")
    revised = await design(designer_request(kind=kind, previous=first, feedback=close))
    assert _family(revised) == family


def _family(spec: StrategySpec) -> str | None:
    return code_family_of(spec) if spec.kind == "code" else family_of(spec)


async def test_unactionable_feedback_still_revises_the_previous_spec() -> None:
    previous = StrategySpec.model_validate(MA_CROSS)
    spec = await design(designer_request(previous=previous, feedback=FEEDBACK[4]))
    assert family_of(spec) == "ma_cross"
    assert spec.model_dump(exclude={"name", "rationale"}) != previous.model_dump(
        exclude={"name", "rationale"}
    )


def assessor_request(
    metrics: BacktestMetrics,
    *,
    gate_passed: bool = True,
    failures: tuple[str, ...] = (),
    iteration: int = 1,
    spec: StrategySpec | None = None,
    directive: str = "",
) -> LlmRequest:
    default = DEFAULT_PROMPTS["assessor"]
    context = AssessorContext(
        symbol="sp500",
        iteration=iteration,
        max_iterations=3,
        spec_json=(spec or StrategySpec.model_validate(MA_CROSS)).model_dump_json(),
        training_summary="train sharpe: 2.5 (in-sample, not what is assessed)",
        metrics=metrics,
        benchmark_return=metrics.benchmark_return,
        gate_passed=gate_passed,
        gate_failures=list(failures),
    )
    return LlmRequest(
        role="assessor",
        system=default.system + ("\n" + directive if directive else ""),
        prompt=render_prompt(default.content, context),
        schema_name="Assessment",
        json_schema=Assessment.model_json_schema(),
    )


async def assessment(request: LlmRequest) -> Assessment:
    return parse_structured((await complete(request)).text, Assessment)


GOOD = BacktestMetrics(
    sharpe=0.9, total_return=0.4, max_drawdown=0.08, win_rate=0.6, trades=30, benchmark_return=0.3
)
WEAK = BacktestMetrics(
    sharpe=0.2, total_return=0.05, max_drawdown=0.35, win_rate=0.3, trades=4, benchmark_return=0.3
)


async def test_assessor_accepts_a_good_result() -> None:
    result = await assessment(assessor_request(GOOD))
    assert result.verdict == "accept" and result.strengths and not result.suggestions


async def test_assessor_refines_with_suggestions_from_the_numbers() -> None:
    result = await assessment(assessor_request(WEAK))
    assert result.verdict == "refine"
    text = " ".join(result.suggestions).lower()
    assert "drawdown" in text and "too few trades" in text and "low win rate" in text
    assert "35%" in " ".join(result.weaknesses)


async def test_assessor_ignores_metric_lines_outside_the_metrics_block() -> None:
    result = await assessment(assessor_request(WEAK))
    assert "Sharpe 0.20" in result.summary


async def test_assessor_rejects_a_bad_gate_failure_on_the_last_iteration() -> None:
    failures = ("win_rate 0.30 < 0.45", "max_drawdown 0.35 > 0.30")
    last = await assessment(
        assessor_request(WEAK, gate_passed=False, failures=failures, iteration=3)
    )
    assert last.verdict == "reject"
    earlier = await assessment(assessor_request(WEAK, gate_passed=False, failures=failures))
    assert earlier.verdict == "refine"


async def test_assessor_concise_directive_is_shorter() -> None:
    plain = await complete(assessor_request(WEAK))
    concise = await complete(assessor_request(WEAK, directive="Be concise."))
    assert concise.output_tokens < plain.output_tokens


async def test_refinement_loop_closes_offline() -> None:
    """The assessor's suggestions, sent back as feedback, change the next design."""
    previous = StrategySpec.model_validate(MA_CROSS)
    advice = await assessment(assessor_request(WEAK, spec=previous))
    feedback = "\n".join(advice.weaknesses + advice.suggestions)
    revised = await design(designer_request(previous=previous, feedback=feedback, iteration=2))
    assert revised.stop_loss is not None
    assert style_of(family_of(revised)) == "mean_reversion"  # low win rate switches family


async def test_response_metadata_is_estimated_and_simulated() -> None:
    request = designer_request()
    response = await complete(request)
    assert response.provider == "offline" and response.model == OFFLINE_MODEL
    assert OfflineProvider(SETTINGS).model_for(request) == OFFLINE_MODEL
    assert response.tokens_estimated and response.latency_simulated
    assert response.input_tokens == -(-len(request.system) // 4) + -(-len(request.prompt) // 4)
    assert response.output_tokens == -(-len(response.text) // 4)
    assert response.latency_ms == pytest.approx(response.output_tokens * 2.0)


async def test_output_beyond_the_token_cap_is_cut_off_and_fails_parsing() -> None:
    request = designer_request().model_copy(update={"max_output_tokens": 20})
    response = await complete(request)
    assert response.output_tokens <= 20
    with pytest.raises(MalformedOutputError):
        parse_structured(response.text, StrategySpec)


async def test_unknown_role_is_a_request_error() -> None:
    request = designer_request().model_copy(update={"role": "coder"})
    with pytest.raises(LlmRequestError, match="no behaviour for role coder"):
        await complete(request)


def test_every_family_is_reachable_by_name() -> None:
    assert set(FAMILIES) >= {"ma_cross", "macd_cross", "rsi_reversion", "atr_breakout", "ml"}
