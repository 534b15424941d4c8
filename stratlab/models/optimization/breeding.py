"""Breeding offspring prompts: the parents, the children proposed by the operators and
the LLM mutator, the sanity checks on them, and their registration."""

from __future__ import annotations

from pydantic import BaseModel, Field

from stratlab.models.optimization.fitness import Fitness, OptimizableRole, Search

# --- LLM answers of the optimizer's own roles ------------------------------------------


class PromptVariation(BaseModel):
    rationale: str = Field(description="which failure this variation addresses, and how")
    content: str = Field(description="the complete new prompt template (Jinja2)")


class PromptVariations(BaseModel):
    """The mutator's answer: whole new templates, each addressing the failure summary."""

    variations: list[PromptVariation] = Field(default_factory=list)


class SanityVerdict(BaseModel):
    """The sanity checker's answer on a candidate prompt."""

    safe: bool
    reason: str = ""


# --- activity payloads -----------------------------------------------------------------


class ParentSpec(BaseModel):
    prompt_id: str
    system: str
    content: str
    fitness: Fitness | None = None


LLM_MUTATION = "llm_mutation"
"""The operator name of a child the LLM mutator wrote (DEAP's are in optimizer.operators)."""


class ProposedChild(BaseModel):
    system: str
    content: str
    parent_ids: list[str]
    operator: str
    rationale: str = ""


class ProposeInput(BaseModel):
    role: OptimizableRole
    generation: int
    seed: int
    search: Search = "nsga2"
    count: int
    parents: list[ParentSpec]
    exclude_hashes: list[str] = Field(default_factory=list)
    taken: list[ProposedChild] = Field(
        default_factory=list, description="children already proposed (by the LLM mutator)"
    )


class MutateInput(BaseModel):
    role: OptimizableRole
    generation: int
    parent: ParentSpec
    failure_summary: str
    count: int
    action_id: str = Field(description="made by the workflow: the LLM call's idempotency key")
    exclude_hashes: list[str] = Field(default_factory=list, description="registered already")


class CheckInput(BaseModel):
    role: OptimizableRole
    generation: int
    children: list[ProposedChild]
    parents: list[ParentSpec]
    action_id: str


class CheckedChild(BaseModel):
    child: ProposedChild
    accepted: bool
    reason: str = ""


class RegisterInput(BaseModel):
    role: OptimizableRole
    generation: int
    children: list[CheckedChild]
    prompt_ids: list[str] = Field(
        default_factory=list, description="unused: ids follow from role and text"
    )
