"""The human review of a candidate prompt: ``PromptReviewWorkflow``'s input, the
``decide`` signal, the status query and the outcome applied to the registry."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.optimization.fitness import OptimizableRole

ReviewResolution = Literal["approved", "rejected", "expired"]
"""How a review ended: a human approved or rejected the candidate, or nobody decided."""


class ReviewInput(BaseModel):
    """Input of ``PromptReviewWorkflow``: a candidate waiting for a human decision."""

    prompt_id: str = Field(min_length=1, description="the candidate prompt (required)")
    role: OptimizableRole = "designer"
    generation: int | None = None
    summary: str = ""
    timeout_days: float = Field(14.0, gt=0)


class ReviewDecision(BaseModel):
    """The ``decide`` signal: approve tags the prompt prod, reject archives it. The
    workflow also takes a bare ``true`` or ``false`` as ``{"approve": ...}``."""

    approve: bool
    reason: str = ""
    actor: str = "human"


class ReviewStatus(BaseModel):
    """Answer of ``PromptReviewWorkflow``'s ``status`` query."""

    review: ReviewInput
    decision: ReviewDecision | None = Field(None, description="None: still waiting")
    ignored_signals: list[str] = Field(
        default_factory=list, description="decide signals whose payload was unusable, and why"
    )


class ReviewOutcome(BaseModel):
    prompt_id: str
    decision: ReviewResolution
    reason: str = ""
    actor: str = ""
    previous_prod_id: str | None = None


class ApplyReviewInput(BaseModel):
    prompt_id: str
    decision: ReviewResolution
    reason: str = ""
    actor: str = "human"
