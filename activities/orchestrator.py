"""Orchestrator-pool activities: light store work at the start and end of a cycle, and
registering a strategy a user wrote (the designer's place in a user's evaluation)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities._phases import recorded_phase
from stratlab.config import Settings
from stratlab.models.research import (
    FinishSessionInput,
    RegisterStrategyInput,
    RegisterStrategyResult,
    ResearchCycleResult,
    SessionStarted,
    StartSessionInput,
)
from stratlab.research.data import known_symbols
from stratlab.research.sessions import SessionService
from stratlab.store.market import MarketRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.strategies.validation import StrategyValidationError, validate_spec
from stratlab.telemetry.instruments import current


class SessionActivities:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    @activity.defn(name=names.START_SESSION)
    async def start_session(self, inp: StartSessionInput) -> SessionStarted:
        try:
            return await self._service.start(inp)
        except LookupError as err:  # a prompt id that is not in the registry: no retry helps
            raise ApplicationError(str(err), type="PromptNotFound", non_retryable=True) from err

    @activity.defn(name=names.FINISH_SESSION)
    async def finish_session(self, inp: FinishSessionInput) -> ResearchCycleResult:
        result = await self._service.finish(inp)
        current().cycle_finished(result.outcome)
        return result


class StrategyActivities:
    """A user's own strategy enters the pipeline here, checked exactly as a design is."""

    def __init__(
        self, research: ResearchRepo, market: MarketRepo, sessions: SessionRepo, settings: Settings
    ) -> None:
        self._research = research
        self._market = market
        self._sessions = sessions
        self._settings = settings

    @activity.defn(name=names.REGISTER_STRATEGY)
    async def register_strategy(self, inp: RegisterStrategyInput) -> RegisterStrategyResult:
        """Validate the spec (a code spec's source through the sandbox's AST validator too)
        and store it once under the workflow's id; an invalid spec is a non-retryable
        ``StrategyValidationError`` that lists every problem."""
        async with recorded_phase(self._sessions, inp.session_id, inp.iteration, "design") as d:
            d["source"] = "user"
            if inp.spec is None:
                raise ApplicationError(
                    "no strategy spec to register",
                    type="StrategyValidationError",
                    non_retryable=True,
                )
            try:
                # validate_spec runs stratlab.sandbox.validator.validate_code on code specs.
                validate_spec(
                    inp.spec,
                    max_grid_size=self._settings.max_grid_size,
                    known_symbols=await known_symbols(self._market),
                )
            except StrategyValidationError as err:
                raise ApplicationError(
                    str(err), type="StrategyValidationError", non_retryable=True
                ) from err
            stored = await self._research.insert_strategy(
                inp.strategy_id, inp.spec, session_id=inp.session_id, iteration=inp.iteration
            )
            d.update(strategy_id=stored.strategy_id, name=stored.spec.name)
            return RegisterStrategyResult(strategy_id=stored.strategy_id, spec=stored.spec)
