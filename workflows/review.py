"""PromptReviewWorkflow: a candidate prompt waiting for a human decision.

The pending review is a running workflow, so it is visible (search attributes: role,
prompt id, generation, phase ``awaiting_review``) and answerable in the Temporal web UI
by sending the ``decide`` signal (``{"approve": true, "reason": "...", "actor": "..."}``,
or a bare ``true``/``false``), as well as with ``stratlab prompts approve|reject``. A
payload that is none of these is ignored and shown (``status`` query, current details).
Approving tags the prompt ``prod`` and archives the previous prod prompt; rejecting, or
nobody deciding within the timeout, archives the candidate. Every change is an appended tag event.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.boundary import mark_ended, signal_payload, validated_input
from workflows.calls import execute

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.optimization import (
        ApplyReviewInput,
        ReviewDecision,
        ReviewInput,
        ReviewOutcome,
        ReviewStatus,
    )
    from workflows import constants as c


@workflow.defn(name="PromptReviewWorkflow")
class PromptReviewWorkflow:
    def __init__(self) -> None:
        self._decision: ReviewDecision | None = None
        self._input: ReviewInput | None = None
        self._ignored: list[str] = []

    @workflow.signal(name="decide")
    def decide(self, *payload: Any) -> None:
        if len(payload) == 1 and isinstance(payload[0], bool):
            payload = ({"approve": payload[0]},)
        decision = signal_payload(ReviewDecision, payload)
        if isinstance(decision, str):
            self._ignored = [*self._ignored, f"decide: {decision}"][-5:]
            workflow.logger.warning("decide signal ignored: %s", decision)
            self._show()
        elif self._decision is None:  # the first decision stands
            self._decision = decision

    @workflow.query(name="pending")
    def pending(self) -> ReviewInput | None:
        return self._input if self._decision is None else None

    @workflow.query(name="status")
    def status(self) -> ReviewStatus | None:
        if self._input is None:
            return None
        return ReviewStatus(
            review=self._input, decision=self._decision, ignored_signals=self._ignored
        )

    @workflow.run
    @validated_input
    async def run(self, inp: ReviewInput) -> ReviewOutcome:
        self._input = inp
        attributes: list[SearchAttributeUpdate[Any]] = [
            c.SA_ROLE.value_set(inp.role),
            c.SA_PROMPT_ID.value_set(inp.prompt_id),
            c.SA_PHASE.value_set("awaiting_review"),
        ]
        if inp.generation is not None:
            attributes.append(c.SA_GENERATION.value_set(inp.generation))
        workflow.upsert_search_attributes(attributes)
        self._show()
        with contextlib.suppress(TimeoutError):  # nobody decided: the review expires
            await workflow.wait_condition(
                lambda: self._decision is not None, timeout=timedelta(days=inp.timeout_days)
            )
        decision = self._decision
        apply = ApplyReviewInput(
            prompt_id=inp.prompt_id,
            decision=("approved" if decision.approve else "rejected") if decision else "expired",
            reason=decision.reason if decision else f"no decision in {inp.timeout_days:g} days",
            actor=decision.actor if decision else "review-timeout",
        )
        outcome = await execute(
            act.APPLY_REVIEW,
            apply,
            summary=f"{apply.decision}: tag prompt {inp.prompt_id} (by {apply.actor})",
        )
        workflow.upsert_search_attributes([c.SA_PHASE.value_set(outcome.decision)])
        mark_ended(outcome.decision, outcome.decision)
        return outcome

    def _show(self) -> None:
        """The UI's current details: what waits for whom, and any payload it could not use."""
        if self._input is None:  # a signal that came before the run began
            return
        inp = self._input
        lines = [
            f"Candidate {inp.role} prompt {inp.prompt_id}: {inp.summary}",
            'Send the signal "decide" with {"approve": true} or '
            '{"approve": false, "reason": "..."}, or run stratlab prompts approve|reject.',
        ]
        lines += [f"Ignored signal {text}" for text in self._ignored]
        workflow.set_current_details("\n".join(lines))
