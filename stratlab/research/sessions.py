"""Opening and closing a research session: the rows a user reads with ``stratlab session``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from stratlab.config import Settings
from stratlab.llm.base import LlmProvider
from stratlab.llm.pricing import worst_case_cost
from stratlab.models.llm import LlmRequest
from stratlab.models.prompts import PromptRecord
from stratlab.models.research import (
    FinishSessionInput,
    ResearchCycleResult,
    SessionStarted,
    StartSessionInput,
)
from stratlab.research.skills import skill_from_success
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.skills import SkillRepo


class SessionService:
    def __init__(
        self,
        sessions: SessionRepo,
        prompts: PromptRepo,
        budget: BudgetRepo,
        actions: ActionRepo,
        provider: LlmProvider,
        settings: Settings,
        research: ResearchRepo,
        skills: SkillRepo,
    ) -> None:
        self._research = research
        self._skills = skills
        self._sessions = sessions
        self._prompts = prompts
        self._budget = budget
        self._actions = actions
        self._provider = provider
        self._settings = settings

    async def start(self, inp: StartSessionInput) -> SessionStarted:
        cycle = inp.cycle_input
        designer = await self._prompt("designer", cycle.designer_prompt_id)
        assessor = await self._prompt("assessor", cycle.assessor_prompt_id)
        started = datetime.now(UTC)
        await self._sessions.create(
            session_id=inp.session_id,
            workflow_id=inp.workflow_id,
            run_id=inp.run_id,
            trigger=inp.trigger,
            symbol=inp.symbol,
            kind=inp.kind,
            input=inp.cycle_input,
            started_at=inp.started_at,
            designer_prompt_id=designer.id,
            assessor_prompt_id=assessor.id,
        )
        # The budget check costs no tokens: one database read against the worst case of
        # the cycle's first call.
        request = LlmRequest(
            role="designer",
            system=designer.system,
            prompt=designer.content,
            schema_name="StrategySpec",
            json_schema={},
            max_output_tokens=self._settings.max_output_tokens,
        )
        needed = worst_case_cost(
            request, self._provider.model_for(request), settings=self._settings
        )
        day = datetime.now(UTC).date()
        scope = cycle.budget_scope
        cap = self._settings.budget_cap(scope) - self._settings.budget_buffer_usd
        remaining = (await self._budget.day_status(scope, day, default_cap=cap)).remaining_usd
        ok = remaining >= needed
        await self._sessions.record_trigger(
            trigger_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"trigger:{inp.session_id}")),
            kind=inp.trigger,
            workflow_id=inp.workflow_id,
            session_id=inp.session_id,
            decision="started" if ok else "skipped_budget",
            reason=f"{scope} budget: remaining ${remaining:.4f}, "
            f"first call needs up to ${needed:.4f}",
        )
        await self._sessions.record_phase(
            inp.session_id,
            0,
            "budget",
            started_at=started,
            finished_at=datetime.now(UTC),
            status="ok" if ok else "skipped",
            detail={"remaining_usd": remaining, "needed_usd": needed},
        )
        return SessionStarted(
            session_id=inp.session_id,
            designer_prompt_id=designer.id,
            assessor_prompt_id=assessor.id,
            budget_remaining_usd=remaining,
            budget_ok=ok,
        )

    async def finish(self, inp: FinishSessionInput) -> ResearchCycleResult:
        tokens, cost = await self._actions.totals_by_session(inp.session_id)
        result = inp.result.model_copy(update={"tokens": tokens, "cost_usd": cost})
        await self._sessions.finish(
            inp.session_id,
            outcome=inp.outcome,
            best_strategy_id=inp.best_strategy_id,
            result=result,
            finished_at=inp.finished_at,
        )
        if inp.keep_skill:
            await self._keep_skill(result)
        return result

    async def _prompt(self, role: str, prompt_id: str) -> PromptRecord:
        """The cycle's prompt for ``role``: the one it names, else the role's prod prompt."""
        if not prompt_id:
            return await self._prompts.current_prod(role)
        found = await self._prompts.get(prompt_id)
        if found is None or found.role != role:
            raise LookupError(f"no {role} prompt {prompt_id!r} in the registry")
        return found

    async def _keep_skill(self, result: ResearchCycleResult) -> None:
        """A strategy that passed every gate, the statistical gate included, and was not
        rejected joins the skill library: with the statistical gate off, nothing does."""
        best = next(
            (i for i in result.iterations if i.strategy_id == result.best_strategy_id), None
        )
        if result.outcome != "success" or best is None or best.strategy_id is None:
            return
        if best.statistical_gate is None or not best.statistical_gate.passed:
            return
        if best.assessment is not None and best.assessment.verdict == "reject":
            return
        strategy = await self._research.get_strategy(best.strategy_id)
        backtests = [
            b
            for b in await self._research.backtests_by_session(result.session_id)
            if b.strategy_id == best.strategy_id
        ]
        if strategy is not None and backtests:
            skill = skill_from_success(strategy, backtests[-1], session_id=result.session_id)
            await self._skills.add(skill)
