"""The optimizer's side of the prompt lifecycle: offspring registered, a generation's
outcome tagged, and a human's review applied.

Prompts are never changed: children are inserted as new rows (draft, then experimental
while measured) and every lifecycle change is an appended tag event. After a generation
its candidates are tagged ``candidate`` and offspring that neither became one nor
survived are archived; a review makes a candidate prod or archives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from stratlab.models.optimization import (
    ApplyReviewInput,
    CheckedChild,
    Individual,
    OffspringRecord,
    RegisterInput,
    ReviewOutcome,
)
from stratlab.store.db import default_prompt_id, prompt_content_hash
from stratlab.store.prompts import PromptRepo

ACTOR = "optimizer"
"""Who the prompt tags the optimizer appends name as their actor."""


class PromptLifecycle:
    """Moves prompts through draft → experimental → candidate → prod or archived."""

    def __init__(self, prompts: PromptRepo) -> None:
        self._prompts = prompts

    async def register(self, inp: RegisterInput) -> list[OffspringRecord]:
        """Insert accepted children as immutable rows (draft → experimental); a child whose
        text is already registered resolves to that prompt and is not re-tagged."""
        records: list[OffspringRecord] = []
        for index, checked in enumerate(inp.children):
            child = checked.child
            digest = prompt_content_hash(child.system, child.content)
            record = OffspringRecord(
                operator=child.operator,
                parent_ids=child.parent_ids,
                accepted=checked.accepted,
                reason=checked.reason,
                content_hash=digest,
            )
            if checked.accepted:
                record.prompt_id = await self._register_child(inp, index, checked, digest)
            records.append(record)
        return records

    async def _register_child(
        self, inp: RegisterInput, index: int, checked: CheckedChild, digest: str
    ) -> str:
        """Insert one accepted child as a draft and put it under regression; its prompt id."""
        child = checked.child
        # The id follows from the role and text, like the defaults' ids: the same child
        # bred in another run or database is the same prompt, so ties between equally fit
        # prompts break the same way everywhere and a campaign reproduces exactly.
        prompt_id = default_prompt_id(inp.role, digest)
        known = await self._prompts.get(prompt_id)
        stored = await self._prompts.insert(
            prompt_id=prompt_id,
            role=inp.role,
            content=child.content,
            system=child.system,
            version=f"1.{inp.generation + 1}.{index}",
            parent_ids=child.parent_ids,
            generation=inp.generation,
            metadata={"operator": child.operator, "rationale": child.rationale},
            tag="draft",
            actor=ACTOR,
            reason=f"bred in generation {inp.generation} by {child.operator}",
        )
        # Only a prompt this generation created is put under regression; a retry
        # finds it still a draft of this generation. An older prompt keeps its tag.
        fresh = known is None or (known.tag == "draft" and known.generation == inp.generation)
        if fresh and stored.id == prompt_id:
            await self._prompts.tag(
                prompt_id,
                "experimental",
                actor=ACTOR,
                reason=f"regression run in generation {inp.generation}",
            )
        return stored.id

    async def settle(
        self,
        generation: int,
        evaluated: Iterable[Individual],
        candidates: Set[str],
        survivors: Set[str],
    ) -> None:
        """Tag the generation's candidates; archive the measured drafts and experimental
        prompts that neither became one nor survived."""
        for member in evaluated:
            if member.prompt_id in candidates:
                await self._prompts.tag(
                    member.prompt_id,
                    "candidate",
                    actor=ACTOR,
                    reason=f"generation {generation}: beats prod's score on targets, "
                    "keeps controls",
                )
            elif member.prompt_id not in survivors:
                await self._archive_if_experimental(member.prompt_id, generation)

    async def apply_review(self, inp: ApplyReviewInput) -> ReviewOutcome:
        """A human's decision on a candidate: approved makes it prod, else it is archived."""
        prompt = await self._prompts.get(inp.prompt_id)
        if prompt is None:
            raise LookupError(f"no prompt {inp.prompt_id!r} to review")
        previous = None
        if inp.decision == "approved":
            try:
                previous = (await self._prompts.current_prod(prompt.role)).id
            except LookupError:
                previous = None
            await self._prompts.tag(
                prompt.id, "prod", actor=inp.actor, reason=inp.reason or "approved"
            )
        else:
            await self._prompts.tag(
                prompt.id, "archived", actor=inp.actor, reason=inp.reason or inp.decision
            )
        return ReviewOutcome(
            prompt_id=prompt.id,
            decision=inp.decision,
            reason=inp.reason,
            actor=inp.actor,
            previous_prod_id=previous if previous != prompt.id else None,
        )

    async def _archive_if_experimental(self, prompt_id: str, generation: int) -> None:
        found = await self._prompts.get(prompt_id)
        if found is not None and found.tag in ("draft", "experimental"):
            await self._prompts.tag(
                prompt_id,
                "archived",
                actor=ACTOR,
                reason=f"not selected in generation {generation}",
            )
