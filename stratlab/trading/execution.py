"""The orchestrator pool's paper steps: set-up, execution (step 2) and the guardrails (step 4).

- ``open``: check the strategy can run; create its row and empty book, once.
- ``execute``: the previous cycle's instructions fill at this bar's open, the book is
  marked at its close and the equity point written; one transaction.
- ``decide``: the guardrails turn the cycle's plan into instructions, which fill at the
  next bar's open (``execute`` of the next cycle): never on the bar that produced them.

Each step first looks for what it recorded (``kind:compose_id``, the book's cycle) and
returns it, so a retry never fills twice or writes a second row.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from stratlab.market.datasets import UnknownSymbolError
from stratlab.market.ohlcv import DataImportError
from stratlab.models.paper import (
    CycleStepInput,
    DecisionStep,
    ExecutionStep,
    PaperOpened,
    PaperOpenInput,
    PaperTradingInput,
)
from stratlab.models.trading import Candle, PortfolioView, StrategyStatus
from stratlab.store.db import ConnectionSource, SingleConnection
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo
from stratlab.trading import feed, reads
from stratlab.trading.digest import execution_record
from stratlab.trading.guardrails import normalise_plan
from stratlab.trading.history import ComposePayload, DecisionPayload, history_record
from stratlab.trading.paper import PaperBook, PaperCosts
from stratlab.trading.reads import PaperSetupError, PaperStateError


class PaperExecutionService:
    """Set-up, fills and guardrails of paper strategies (``PaperStoreActivities``)."""

    def __init__(
        self, db: ConnectionSource, market: MarketRepo, prompts: PromptRepo, skills: SkillRepo
    ) -> None:
        self._db = db
        self._repo = PaperRepo(db)
        self._market = market
        self._prompts = prompts
        self._skills = skills

    # --- set-up -------------------------------------------------------------------------

    async def open(self, inp: PaperOpenInput) -> PaperOpened:
        """Check the strategy can run and create its row and empty book (once)."""
        cfg = inp.settings
        prompt_id = await self._prompt_id(cfg.prompt_id)
        if cfg.skill_id is not None:
            await reads.rules_skill(self._skills, cfg.skill_id)
        await self._check_bars(cfg)
        config = cfg.model_dump(mode="json", exclude={"state"}) | {"run_key": inp.run_key}
        row = await self._repo.create_strategy(
            strategy_id=inp.strategy_id,
            name=cfg.name or inp.strategy_id,
            symbols=cfg.symbols,
            initial_capital=cfg.initial_capital,
            config=config,
            prompt_id=prompt_id,
            skill_id=cfg.skill_id,
            workflow_id=inp.workflow_id,
        )
        if row.config.get("run_key") != inp.run_key:
            raise PaperSetupError(
                f"paper strategy {inp.strategy_id!r} already exists ({row.status}); "
                "choose another id"
            )
        if await self._repo.load_book(inp.strategy_id) is None:
            book = PaperBook.open(cfg.initial_capital, strategy_id=inp.strategy_id)
            await self._repo.save_book(inp.strategy_id, 0, book)
        return PaperOpened(
            strategy_id=inp.strategy_id,
            prompt_id=prompt_id,
            initial_capital=float(row.initial_capital),
            status=row.status,
        )

    async def _check_bars(self, cfg: PaperTradingInput) -> None:
        """Refuse a strategy whose symbols have no common bar to decide on."""
        try:
            frames = await feed.load_frames(cfg, self._market)
        except (UnknownSymbolError, DataImportError, OSError) as err:
            raise PaperSetupError(str(err.args[0]) if err.args else str(err)) from err
        if feed.next_bar(cfg, frames, None).finished:
            ends = feed.calendar(frames)
            last = ends[-1].date().isoformat() if len(ends) else "nowhere"
            raise PaperSetupError(
                f"no bar of {', '.join(cfg.symbols)} from {cfg.replay_from} to "
                f"{cfg.replay_to or 'the end'}; their common data ends {last}"
            )

    async def _prompt_id(self, prompt_id: str | None) -> str:
        if prompt_id is None:
            return (await self._prompts.current_prod("composer")).id
        prompt = await self._prompts.get(prompt_id)
        if prompt is None:
            raise PaperSetupError(f"no prompt {prompt_id!r}")
        if prompt.role != "composer":
            raise PaperSetupError(f"prompt {prompt_id} is a {prompt.role} prompt, not a composer")
        return prompt.id

    async def set_status(self, strategy_id: str, status: StrategyStatus) -> None:
        await self._repo.set_status(strategy_id, status)

    # --- 2. execute ---------------------------------------------------------------------

    async def execute(self, inp: CycleStepInput) -> ExecutionStep:
        _, cfg = await reads.strategy(self._repo, inp.strategy_id)
        async with self._db.connection() as conn, conn.transaction():
            repo = PaperRepo(SingleConnection(conn))
            bar_ts, recorded = await reads.features(repo, inp.strategy_id, inp.compose_id)
            closes = recorded.closes()
            cycle, book = await reads.book(repo, inp.strategy_id)
            if cycle >= inp.cycle:  # this cycle was executed: report it again
                return _execution_step(0, book.mark(closes, ts=bar_ts))
            fills = 0
            if inp.pending_compose_id:
                bar = (bar_ts, recorded.candles())
                fills = await _fill_pending(repo, inp, inp.pending_compose_id, cfg, book, bar)
            if not book.benchmark_base:
                book.benchmark_base = dict(closes)
            view = book.mark(closes, ts=bar_ts, max_drawdown_halt=cfg.guardrails.max_drawdown_halt)
            await repo.save_book(inp.strategy_id, inp.cycle, book)
            await repo.record_equity(
                inp.strategy_id,
                bar_ts,
                view.total_value or 0.0,
                view.cash,
                benchmark=_buy_and_hold(book, closes),
            )
        return _execution_step(fills, view)

    # --- 4. decide ----------------------------------------------------------------------

    async def decide(self, inp: CycleStepInput) -> DecisionStep:
        found = await self._repo.record(inp.strategy_id, "instructions", inp.compose_id)
        if found is not None:
            return DecisionPayload.model_validate(found.payload).step()
        _, cfg = await reads.strategy(self._repo, inp.strategy_id)
        composed = await self._repo.record(inp.strategy_id, "compose", inp.compose_id)
        if composed is None:
            raise PaperStateError(f"{inp.compose_id}: no compose record to decide on")
        plan = ComposePayload.model_validate(composed.payload).plan
        decided_on = await reads.decision_inputs(self._repo, inp.strategy_id, inp.compose_id)
        instructions, reports = normalise_plan(
            plan,
            decided_on.view,
            decided_on.closes,
            decided_on.digest,
            cfg.guardrails,
            compose_id=inp.compose_id,
            now=decided_on.bar_ts,
            bar_index=inp.cycle,
            bar_interval=_interval(cfg.interval),
        )
        payload = DecisionPayload(
            instructions=instructions,
            guardrails=reports,
            fallback=plan is None or any(r.rule == "fallback" for r in reports),
        )
        record = history_record("instructions", inp.compose_id, decided_on.bar_ts, payload)
        await self._repo.record_history(inp.strategy_id, record)
        return payload.step()


async def _fill_pending(
    repo: PaperRepo,
    inp: CycleStepInput,
    pending_compose_id: str,
    cfg: PaperTradingInput,
    book: PaperBook,
    bar: tuple[datetime, dict[str, Candle]],
) -> int:
    """Fill the instructions of the cycle ``pending_compose_id`` at this bar's open and
    record the fills; how many there were."""
    pending = await repo.record(inp.strategy_id, "instructions", pending_compose_id)
    decided = DecisionPayload.model_validate(pending.payload) if pending else DecisionPayload()
    costs = PaperCosts(fees_bps=cfg.costs.fees_bps, slippage_bps=cfg.costs.slippage_bps)
    bar_ts, candles = bar
    fills = book.apply(decided.instructions, candles, costs, bar_index=inp.cycle)
    await repo.record_history(inp.strategy_id, execution_record(pending_compose_id, bar_ts, fills))
    return len(fills)


def _buy_and_hold(book: PaperBook, closes: dict[str, float]) -> float | None:
    """The value of the initial capital split equally over the symbols at the first bar."""
    base = book.benchmark_base
    ratios = [closes[s] / base[s] for s in base if s in closes and base[s] > 0]
    return book.initial_cash * sum(ratios) / len(ratios) if ratios else None


def _interval(text: str) -> pd.Timedelta:
    try:
        return pd.Timedelta(text.replace("d", "D") if text.endswith("d") else text)
    except ValueError:
        return pd.Timedelta(days=1)


def _execution_step(fills: int, view: PortfolioView) -> ExecutionStep:
    return ExecutionStep(
        fills=fills, total_value=view.total_value or 0.0, cash=view.cash, halted=view.halted
    )
