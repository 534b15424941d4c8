"""The optimizer's LLM steps: meta-prompt mutation and the checks every child must pass.

Mutation (seed 003): the ``mutator`` prompt shows a model the parent template and the
summary of its recent benchmark failures, and asks for whole new templates. Checks run
before any evaluation is spent: the child must render in the Jinja2 sandbox with a
dummy context of its role (a template-injection payload fails here), and the cheap
``sanity`` role must find it safe (no "ignore all instructions", no drift into
nonsense). Both calls are charged to the optimizer budget like any other call.
"""

from __future__ import annotations

from typing import TypeVar

import structlog
from pydantic import BaseModel

from stratlab.config import Settings
from stratlab.llm.base import LlmOutputError
from stratlab.llm.budgeted import (
    AnswerRejected,
    BudgetedLlm,
    BudgetExhaustedError,
    CallContext,
    action_id,
)
from stratlab.llm.parsing import parse_structured
from stratlab.llm.pricing import estimate_tokens
from stratlab.llm.prompts import (
    DesignerContext,
    MutatorContext,
    PromptRenderError,
    RecentStrategy,
    SanityContext,
    example_context,
    render_prompt,
)
from stratlab.models.llm import LlmRequest, Role
from stratlab.models.optimization import (
    LLM_MUTATION,
    CheckedChild,
    CheckInput,
    MutateInput,
    PromptVariations,
    ProposedChild,
    SanityVerdict,
)
from stratlab.store.db import prompt_content_hash
from stratlab.store.prompts import PromptRepo

log = structlog.get_logger(__name__)
T = TypeVar("T", PromptVariations, SanityVerdict)


class PromptMutator:
    def __init__(self, llm: BudgetedLlm, prompts: PromptRepo, settings: Settings) -> None:
        self._llm = llm
        self._prompts = prompts
        self._settings = settings

    async def mutate(self, inp: MutateInput, *, attempt: int = 1) -> list[ProposedChild]:
        """Up to ``inp.count`` children of ``inp.parent``; none when the mutator's answers
        are rejected twice, cut off at the output cap or refused (the generation then
        breeds with DEAP's operators alone)."""
        context = MutatorContext(
            role=inp.role,
            system=inp.parent.system,
            template=inp.parent.content,
            failure_summary=inp.failure_summary,
            variations=inp.count,
        )
        try:
            answer = await self._ask(
                "mutator", context, PromptVariations, f"{inp.action_id}:mutator:{attempt}"
            )
        except (AnswerRejected, LlmOutputError) as err:
            log.warning("mutator answer rejected", error=str(err), generation=inp.generation)
            return []
        seen = set(inp.exclude_hashes)
        children: list[ProposedChild] = []
        for variation in answer.variations:
            digest = prompt_content_hash(inp.parent.system, variation.content)
            if digest in seen:  # already registered, or a repeat: measuring it again buys nothing
                continue
            seen.add(digest)
            children.append(
                ProposedChild(
                    system=inp.parent.system,
                    content=variation.content,
                    parent_ids=[inp.parent.prompt_id],
                    operator=LLM_MUTATION,
                    rationale=variation.rationale[:500],
                )
            )
        return children[: inp.count]

    async def check(self, inp: CheckInput, *, attempt: int = 1) -> list[CheckedChild]:
        parents = {p.prompt_id: p for p in inp.parents}
        checked: list[CheckedChild] = []
        for index, child in enumerate(inp.children):
            problem = self._length_problem(child) or dry_render_problem(inp.role, child.content)
            if problem is None:
                parent = parents.get(child.parent_ids[0]) if child.parent_ids else None
                problem = await self._sanity_problem(
                    inp, child, parent.content if parent else "", f"{attempt}:{index}"
                )
            checked.append(
                CheckedChild(child=child, accepted=problem is None, reason=problem or "")
            )
        return checked

    def _length_problem(self, child: ProposedChild) -> str | None:
        """A prompt may not grow without bound: tokens are an objective, but one long
        prompt that scores a little better would otherwise be measured at full price."""
        length = len(child.system) + len(child.content)
        cap = self._settings.prompt_max_chars
        if length > cap:
            return (
                f"too long: {length:,} characters; the cap is {cap:,} (STRATLAB_PROMPT_MAX_CHARS)"
            )
        return None

    async def _sanity_problem(
        self, inp: CheckInput, child: ProposedChild, parent_template: str, key: str
    ) -> str | None:
        context = SanityContext(
            role=inp.role,
            system=child.system,
            template=child.content,
            parent_template=parent_template,
        )
        try:
            verdict = await self._ask(
                "sanity", context, SanityVerdict, f"{inp.action_id}:sanity:{key}"
            )
        except (AnswerRejected, LlmOutputError) as err:
            return f"sanity check gave no usable answer: {err}"
        except BudgetExhaustedError as err:
            return f"not checked: {err}"
        return None if verdict.safe else f"sanity: {verdict.reason or 'unsafe'}"

    async def _ask(
        self, role: Role, context: MutatorContext | SanityContext, model: type[T], action: str
    ) -> T:
        prompt = await self._prompts.current_prod(role)
        request = LlmRequest.answered_by(
            model, role=role, system=prompt.system,
            prompt=render_prompt(prompt.content, context),
            max_output_tokens=self._output_tokens(role, context),
        )  # fmt: skip
        answer = await self._llm.ask(
            request,
            lambda n: CallContext(
                action_id=action_id(action, answer=n),
                session_id=None,
                iteration=None,
                prompt_id=prompt.id,
                scope="optimizer",
            ),
            lambda text: parse_structured(text, model),
        )
        return answer.value

    def _output_tokens(self, role: Role, context: MutatorContext | SanityContext) -> int:
        """Room for the answer: whole templates for the mutator, a verdict for sanity."""
        if role != "mutator" or not isinstance(context, MutatorContext):
            return self._settings.max_output_tokens
        per_variation = estimate_tokens(context.template) + 300
        return min(per_variation * context.variations, self._settings.mutator_max_output_tokens)


def dry_render_problem(role: str, content: str) -> str | None:
    """None when ``content`` renders in the sandbox with every dummy context of ``role``
    (each branch a real call can take: feedback, a previous spec, history, skills, each
    kind), so a payload or a typo in a branch a benchmark never takes is caught too."""
    for context in dry_contexts(role):
        try:
            render_prompt(content, context)
        except PromptRenderError as err:
            return f"template: {err}"
    return None


def dry_contexts(role: str) -> list[BaseModel]:
    base = example_context(role)
    if not isinstance(base, DesignerContext):
        return [base]
    busy = base.model_copy(
        update={
            "iteration": 2,
            "feedback": "The backtest gate failed: win_rate 0.20 (needs >= 0.25).",
            "previous_spec_json": '{"name": "previous", "kind": "rules"}',
            "recent_strategies": [
                RecentStrategy(name="ma-cross", kind="rules", outcome="success", sharpe=0.4),
                RecentStrategy(name="rsi-dip", kind="rules", outcome="failed_design"),
            ],
            "skills": "- ma-cross (rules, sharpe 0.62): a moving-average cross",
        }
    )
    return [
        base,
        busy,
        *(busy.model_copy(update={"kind": kind}) for kind in ("rules", "ml", "code")),
    ]
