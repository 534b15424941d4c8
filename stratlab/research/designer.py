"""The design step: render the designer prompt, call the LLM, parse and validate the spec.

A malformed or invalid answer is sent back once with the exact problem (the validator's
message is written for the designer); a second failure ends the design with
``StrategyDesignError``, and so does an answer cut off at the output cap or a refusal
(no repair: it would end the same way). The designer only ever sees the train split's
summary. Under ``blind`` it sees no name, date or price level of the market either (see
``stratlab.research.blind``); the stored spec still names the real symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from stratlab.config import Settings
from stratlab.llm.base import LlmOutputError
from stratlab.llm.budgeted import AnswerRejected, BudgetedLlm, CallContext, action_id
from stratlab.llm.parsing import parse_structured
from stratlab.llm.prompts import DesignerContext, RecentStrategy, render_prompt
from stratlab.market.character import describe_persistence
from stratlab.market.indicators import describe_indicators
from stratlab.market.splits import Splits
from stratlab.models.llm import LlmRequest
from stratlab.models.records import PastStrategy, SkillRecord
from stratlab.models.research import DesignInput, DesignResult, StrategySpec
from stratlab.research.blind import ANONYMOUS_SYMBOL, Blinder, blind_train_summary
from stratlab.research.data import known_symbols, load_configured_splits
from stratlab.research.skills import skills_context
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.skills import SkillRepo
from stratlab.strategies.validation import StrategyValidationError, validate_spec

MAX_ATTEMPTS = 2


class StrategyDesignError(Exception):
    """The designer did not produce a valid strategy."""


def summarise_train_split(splits: Splits) -> str:
    """What the designer may know about the data: the train split only, never the test."""
    train = splits.train
    close = train["close"].to_numpy()
    daily = np.diff(np.log(close))
    years = max(len(train) / 252.0, 1e-9)
    return (
        f"{len(train)} daily bars from {train.index[0]:%Y-%m-%d} to {train.index[-1]:%Y-%m-%d}; "
        f"total return {close[-1] / close[0] - 1:.1%}, "
        f"annualised return {(close[-1] / close[0]) ** (1 / years) - 1:.1%}, "
        f"annualised volatility {daily.std() * np.sqrt(252):.1%}, "
        f"worst day {daily.min():.1%}, best day {daily.max():.1%}. "
        f"{describe_persistence(close)} "
        f"Parameters are chosen on a later validation split; a final test split is held out."
    )


class Designer:
    def __init__(
        self,
        llm: BudgetedLlm,
        prompts: PromptRepo,
        sessions: SessionRepo,
        research: ResearchRepo,
        market: MarketRepo,
        settings: Settings,
        skills: SkillRepo,
    ) -> None:
        self._skills = skills
        self._llm = llm
        self._prompts = prompts
        self._sessions = sessions
        self._research = research
        self._market = market
        self._settings = settings

    async def design(self, inp: DesignInput, *, attempt: int = 1) -> DesignResult:
        existing = await self._research.get_strategy(inp.strategy_id)
        if existing is not None:  # a retry after the row was written: same answer, no new call
            return DesignResult(strategy_id=inp.strategy_id, spec=existing.spec)
        prompt = await self._prompts.get(inp.prompt_id)
        if prompt is None:
            raise StrategyDesignError(f"designer prompt {inp.prompt_id} does not exist")
        context, blinder = await self._prepare(inp)
        system, text = prompt.system, render_prompt(prompt.content, context)
        if blinder is not None:  # a registry template may spell a name or a date itself
            system, text = blinder.prompt(system), blinder.prompt(text)
        request = LlmRequest.answered_by(
            StrategySpec, role="designer", system=system, prompt=text,
            max_output_tokens=self._settings.max_output_tokens,
        )  # fmt: skip
        symbols = await known_symbols(self._market)
        try:
            answer = await self._llm.ask(
                request,
                lambda n: CallContext(
                    action_id=action_id(
                        inp.session_id, inp.iteration, "designer", attempt, answer=n
                    ),
                    session_id=inp.session_id,
                    iteration=inp.iteration,
                    prompt_id=inp.prompt_id,
                    scope=inp.budget_scope,
                ),
                lambda text: self._accept(text, inp, symbols),
                attempts=MAX_ATTEMPTS,
            )
        except AnswerRejected as err:
            raise StrategyDesignError(f"designer answer rejected: {err}") from err
        except LlmOutputError as err:  # truncated or refused: says so itself
            raise StrategyDesignError(str(err)) from err
        await self._research.insert_strategy(
            inp.strategy_id, answer.value, session_id=inp.session_id, iteration=inp.iteration
        )
        return DesignResult(
            strategy_id=inp.strategy_id,
            spec=answer.value,
            tokens=answer.tokens,
            cost_usd=answer.cost_usd,
        )

    def _accept(self, text: str, inp: DesignInput, symbols: list[str]) -> StrategySpec:
        spec = parse_structured(text, StrategySpec)
        # The cycle decides the data set; a designer that names another one is corrected.
        spec = spec.model_copy(update={"symbol": inp.symbol})
        if inp.kind is not None and spec.kind != inp.kind:
            raise StrategyValidationError(
                [f"this cycle asks for kind {inp.kind!r}, the answer has kind {spec.kind!r}"]
            )
        validate_spec(spec, max_grid_size=self._settings.max_grid_size, known_symbols=symbols)
        return spec

    async def _context(self, inp: DesignInput) -> DesignerContext:
        return (await self._prepare(inp))[0]

    async def _prepare(self, inp: DesignInput) -> tuple[DesignerContext, Blinder | None]:
        """The prompt's context, and under ``blind`` what hides the market in it."""
        splits = await load_configured_splits(inp.symbol, self._market, self._settings, inp.period)
        # An isolated design (a benchmark task) sees only its prompt and data, so the
        # prompt alone is what a regression run measures.
        recent = [] if inp.isolated else await self._sessions.recent_strategies(inp.symbol, 5)
        previous = None
        if inp.previous_strategy_id:
            record = await self._research.get_strategy(inp.previous_strategy_id)
            previous = record.spec if record is not None else None
        skills = [] if inp.isolated else await self._skills.relevant(inp.symbol, inp.kind)
        blinder = Blinder.for_splits(inp.symbol, splits) if inp.blind else None
        context = designer_context(
            inp, splits, recent=recent, previous=previous, skills=skills, blinder=blinder
        )
        return context, blinder


