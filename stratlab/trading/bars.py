"""Step 1 of a paper decision cycle, on the compute pool: the next decision bar.

``observe`` finds the bar after the cursor in the strategy's feed (a replayed clock or a
file that grows) and records its candles and the composer's features (``features``
record); a retry finds the record and returns it.
"""

from __future__ import annotations

from stratlab.market.datasets import UnknownSymbolError
from stratlab.market.ohlcv import DataImportError
from stratlab.models.paper import MarketStep, MarketStepInput
from stratlab.store.market import MarketRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo
from stratlab.trading import feed, reads
from stratlab.trading.guardrails import clean_text
from stratlab.trading.history import BarPayload, FeaturesPayload, history_record


class PaperBarService:
    """Bars and features of paper strategies (``PaperComputeActivities``)."""

    def __init__(self, repo: PaperRepo, market: MarketRepo, skills: SkillRepo) -> None:
        self._repo = repo
        self._market = market
        self._skills = skills

    async def observe(self, inp: MarketStepInput) -> MarketStep:
        found = await self._repo.record(inp.strategy_id, "features", inp.compose_id)
        if found is not None:
            return MarketStep(bar_ts=found.ts)
        row, cfg = await reads.strategy(self._repo, inp.strategy_id)
        try:
            frames = await feed.load_frames(cfg, self._market)
        except (UnknownSymbolError, DataImportError, OSError) as err:  # a feed being rewritten
            return MarketStep(waiting=clean_text(f"feed unreadable: {err}", 300))
        bar = feed.next_bar(cfg, frames, inp.cursor)
        if bar.ts is None:
            return MarketStep(finished=bar.finished, waiting=bar.waiting)
        skill = await reads.rules_skill(self._skills, row.skill_id) if row.skill_id else None
        candles, vectors = feed.features_at(cfg, frames, bar.ts, skill)
        payload = FeaturesPayload(
            bar={symbol: BarPayload.of(candle) for symbol, candle in candles.items()},
            features=vectors,
        )
        record = history_record("features", inp.compose_id, bar.ts, payload)
        await self._repo.record_history(inp.strategy_id, record)
        return MarketStep(bar_ts=bar.ts)
