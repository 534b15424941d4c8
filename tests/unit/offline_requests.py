"""Requests for the offline provider tests: varied prompts built from the real templates."""

from __future__ import annotations

import re
from collections.abc import Iterable

from stratlab.config import Settings
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.offline.inspect import is_window_key
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import (
    DEFAULT_PROMPTS,
    DesignerContext,
    RecentStrategy,
    render_prompt,
)
from stratlab.market.indicators import INDICATORS, describe_indicators
from stratlab.models.llm import LlmRequest, LlmResponse
from stratlab.models.research import StrategySpec

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
    data_summary: str = "",
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
        data_summary=data_summary or f"{symbol} daily bars, 3,000 in train and validation",
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
    base = StrategySpec.model_validate(MA_CROSS)
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


MA_CROSS = {
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


def window_highs(spec: StrategySpec) -> list[float]:
    names = {
        value
        for ref in spec.indicators
        for key, value in ref.params.items()
        if is_window_key(key) and isinstance(value, str)
    }
    return [p.high for p in spec.parameters if p.name in names]
