"""One paper-trading decision cycle, step by step, each step idempotent.

The workflow calls these through activities, one per step and pool:

1. ``observe`` (compute): the next decision bar; its candles and features are recorded.
2. ``execute`` (orchestrator): the previous cycle's instructions fill at this bar's open,
   the book is marked at its close, the equity point is written; one transaction.
3. ``compose`` (llm): the composer prompt from the registry, filled with the features,
   the portfolio and the digest rebuilt from the execution records, answers a plan.
4. ``decide`` (orchestrator): the guardrails turn the plan into instructions, which fill
   at the next bar's open (step 2 of the next cycle): never on the bar that produced them.

Every step first looks for its own record (``kind:compose_id``) and returns what it finds,
so a retried activity never calls the LLM twice, never fills twice and never writes a
second row. Records only hold what the step produced; limits come from the strategy row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from stratlab.config import Settings
from stratlab.llm.base import LlmError
from stratlab.llm.budgeted import (
    AnswerRejected,
    BudgetedLlm,
    BudgetExhaustedError,
    CallContext,
    action_id,
)
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import ComposerContext, ComposerInstrument, render_prompt
from stratlab.market.datasets import DataImportError, UnknownSymbolError
from stratlab.models.llm import LlmRequest
from stratlab.models.paper import (
    ComposeStep,
    CycleStepInput,
    DecisionStep,
    ExecutionStep,
    MarketStep,
    MarketStepInput,
    PaperOpened,
    PaperOpenInput,
    PaperTradingInput,
)
from stratlab.models.records import SkillRecord
from stratlab.models.trading import (
    Candle,
    GuardrailReport,
    HistoryRecord,
    LlmPlanProposal,
    PortfolioView,
    TradeDigest,
    TradeInstruction,
)
from stratlab.store.db import ConnectionSource, SingleConnection
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo, PaperStrategyRecord
from stratlab.trading import feed
from stratlab.trading.digest import build_digest, execution_record
from stratlab.trading.guardrails import clean_text, normalise_plan
from stratlab.trading.paper import PaperBook, PaperCosts


class PaperSetupError(ValueError):
    """The strategy cannot start: unknown symbol or prompt, no data, a taken id."""


class PaperStateError(RuntimeError):
    """A step ran before the one it depends on recorded its result (a bug, or a lost row)."""


class PaperService:
    def __init__(
        self,
        db: ConnectionSource,
        market: MarketRepo,
        prompts: PromptRepo,
        skills: SkillRepo,
        settings: Settings,
        llm: BudgetedLlm | None = None,
    ) -> None:
        self._db = db
        self._repo = PaperRepo(db)
        self._market = market
        self._prompts = prompts
        self._skills = skills
        self._settings = settings
        self._llm = llm

    # --- set-up -----------------------------------------------------------------------

    async def open(self, inp: PaperOpenInput) -> PaperOpened:
        """Check the strategy can run and create its row and empty book (once)."""
        cfg = inp.settings
        prompt_id = await self._prompt_id(cfg.prompt_id)
        if cfg.skill_id is not None:
            await self._skill(cfg.skill_id)
        try:
            frames = await feed.load_frames(cfg, self._market)
        except (UnknownSymbolError, DataImportError, OSError) as err:
            raise PaperSetupError(str(err.args[0]) if err.args else str(err)) from err
        first = feed.next_bar(cfg, frames, None)
        if first.finished:
            ends = feed.calendar(frames)
            last = ends[-1].date().isoformat() if len(ends) else "nowhere"
            raise PaperSetupError(
                f"no bar of {', '.join(cfg.symbols)} from {cfg.replay_from} to "
                f"{cfg.replay_to or 'the end'}; their common data ends {last}"
            )
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

    async def _prompt_id(self, prompt_id: str | None) -> str:
        if prompt_id is None:
            return (await self._prompts.current_prod("composer")).id
        prompt = await self._prompts.get(prompt_id)
        if prompt is None:
            raise PaperSetupError(f"no prompt {prompt_id!r}")
        if prompt.role != "composer":
            raise PaperSetupError(f"prompt {prompt_id} is a {prompt.role} prompt, not a composer")
        return prompt.id

    async def _skill(self, skill_id: str) -> SkillRecord:
        skill = await self._skills.get(skill_id)
        if skill is None:
            raise PaperSetupError(f"no skill {skill_id!r}")
        if skill.spec.kind != "rules":
            raise PaperSetupError(
                f"skill {skill_id} is a {skill.spec.kind} strategy: paper trading follows "
                "rules skills, whose signal it can compute bar by bar"
            )
        return skill

    async def _strategy(self, strategy_id: str) -> tuple[PaperStrategyRecord, PaperTradingInput]:
        row = await self._repo.get_strategy(strategy_id)
        if row is None:
            raise PaperStateError(f"no paper strategy {strategy_id!r}")
        return row, PaperTradingInput.model_validate(row.config)

    # --- 1. observe ---------------------------------------------------------------------

    async def observe(self, inp: MarketStepInput) -> MarketStep:
        found = await self._repo.record(inp.strategy_id, "features", inp.compose_id)
        if found is not None:
            return MarketStep(bar_ts=found.ts)
        row, cfg = await self._strategy(inp.strategy_id)
        try:
            frames = await feed.load_frames(cfg, self._market)
        except (UnknownSymbolError, DataImportError, OSError) as err:  # a feed being rewritten
            return MarketStep(waiting=clean_text(f"feed unreadable: {err}", 300))
        bar = feed.next_bar(cfg, frames, inp.cursor)
        if bar.ts is None:
            return MarketStep(finished=bar.finished, waiting=bar.waiting)
        skill = await self._skill(row.skill_id) if row.skill_id else None
        candles, vectors = feed.features_at(cfg, frames, bar.ts, skill)
        payload = {
            "bar": {s: c.model_dump(mode="json", include=_BAR_FIELDS) for s, c in candles.items()},
            "features": [v.model_dump(mode="json") for v in vectors],
        }
        record = HistoryRecord(
            ts=bar.ts, kind="features", reference_id=inp.compose_id, payload=payload
        )
        await self._repo.record_history(inp.strategy_id, record)
        return MarketStep(bar_ts=bar.ts)

    # --- 2. execute ---------------------------------------------------------------------

    async def execute(self, inp: CycleStepInput) -> ExecutionStep:
        _, cfg = await self._strategy(inp.strategy_id)
        async with self._db.connection() as conn, conn.transaction():
            repo = PaperRepo(SingleConnection(conn))
            bar_ts, bars = await _bars(repo, inp)
            closes = {s: c.close for s, c in bars.items()}
            stored = await repo.load_book(inp.strategy_id)
            if stored is None:
                raise PaperStateError(f"paper strategy {inp.strategy_id} has no book")
            cycle, book = stored
            if cycle >= inp.cycle:  # this cycle was executed: report it again
                view = book.mark(closes, ts=bar_ts)
                return _execution_step(0, view)
            fills = []
            if inp.pending_compose_id:
                pending = await repo.record(inp.strategy_id, "instructions", inp.pending_compose_id)
                instructions = [
                    TradeInstruction.model_validate(raw)
                    for raw in (pending.payload.get("instructions", []) if pending else [])
                ]
                costs = PaperCosts(fees_bps=cfg.costs.fees_bps, slippage_bps=cfg.costs.slippage_bps)
                fills = book.apply(instructions, bars, costs, bar_index=inp.cycle)
                await repo.record_history(
                    inp.strategy_id, execution_record(inp.pending_compose_id, bar_ts, fills)
                )
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
        return _execution_step(len(fills), view)

    # --- 3. compose ---------------------------------------------------------------------

    async def compose(self, inp: CycleStepInput, *, attempt: int = 1) -> ComposeStep:
        found = await self._repo.record(inp.strategy_id, "compose", inp.compose_id)
        if found is not None:
            return _compose_step(found.payload)
        if inp.compose_error:  # the LLM call failed after every retry: record, no call
            bar_ts, _, view, _, digest = await self._decision_inputs(inp)
            failed: dict[str, Any] = {
                "plan": None,
                "error": clean_text(f"composer unavailable: {inp.compose_error}", 1000),
                "portfolio": {"total_value": view.total_value, "cash": view.cash},
                "digest": digest.model_dump(mode="json"),
            }
            unavailable = HistoryRecord(
                ts=bar_ts, kind="compose", reference_id=inp.compose_id, payload=failed
            )
            await self._repo.record_history(inp.strategy_id, unavailable)
            return _compose_step(failed)
        if self._llm is None:
            raise PaperStateError("compose needs an LLM: this service was built without one")
        row, cfg = await self._strategy(inp.strategy_id)
        bar_ts, _, view, vectors, digest = await self._decision_inputs(inp)
        prompt = await self._prompts.get(row.prompt_id or "")
        if prompt is None:
            raise PaperStateError(f"prompt {row.prompt_id!r} of {inp.strategy_id} is gone")
        skill = await self._skill(row.skill_id) if row.skill_id else None
        context = _composer_context(cfg, bar_ts, view, vectors, digest, skill)
        request = LlmRequest(
            role="composer",
            system=prompt.system,
            prompt=render_prompt(prompt.content, context),
            schema_name="LlmPlanProposal",
            json_schema=LlmPlanProposal.model_json_schema(),
            max_output_tokens=self._settings.max_output_tokens,
        )
        payload: dict[str, Any] = {"prompt_id": prompt.id, "plan": None, "error": ""}

        def call(n: int) -> CallContext:
            return CallContext(
                action_id=action_id("paper", inp.compose_id, "composer", attempt, answer=n),
                session_id=None,
                iteration=inp.cycle,
                prompt_id=prompt.id,
                scope="paper",
            )

        def accept(text: str) -> LlmPlanProposal:
            return parse_structured(text, LlmPlanProposal)

        try:
            answer = await self._llm.ask(request, call, accept)
        except (AnswerRejected, BudgetExhaustedError) as err:
            payload["error"] = clean_text(f"{type(err).__name__}: {err}", 1000)
        except LlmError as err:
            if err.retryable:
                raise
            payload["error"] = clean_text(f"{type(err).__name__}: {err}", 1000)
        else:
            payload.update(
                plan=answer.value.model_dump(mode="json"),
                tokens=answer.tokens,
                cost_usd=answer.cost_usd,
            )
        payload.update(
            provider=self._llm.provider.name,
            model=self._llm.provider.model_for(request),
            portfolio={"total_value": view.total_value, "cash": view.cash},
            digest=digest.model_dump(mode="json"),
        )
        record = HistoryRecord(
            ts=bar_ts, kind="compose", reference_id=inp.compose_id, payload=payload
        )
        await self._repo.record_history(inp.strategy_id, record)
        return _compose_step(payload)

    # --- 4. decide ----------------------------------------------------------------------

    async def decide(self, inp: CycleStepInput) -> DecisionStep:
        found = await self._repo.record(inp.strategy_id, "instructions", inp.compose_id)
        if found is not None:
            return _decision_step(found.payload)
        _, cfg = await self._strategy(inp.strategy_id)
        composed = await self._repo.record(inp.strategy_id, "compose", inp.compose_id)
        if composed is None:
            raise PaperStateError(f"{inp.compose_id}: no compose record to decide on")
        raw_plan = composed.payload.get("plan")
        plan = LlmPlanProposal.model_validate(raw_plan) if raw_plan else None
        bar_ts, closes, view, _, digest = await self._decision_inputs(inp)
        instructions, reports = normalise_plan(
            plan,
            view,
            closes,
            digest,
            cfg.guardrails,
            compose_id=inp.compose_id,
            now=bar_ts,
            bar_index=inp.cycle,
            bar_interval=_interval(cfg.interval),
        )
        payload = {
            "instructions": [i.model_dump(mode="json") for i in instructions],
            "guardrails": [r.model_dump(mode="json") for r in reports],
            "fallback": plan is None or any(r.rule == "fallback" for r in reports),
        }
        record = HistoryRecord(
            ts=bar_ts, kind="instructions", reference_id=inp.compose_id, payload=payload
        )
        await self._repo.record_history(inp.strategy_id, record)
        return _decision_step(payload)

    async def set_status(self, strategy_id: str, status: str) -> None:
        await self._repo.set_status(strategy_id, status)  # type: ignore[arg-type]

    # --- shared reads -------------------------------------------------------------------

    async def _decision_inputs(
        self, inp: CycleStepInput
    ) -> tuple[datetime, dict[str, float], PortfolioView, list[dict[str, Any]], TradeDigest]:
        """The decision bar's ts and closes, the book marked at them, the feature vectors
        and the digest of every trade that exited by then."""
        features = await self._repo.record(inp.strategy_id, "features", inp.compose_id)
        stored = await self._repo.load_book(inp.strategy_id)
        if features is None or stored is None:
            raise PaperStateError(f"{inp.compose_id}: features or book missing")
        bar_ts = features.ts
        closes = {s: float(b["close"]) for s, b in features.payload.get("bar", {}).items()}
        _, book = stored
        view = book.mark(closes, ts=bar_ts)
        executions = await self._repo.history(inp.strategy_id, kinds=["execution"])
        digest = build_digest(executions, bar_ts)
        return bar_ts, closes, view, list(features.payload.get("features", [])), digest


_BAR_FIELDS = {"ts", "open", "high", "low", "close", "volume"}


async def _bars(repo: PaperRepo, inp: CycleStepInput) -> tuple[datetime, dict[str, Candle]]:
    features = await repo.record(inp.strategy_id, "features", inp.compose_id)
    if features is None:
        raise PaperStateError(f"{inp.compose_id}: the features record is missing")
    bars = {
        symbol: Candle.model_validate({**raw, "instrument": {"symbol": symbol}})
        for symbol, raw in features.payload.get("bar", {}).items()
    }
    return features.ts, bars


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


def _composer_context(
    cfg: PaperTradingInput,
    ts: datetime,
    view: PortfolioView,
    vectors: list[dict[str, Any]],
    digest: TradeDigest,
    skill: SkillRecord | None,
) -> ComposerContext:
    instruments = []
    for vector in vectors:
        symbol = vector["instrument"]["symbol"]
        held = view.positions.get(symbol)
        instruments.append(
            ComposerInstrument(
                symbol=symbol,
                position=held.quantity if held else 0.0,
                features=dict(vector.get("values", {})),
            )
        )
    lines = [
        f"{symbol}: {e.trade_count} trades, realised P&L {e.realized_pnl:+.2f}, "
        f"win rate {_pct(e.win_rate)}, recent score {_num(e.recent_performance_score)}"
        for symbol, e in digest.by_instrument.items()
    ]
    skill_text = ""
    if skill is not None:
        skill_text = (
            f"{skill.name}: entry {skill.spec.entry}; exit {skill.spec.exit}; "
            f"parameters {skill.params}"
        )
    return ComposerContext(
        ts=ts.isoformat(),
        equity=view.total_value or 0.0,
        cash=view.cash,
        max_position_notional=cfg.guardrails.max_position_notional,
        allow_short=cfg.guardrails.allow_short,
        halted=view.halted,
        instruments=instruments,
        digest=lines,
        skill=skill_text,
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _execution_step(fills: int, view: PortfolioView) -> ExecutionStep:
    return ExecutionStep(
        fills=fills, total_value=view.total_value or 0.0, cash=view.cash, halted=view.halted
    )


def _compose_step(payload: dict[str, Any]) -> ComposeStep:
    plan = payload.get("plan") or {}
    return ComposeStep(
        items=len(plan.get("items", [])),
        fallback=str(payload.get("error") or ""),
        tokens=int(payload.get("tokens") or 0),
        cost_usd=float(payload.get("cost_usd") or 0.0),
    )


def _decision_step(payload: dict[str, Any]) -> DecisionStep:
    lines = []
    for raw in payload.get("instructions", [])[:4]:
        lines.append(f"{raw['side']} {raw['quantity']:g} {raw['instrument']['symbol']}")
    reports = [GuardrailReport.model_validate(r) for r in payload.get("guardrails", [])]
    changed = [r for r in reports if r.outcome in ("dropped", "clipped")]
    for report in changed[: max(0, 5 - len(lines))]:
        lines.append(f"{report.outcome} {report.symbol or ''} ({report.rule})".replace("  ", " "))
    return DecisionStep(
        instructions=len(payload.get("instructions", [])), changes=len(changed), summary=lines
    )
