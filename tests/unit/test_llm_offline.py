"""The offline provider: deterministic, valid, varied, and steered by directives/feedback."""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from stratlab.config import Settings
from stratlab.llm._offline_families import FAMILIES, family_of, grid_size, is_window_key, style_of
from stratlab.llm._offline_feedback import FeedbackSignals, read_feedback
from stratlab.llm.base import OFFLINE_MODEL, LlmRequestError
from stratlab.llm.directives import DIRECTIVES
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.parsing import MalformedOutputError, parse_structured
from stratlab.llm.prompts import (
    DEFAULT_PROMPTS,
    AssessorContext,
    DesignerContext,
    RecentStrategy,
    render_prompt,
)
from stratlab.market.indicators import INDICATORS, describe_indicators
from stratlab.models.llm import LlmRequest, LlmResponse
from stratlab.models.research import Assessment, BacktestMetrics, StrategySpec
from stratlab.strategies.validation import validate_spec

SETTINGS = Settings(offline_ms_per_output_token=2.0)
SYMBOLS = ["sp500", "nasdaq", "aapl", "msft", "btc", "eurusd", "gld", "tlt", "spy", "qqq"]
FEEDBACK = [
    "",
    "Max drawdown of 35% is deep. Cut the drawdown: add a stop loss of about 5-8%.",
    "Only 3 trades in the test period: too few trades to trust.",
    "Low win rate of 31%.",
    "Sharpe of 0.21 is below 0.5.",
]
DIRECTIVE_TEXTS = [
    "",
    "Always set a stop loss.",
    "Prefer longer lookbacks on daily bars.",
    "Be concise.",
    "Prefer mean reversion.",
    "Prefer trend-following.",
    "Use machine learning.",
    "Keep the parameter grid small.",
    "Take profits.",
    "Use a trend filter.",
    "Prefer breakouts.",
    "Prefer shorter lookbacks.",
]
PRICE_COLUMNS = {"open", "high", "low", "close", "volume"}
FUNCTIONS = {"crosses_above", "crosses_below", "lag", "abs", "min", "max"}
KEYWORDS = {"and", "or", "not"}
_TOKEN = re.compile(
    r"\s+|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?|\d+(?:\.\d*)?|<=|>=|==|!=|[<>+\-*/(),]"
)


def designer_request(
    *,
    symbol: str = "sp500",
    kind: str = "any",
    feedback: str = "",
    previous: StrategySpec | None = None,
    recent: Iterable[RecentStrategy] = (),
    directive: str = "",
    in_system: bool = False,
    iteration: int = 1,
) -> LlmRequest:
    default = DEFAULT_PROMPTS["designer"]
    content, system = default.content, default.system
    if directive and in_system:
        system = f"{system}\n{directive}"
    elif directive:
        content = f"{directive}\n\n{content}"
    context = DesignerContext(
        symbol=symbol,
        kind=kind,  # type: ignore[arg-type]
        iteration=iteration,
        max_iterations=3,
        indicator_catalogue=describe_indicators(),
        data_summary=f"{symbol} daily bars, 3,000 in train and validation",
        recent_strategies=list(recent),
        feedback=feedback,
        previous_spec_json=previous.model_dump_json(indent=2) if previous else "",
    )
    return LlmRequest(
        role="designer",
        system=system,
        prompt=render_prompt(content, context),
        schema_name="StrategySpec",
        json_schema=StrategySpec.model_json_schema(),
    )


async def complete(request: LlmRequest) -> LlmResponse:
    return await OfflineProvider(SETTINGS).complete(request)


async def design(request: LlmRequest) -> StrategySpec:
    return parse_structured((await complete(request)).text, StrategySpec)


