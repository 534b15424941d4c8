"""DTOs of the LLM layer: what a provider is asked and what it answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["designer", "assessor", "mutator", "composer", "coder", "sanity"]
CallOutcome = Literal[
    "ok", "malformed", "invalid", "truncated", "refused", "error", "budget_exhausted"
]
StopReason = Literal["end", "max_tokens", "refusal"]
"""Why a provider stopped: a complete answer, the output-token cap, or a refusal."""


class LlmRequest(BaseModel):
    role: Role
    system: str
    prompt: str = Field(description="the rendered user prompt")
    schema_name: str = Field(description="name of the structured output, e.g. StrategySpec")
    json_schema: dict[str, Any] = Field(description="JSON schema the answer must match")
    max_output_tokens: int = 2048
    temperature: float = 0.2
    model: str | None = None

    @classmethod
    def answered_by(
        cls, answer: type[BaseModel], *, role: Role, system: str, prompt: str,
        max_output_tokens: int,
    ) -> LlmRequest:  # fmt: skip
        """A request whose answer is JSON matching ``answer``: the model's name and schema
        go with the prompt, so the provider can ask for structured output."""
        return cls(
            role=role, system=system, prompt=prompt, schema_name=answer.__name__,
            json_schema=answer.model_json_schema(), max_output_tokens=max_output_tokens,
        )  # fmt: skip


class LlmResponse(BaseModel):
    text: str = Field(description="raw answer text: JSON for structured output")
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    latency_simulated: bool = False
    tokens_estimated: bool = False
    stop_reason: StopReason = "end"
    cached: bool = Field(False, description="answered from the response cache: costs nothing")


class LlmCallRecord(BaseModel):
    """One row of ``agent_actions``."""

    action_id: str
    session_id: str | None = None
    experiment_id: str | None = None
    role: Role
    prompt_id: str | None = None
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    latency_simulated: bool = False
    outcome: CallOutcome = "ok"
    error: str | None = None
    iteration: int | None = None
    cached: bool = False
