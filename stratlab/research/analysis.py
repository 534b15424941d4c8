"""The analyst step: data-driven suggestions for the next design, computed on the train split.

Deterministic (no LLM): it checks each condition of the strategy against what the data
actually reaches and proposes values the data does reach (seed 004's orchestrator).
"""

from __future__ import annotations

import asyncio

from stratlab.config import Settings
from stratlab.models.research import AnalyseInput, AnalyseResult
from stratlab.research.analyst import analyse_conditions, render_suggestions
from stratlab.research.data import load_configured_splits
from stratlab.store.market import MarketRepo
from stratlab.store.research import ResearchRepo


class AnalysisStep:
    def __init__(self, research: ResearchRepo, market: MarketRepo, settings: Settings) -> None:
        self._research = research
        self._market = market
        self._settings = settings

    async def analyse(self, inp: AnalyseInput) -> AnalyseResult:
        strategy = await self._research.get_strategy(inp.strategy_id)
        if strategy is None:
            return AnalyseResult()
        splits = await load_configured_splits(
            strategy.spec.symbol, self._market, self._settings, inp.period
        )
        suggestions = await asyncio.to_thread(analyse_conditions, strategy.spec, splits)
        return AnalyseResult(suggestions=suggestions, text=render_suggestions(suggestions))
