"""The offline composer's trend rule and the feed's decision calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from stratlab.llm.offline.inspect import compose
from stratlab.llm.prompts import (
    DEFAULT_PROMPTS,
    ComposerContext,
    ComposerInstrument,
    render_prompt,
)
from stratlab.models.paper import PaperTradingInput
from stratlab.trading.feed import calendar, next_bar


def prompt_for(*instruments: ComposerInstrument, equity: float = 100_000.0) -> str:
    context = ComposerContext(
        ts="2016-07-29T00:00:00+00:00",
        equity=equity,
        cash=equity,
        max_position_notional=40_000.0,
        instruments=list(instruments),
    )
    return render_prompt(DEFAULT_PROMPTS["composer"].content, context)


def up(close: float = 100.0) -> dict[str, float]:
    return {"close": close, "sma_ratio_20_50": 1.02, "ret_20": 0.03}


def test_an_uptrend_buys_an_equal_share_capped_by_the_position_limit() -> None:
    plan = compose(
        prompt_for(
            ComposerInstrument(symbol="sp500", features=up(100.0)),
            ComposerInstrument(symbol="nasdaq", features=up(3.0)),
        )
    )
    assert plan.ts == datetime(2016, 7, 29, tzinfo=UTC)
    sp, nq = plan.items
    assert (sp.action, sp.target_qty) == ("buy", 400.0)  # 40,000 cap / 100, under 47,500
    assert (nq.action, nq.target_qty) == ("buy", 13_333.0)  # the cap again: 40,000 / 3
    assert sp.confidence is not None and 0.4 < sp.confidence <= 1.0


def test_a_downtrend_closes_a_long_and_a_near_target_position_is_kept() -> None:
    down = {"close": 100.0, "sma_ratio_20_50": 0.97, "ret_20": -0.05}
    (closing,) = compose(
        prompt_for(ComposerInstrument(symbol="sp500", position=10, features=down))
    ).items
    assert closing.action == "flat"
    (holding,) = compose(
        prompt_for(ComposerInstrument(symbol="sp500", position=380, features=up()))
    ).items
    assert holding.action == "noop"  # 380 of a 400 target: within 10%, no dust trade


def test_the_skill_signal_wins_and_missing_features_mean_noop() -> None:
    follow = {**up(), "sma_ratio_20_50": 0.9, "skill_position": 1.0}
    (item,) = compose(prompt_for(ComposerInstrument(symbol="sp500", features=follow))).items
    assert item.action == "buy" and "skill" in (item.rationale or "")
    (warming,) = compose(
        prompt_for(ComposerInstrument(symbol="sp500", features={"close": 5.0}))
    ).items
    assert warming.action == "noop"
    assert compose("nothing it can read").items == []


def bars(*days: str) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in days])
    return pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}, index=index)


def test_the_calendar_is_the_bars_every_symbol_has() -> None:
    frames = {
        "a": bars("2020-01-02", "2020-01-03", "2020-01-06"),
        "b": bars("2020-01-03", "2020-01-06", "2020-01-07"),
    }
    assert [t.day for t in calendar(frames)] == [3, 6]


def test_replay_walks_its_window_then_finishes() -> None:
    frames = {"a": bars("2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07")}
    cfg = PaperTradingInput(symbols=["a"], replay_from=date(2020, 1, 3), replay_to=date(2020, 1, 6))
    first = next_bar(cfg, frames, None)
    second = next_bar(cfg, frames, first.ts)
    assert (first.ts.day, second.ts.day) == (3, 6)  # type: ignore[union-attr]
    done = next_bar(cfg, frames, second.ts)
    assert done.ts is None and done.finished


def test_live_starts_on_the_newest_bar_and_waits_for_the_next() -> None:
    frames = {"a": bars("2020-01-02", "2020-01-03")}
    cfg = PaperTradingInput(symbols=["a"])
    first = next_bar(cfg, frames, None)
    assert first.ts == datetime(2020, 1, 3, tzinfo=UTC)
    waiting = next_bar(cfg, frames, first.ts)
    assert waiting.ts is None and not waiting.finished and "no new bar" in waiting.waiting
    grown = {"a": bars("2020-01-02", "2020-01-03", "2020-01-06")}
    assert next_bar(cfg, grown, first.ts).ts == datetime(2020, 1, 6, tzinfo=UTC)
