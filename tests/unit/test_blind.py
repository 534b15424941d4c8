"""Blind mode: the designer's prompt names no market, no date and no price level, and the
lab still stores the strategy under the real symbol."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from stratlab.config import Settings
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import DEFAULT_PROMPTS, render_prompt
from stratlab.market.datasets import load_bundled
from stratlab.market.splits import Splits, split_by_time
from stratlab.models.llm import LlmRequest, LlmResponse
from stratlab.models.records import PastStrategy, SkillRecord
from stratlab.models.research import (
    BacktestMetrics,
    DesignInput,
    IndicatorRef,
    ParamRange,
    StrategySpec,
)
from stratlab.research.blind import Blinder, blind_train_summary
from stratlab.research.designer import Designer, designer_context
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.db import Pool
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.skills import SkillRepo

SETTINGS = Settings()
DESIGNER = DEFAULT_PROMPTS["designer"]
NAMES = re.compile(r"sp\s*-?\s*500|s\s*&\s*p|standard\s*&\s*poor|gspc|spx|nasdaq", re.I)
YEARS = re.compile(r"(?<!\d)(199\d|20[0-2]\d|2030)(?!\d)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# What the lab writes itself and may contain large numbers: bar numbers and bar counts.
OWN_NUMBERS = re.compile(r"\bbar [\d,]+|[\d,]+ (?:daily )?bars\b")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")

FEEDBACK = (
    "Out-of-sample: sharpe 0.41, total return 12.0%, max drawdown 18.5%, win rate 52.0%, "
    "trades 14, buy-and-hold 20.1%.\n"
    "Assessment: the S&P 500 strategy sat out the 2008 financial crisis (2007-10-09 to "
    "2009-03-09) but lagged the rally of 2009-2010.\n"
    "- weakness: whipsaws around SPX 1,100 in 2010\n"
    "Data check on the training split (deterministic analyst):\n"
    "- close never goes above 1553 on the training data; relax the threshold 2000 in "
    "'close > 2000' to about 1530 (its 95th percentile)"
)


def sp500_splits() -> Splits:
    return split_by_time(
        load_bundled("sp500"),
        train=SETTINGS.train_fraction,
        validation=SETTINGS.validation_fraction,
    )


def spec(name: str, symbol: str, rationale: str = "") -> StrategySpec:
    return StrategySpec(
        name=name,
        kind="rules",
        symbol=symbol,
        rationale=rationale,
        indicators=[IndicatorRef(alias="fast", kind="sma", params={"window": "fast_window"})],
        entry="crosses_above(close, fast)",
        exit="crosses_below(close, fast)",
        parameters=[ParamRange(name="fast_window", low=10, high=30, step=10)],
    )


def skill(name: str, symbol: str) -> SkillRecord:
    metrics = BacktestMetrics.model_validate(
        {
            "sharpe": 0.8,
            "total_return": 0.3,
            "max_drawdown": 0.1,
            "trades": 20,
            "win_rate": 0.55,
            "exposure": 0.5,
            "benchmark_return": 0.2,
            "bars": 1000,
        }
    )
    return SkillRecord(
        skill_id=name,
        strategy_id=name,
        symbol=symbol,
        kind="rules",
        name=name,
        spec=spec(name, symbol),
        metrics=metrics,
        tags=[symbol, "rules", "trend"],
    )


def summary(name: str, **extra: object) -> PastStrategy:
    return PastStrategy.model_validate(
        {
            "strategy_id": name,
            "iteration": 1,
            "name": name,
            "kind": "rules",
            "symbol": "sp500",
            "created_at": datetime(2024, 1, 1, tzinfo=UTC),
            **extra,
        }
    )


def design_input(*, blind: bool) -> DesignInput:
    return DesignInput(
        session_id="s",
        iteration=2,
        symbol="sp500",
        kind="rules",
        prompt_id="p",
        strategy_id="x",
        feedback=FEEDBACK,
        max_iterations=3,
        blind=blind,
    )


def rendered(*, blind: bool) -> tuple[str, str]:
    """(system, prompt) as the designer sends them, from a history full of identifiers."""
    splits = sp500_splits()
    blinder = Blinder.for_splits("sp500", splits) if blind else None
    context = designer_context(
        design_input(blind=blind),
        splits,
        recent=[
            summary("sp500-gfc-2008-escape", outcome="success", sharpe=0.7),
            summary("s&p-trend-2011-03-15", kind="ml"),
        ],
        previous=spec(
            "sp500-sma-cross",
            "sp500",
            "The S&P 500 trended from 2003 to 2007 and from 2009-03-09 on; stay out under 1200.",
        ),
        skills=[skill("sp500-momentum-2003", "sp500"), skill("nasdaq-breakout", "nasdaq")],
        blinder=blinder,
    )
    prompt = render_prompt(DESIGNER.content, context)
    if blinder is None:
        return DESIGNER.system, prompt
    return blinder.prompt(DESIGNER.system), blinder.prompt(prompt)


def price_levels(text: str, frame: pd.DataFrame) -> list[str]:
    """Numbers in ``text`` inside the range the market's prices ever took."""
    low, high = frame["low"].min(), frame["high"].max()
    numbers = NUMBER.findall(OWN_NUMBERS.sub(" ", text))
    return [n for n in numbers if low <= float(n.replace(",", "")) <= high]