def designer_context(
    inp: DesignInput,
    splits: Splits,
    *,
    recent: Sequence[PastStrategy] = (),
    previous: StrategySpec | None = None,
    skills: Sequence[SkillRecord] = (),
    blinder: Blinder | None = None,
) -> DesignerContext:
    """What the designer prompt is rendered from. With a ``blinder`` the symbol is
    ``ASSET``, the data summary has no date or price level, skills of other symbols are
    left out (their names and rationales would name the market they came from) and every
    name and free text is scrubbed of the market's name, dates and price levels."""
    hide_name: Callable[[str], str] = _same
    hide_text: Callable[[str], str] = _same
    if blinder is not None:
        hide_name, hide_text = blinder.name, blinder.text
        skills = [_blind_skill(s, blinder) for s in skills if s.symbol == inp.symbol]
        if previous is not None:
            previous = previous.model_copy(
                update={
                    "symbol": ANONYMOUS_SYMBOL,
                    "name": blinder.name(previous.name),
                    "rationale": blinder.text(previous.rationale),
                }
            )
    return DesignerContext(
        symbol=inp.symbol if blinder is None else ANONYMOUS_SYMBOL,
        kind=inp.kind or "any",
        iteration=inp.iteration,
        max_iterations=inp.max_iterations,
        indicator_catalogue=describe_indicators(),
        data_summary=summarise_train_split(splits)
        if blinder is None
        else blind_train_summary(splits),
        recent_strategies=[
            RecentStrategy(
                name=hide_name(r.name), kind=r.kind, outcome=r.outcome or "running", sharpe=r.sharpe
            )
            for r in recent
        ],
        feedback=hide_text(inp.feedback),
        previous_spec_json=previous.model_dump_json(indent=2) if previous is not None else "",
        skills=hide_text(skills_context(skills)) if skills else "",
        objective=hide_text(inp.objective),
    )


def _same(text: str) -> str:
    return text


def _blind_skill(skill: SkillRecord, blinder: Blinder) -> SkillRecord:
    tags = [ANONYMOUS_SYMBOL if tag == skill.symbol else tag for tag in skill.tags]
    return skill.model_copy(
        update={"symbol": ANONYMOUS_SYMBOL, "name": blinder.name(skill.name), "tags": tags}
    )