def varied_requests(count: int = 50) -> list[LlmRequest]:
    base = StrategySpec.model_validate(_MA_CROSS)
    requests = []
    for i in range(count):
        directive = DIRECTIVE_TEXTS[i % len(DIRECTIVE_TEXTS)]
        if i % 7 == 0:
            directive += " " + DIRECTIVE_TEXTS[(i // 7) % len(DIRECTIVE_TEXTS)]
        recent = [
            RecentStrategy(name=f"x-rsi-reversion-{i}", kind="rules", outcome="failed_backtest")
        ]
        requests.append(
            designer_request(
                symbol=SYMBOLS[i % len(SYMBOLS)],
                kind=("any", "rules", "ml")[i % 3],
                feedback=FEEDBACK[i % len(FEEDBACK)],
                previous=base if i % 4 == 3 else None,
                recent=recent if i % 6 == 0 else (),
                directive=directive.strip(),
                in_system=i % 2 == 0,
                iteration=1 + i % 3,
            )
        )
    return requests


_MA_CROSS = {
    "name": "sp500-ma-cross-0001",
    "kind": "rules",
    "symbol": "sp500",
    "indicators": [
        {"alias": "fast", "kind": "sma", "params": {"window": "fast_window"}},
        {"alias": "slow", "kind": "sma", "params": {"window": "slow_window"}},
    ],
    "entry": "crosses_above(fast, slow)",
    "exit": "crosses_below(fast, slow)",
    "parameters": [
        {"name": "fast_window", "low": 10, "high": 30, "step": 5},
        {"name": "slow_window", "low": 50, "high": 150, "step": 25},
    ],
}


def assert_vocabulary(spec: StrategySpec) -> None:
    """Expressions use only the documented language; names resolve; grids are sane."""
    aliases = {ref.alias: ref.kind for ref in spec.indicators}
    params = {p.name for p in spec.parameters}
    for ref in spec.indicators:
        assert ref.kind in INDICATORS
        for value in ref.params.values():
            assert not isinstance(value, str) or value in params, (spec.name, value)
    for text in (spec.entry, spec.exit):
        assert "".join(_TOKEN.findall(text)) == text, f"stray characters in {text!r}"
        for token in _TOKEN.findall(text):
            if not re.match(r"[A-Za-z_]", token):
                continue
            alias, _, output = token.partition(".")
            if output:
                assert alias in aliases and output in INDICATORS[aliases[alias]].outputs, token
            else:
                assert token in PRICE_COLUMNS | FUNCTIONS | KEYWORDS | set(aliases) | params, token
    if spec.kind == "ml":
        assert spec.ml is not None and not spec.entry and not spec.exit
        for feature in spec.ml.features:
            assert feature.partition(".")[0] in aliases
    else:
        assert spec.entry and spec.exit and spec.parameters


async def test_fifty_varied_designs_parse_validate_and_use_the_language() -> None:
    specs = [await design(request) for request in varied_requests(50)]
    for spec in specs:
        assert_vocabulary(spec)
        validate_spec(spec)  # stratlab.strategies.validation: the lab's own gate
        if spec.kind == "rules":
            assert 9 <= grid_size(spec.parameters) <= 400, spec.name
    families = {family_of(spec) for spec in specs}
    assert len(families) >= 6, families


async def test_grids_without_small_grid_directive_hold_20_to_400_combos() -> None:
    for symbol in SYMBOLS:
        for kind in ("rules", "any"):
            spec = await design(designer_request(symbol=symbol, kind=kind))
            if spec.kind == "rules":
                assert 20 <= grid_size(spec.parameters) <= 400, spec


async def test_same_prompt_gives_identical_response_whatever_the_global_state() -> None:
    request = designer_request(symbol="nasdaq", feedback=FEEDBACK[1])
    random.seed(1)
    first = await complete(request)
    random.seed(2)
    second = await OfflineProvider(SETTINGS).complete(request)
    assert first == second


_SUBPROCESS = """
import asyncio, sys
from tests.unit.test_llm_offline import FEEDBACK, complete, designer_request
request = designer_request(symbol="nasdaq", kind="any", feedback=FEEDBACK[2])
sys.stdout.write(asyncio.run(complete(request)).text)
"""


async def test_same_prompt_gives_identical_response_in_another_process() -> None:
    """No set ordering or hash randomisation leaks into the answer."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    request = designer_request(symbol="nasdaq", kind="any", feedback=FEEDBACK[2])
    assert result.stdout == (await complete(request)).text


async def test_different_symbols_give_different_designs() -> None:
    specs = [await design(designer_request(symbol=s, kind="rules")) for s in SYMBOLS]
    assert len({family_of(spec) for spec in specs}) >= 4
    shapes = {(s.entry, tuple((p.low, p.high, p.step) for p in s.parameters)) for s in specs}
    assert len(shapes) >= 6
    assert all(spec.symbol == symbol for spec, symbol in zip(specs, SYMBOLS, strict=True))


async def test_different_feedback_gives_different_designs() -> None:
    specs = [await design(designer_request(feedback=f, kind="rules")) for f in FEEDBACK]
    assert len({s.model_dump_json(exclude={"rationale"}) for s in specs}) == len(FEEDBACK)


async def test_recent_failures_steer_away_from_their_family() -> None:
    counts = {"with": 0, "without": 0}
    failed = [
        RecentStrategy(
            name=f"{s}-{f.replace('_', '-')}-0000", kind="rules", outcome="failed_backtest"
        )
        for s in ("a", "b")
        for f in ("rsi_reversion", "bollinger_reversion", "stoch_reversion", "zscore_reversion")
    ]
    for symbol in [f"{s}{n}" for s in SYMBOLS for n in range(8)]:
        for label, recent in (("with", failed), ("without", [])):
            spec = await design(designer_request(symbol=symbol, kind="rules", recent=recent))
            counts[label] += style_of(family_of(spec)) == "mean_reversion"
    assert counts["with"] < 0.7 * counts["without"]


def _window_highs(spec: StrategySpec) -> list[float]:
    names = {
        value
        for ref in spec.indicators
        for key, value in ref.params.items()
        if is_window_key(key) and isinstance(value, str)
    }
    return [p.high for p in spec.parameters if p.name in names]


async def test_directives_stop_loss_and_take_profit() -> None:
    for symbol in SYMBOLS:
        plain = await design(designer_request(symbol=symbol))
        assert plain.stop_loss is None and plain.take_profit is None
        steered = await design(
            designer_request(symbol=symbol, directive="Always set a stop loss. Take profits.")
        )
        assert steered.stop_loss is not None and 0.05 <= steered.stop_loss <= 0.08
        assert steered.take_profit is not None and 0.10 <= steered.take_profit <= 0.20


async def test_directive_longer_lookbacks_doubles_windows() -> None:
    plain: list[float] = []
    longer: list[float] = []
    for symbol in [f"{s}{n}" for s in SYMBOLS for n in range(2)]:
        plain += _window_highs(await design(designer_request(symbol=symbol, kind="rules")))
        longer += _window_highs(
            await design(
                designer_request(
                    symbol=symbol, kind="rules", directive="Prefer longer lookbacks on daily bars."
                )
            )
        )
    assert statistics.mean(longer) > 1.6 * statistics.mean(plain)


async def test_directive_be_concise_costs_fewer_output_tokens() -> None:
    plain, concise = [], []
    for symbol in SYMBOLS:
        plain.append((await complete(designer_request(symbol=symbol))).output_tokens)
        concise.append(
            (await complete(designer_request(symbol=symbol, directive="Be concise."))).output_tokens
        )
    assert statistics.mean(concise) < 0.75 * statistics.mean(plain)
    detailed = await complete(designer_request(directive="Explain your reasoning in detail."))
    assert detailed.output_tokens > max(plain)


@pytest.mark.parametrize(
    ("directive", "style"),
    [
        ("Prefer mean reversion.", "mean_reversion"),
        ("Prefer trend-following strategies.", "trend"),
        ("Prefer breakouts.", "breakout"),
    ],
)
async def test_directive_family_preferences(directive: str, style: str) -> None:
    for symbol in SYMBOLS:
        spec = await design(designer_request(symbol=symbol, kind="rules", directive=directive))
        assert style_of(family_of(spec)) == style


async def test_directive_machine_learning_respects_an_explicit_kind() -> None:
    for symbol in SYMBOLS[:5]:
        spec = await design(designer_request(symbol=symbol, directive="Use machine learning."))
        assert spec.kind == "ml" and spec.ml is not None
        ruled = await design(
            designer_request(symbol=symbol, kind="rules", directive="Use machine learning.")
        )
        assert ruled.kind == "rules"


async def test_directive_small_grid_and_trend_filter() -> None:
    for symbol in SYMBOLS:
        spec = await design(
            designer_request(
                symbol=symbol,
                kind="rules",
                directive="Keep the parameter grid small. Use a trend filter.",
            )
        )
        assert grid_size(spec.parameters) <= 27
        assert spec.entry.endswith("and close > trend")
        validate_spec(spec)


async def test_directive_phrases_in_feedback_are_not_directives() -> None:
    spec = await design(designer_request(feedback="Please always set a stop loss next time."))
    assert spec.stop_loss is None


def test_directive_table_is_documented() -> None:
    keys = [d.key for d in DIRECTIVES]
    assert len(keys) == len(set(keys))
    assert all(d.phrases and d.effect for d in DIRECTIVES)


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
    ],
)
def test_feedback_is_read_from_complaints_and_numbers(text: str, expected: FeedbackSignals) -> None:
    assert read_feedback(text) == expected


async def test_feedback_drawdown_adds_then_tightens_a_stop_loss() -> None:
    previous = StrategySpec.model_validate(_MA_CROSS)
    first = await design(designer_request(previous=previous, feedback=FEEDBACK[1], iteration=2))
    assert first.stop_loss is not None and 0.05 <= first.stop_loss <= 0.08
    assert family_of(first) == "ma_cross" and first.entry == previous.entry
    assert first.name == "sp500-ma-cross-0001-r2"
    second = await design(designer_request(previous=first, feedback=FEEDBACK[1], iteration=3))
    assert second.stop_loss == pytest.approx(round(first.stop_loss * 0.7, 3))
    assert second.name == "sp500-ma-cross-0001-r3"


async def test_feedback_too_few_trades_shortens_windows() -> None:
    previous = StrategySpec.model_validate(_MA_CROSS)
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
    assert statistics.mean(h for s in fresh for h in _window_highs(s)) < statistics.mean(
        h for s in plain for h in _window_highs(s)
    )


async def test_feedback_low_win_rate_switches_to_mean_reversion() -> None:
    previous = StrategySpec.model_validate(_MA_CROSS)
    spec = await design(designer_request(previous=previous, feedback=FEEDBACK[3]))
    assert style_of(family_of(spec)) == "mean_reversion"
    assert "Switched from sp500-ma-cross-0001" in spec.rationale


async def test_unactionable_feedback_still_revises_the_previous_spec() -> None:
    previous = StrategySpec.model_validate(_MA_CROSS)
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
        spec_json=(spec or StrategySpec.model_validate(_MA_CROSS)).model_dump_json(),
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
    previous = StrategySpec.model_validate(_MA_CROSS)
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
    request = designer_request().model_copy(update={"role": "mutator"})
    with pytest.raises(LlmRequestError, match="offline provider has no behaviour for role mutator"):
        await complete(request)


def test_every_family_is_reachable_by_name() -> None:
    assert set(FAMILIES) >= {"ma_cross", "macd_cross", "rsi_reversion", "atr_breakout", "ml"}