def test_the_blind_prompt_names_no_market_date_or_price_level() -> None:
    system, prompt = rendered(blind=True)
    text = f"{system}\n{prompt}"
    assert NAMES.findall(text) == []
    assert YEARS.findall(text) == []
    assert ISO_DATE.findall(text) == []
    assert price_levels(text, load_bundled("sp500")) == []
    assert "Symbol: ASSET" in prompt and "bar 0 to bar 3,018" in prompt
    assert "Blind mode:" in prompt  # the designer is told why and what to avoid
    # what is left is still useful: the feedback's numbers, the relative dates and levels
    assert "sharpe 0.41" in prompt and "the year 10 [market event]" in prompt
    assert "relax the threshold [price level]" in prompt
    assert "asset-market-event-year-10-escape" in prompt  # a recent strategy, renamed
    assert "asset-trend-bar-3-068" in prompt  # a date in a name is a bar number too
    assert "[1] asset-momentum-year-5 (kind rules, symbol ASSET" in prompt  # a skill, renamed
    assert "breakout" not in prompt  # another market's skill is not shown at all


def test_without_blind_the_prompt_is_as_before() -> None:
    _, prompt = rendered(blind=False)
    assert "Symbol: sp500" in prompt and "from 1999-01-04 to" in prompt
    assert "S&P 500" in prompt and "1553" in prompt and "2007-10-09" in prompt
    assert "sp500-gfc-2008-escape" in prompt and "nasdaq-breakout" in prompt
    assert "Blind mode" not in prompt


def test_relative_dates_count_bars_and_years_from_the_window() -> None:
    splits = sp500_splits()
    blinder = Blinder.for_splits("sp500", splits)
    first, later = splits.frame.index[0], splits.frame.index[2500]
    assert blinder.text(f"from {first:%Y-%m-%d} to {later:%Y-%m-%d}") == "from bar 0 to bar 2,500"
    assert blinder.text("in 1999 and 2008") == "in year 1 and year 10"
    assert blinder.text("3 of 2016 bars, window 600") == "3 of 2,016 bars, window 600"
    assert blinder.text("rsi < 30 on 12 trades") == "rsi < 30 on 12 trades"  # small: kept
    assert blinder.text("close > 1.5E3, volume above 1.2e+09") == (
        "close > [price level], volume above [volume level]"
    )


def test_an_imported_symbol_is_hidden_by_its_distinctive_part() -> None:
    frame = load_bundled("nasdaq").iloc[:600]
    blinder = Blinder.for_frame("btc-daily", frame)
    assert (
        blinder.text("btc-daily and BTC rallied; daily bars")
        == "ASSET and ASSET rallied; daily bars"
    )
    assert blinder.name("btc-breakout-2001") == "asset-breakout-year-3"


def test_the_blind_summary_has_the_shape_of_returns_only() -> None:
    summary = blind_train_summary(sp500_splits())
    assert ISO_DATE.findall(summary) == [] and YEARS.findall(summary) == []
    assert "annualised volatility about" in summary and "worst day about" in summary


async def test_the_offline_designer_answers_a_blind_prompt() -> None:
    system, prompt = rendered(blind=True)
    request = LlmRequest(
        role="designer",
        system=system,
        prompt=prompt,
        schema_name="StrategySpec",
        json_schema=StrategySpec.model_json_schema(),
    )
    answer = parse_structured(
        (await OfflineProvider(SETTINGS).complete(request)).text, StrategySpec
    )
    assert answer.symbol == "ASSET" and answer.kind == "rules"
    assert NAMES.findall(answer.model_dump_json()) == []


class RecordingProvider(OfflineProvider):
    """The offline provider, keeping every request it was sent."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.requests: list[LlmRequest] = []

    async def complete(self, request: LlmRequest) -> LlmResponse:
        self.requests.append(request)
        return await super().complete(request)


@pytest.mark.parametrize("blind", [True, False])
async def test_a_blind_design_is_stored_under_the_real_symbol(db_pool: Pool, blind: bool) -> None:
    research = ResearchRepo(db_pool)
    await research.insert_strategy("old", spec("sp500-crash-2008", "sp500"), iteration=1)
    provider = RecordingProvider(SETTINGS)
    designer = Designer(
        BudgetedLlm(provider, BudgetRepo(db_pool), ActionRepo(db_pool), SETTINGS),
        PromptRepo(db_pool),
        SessionRepo(db_pool),
        research,
        MarketRepo(db_pool),
        SETTINGS,
        SkillRepo(db_pool),
    )
    prompt_id = (await PromptRepo(db_pool).current_prod("designer")).id
    inp = design_input(blind=blind).model_copy(
        update={
            "prompt_id": prompt_id,
            "strategy_id": f"new-{blind}",
            "previous_strategy_id": "old",
        }
    )
    result = await designer.design(inp)

    stored = await research.get_strategy(f"new-{blind}")
    assert stored is not None and stored.spec.symbol == "sp500" == result.spec.symbol
    (request,) = provider.requests
    sent = f"{request.system}\n{request.prompt}"
    if blind:
        assert NAMES.findall(sent) == [] and YEARS.findall(sent) == []
        assert ISO_DATE.findall(sent) == []
        assert "asset-crash-year-10" in sent  # the earlier design, as recent and previous
    else:
        assert "sp500-crash-2008" in sent and "Symbol: sp500" in sent
