"""The offline provider: a deterministic stand-in for an LLM. It is not an AI.

Its model name is ``offline-deterministic-v1``. It answers the designer and assessor
roles with valid structured JSON whose content depends only on the request text (system
plus prompt): a ``random.Random`` seeded from the SHA-256 of that text makes its
choices, never the clock or global randomness, so the same prompt always gets the same
answer and a different prompt usually gets a different one (``temperature`` is ignored).
Directives in the prompt (``stratlab.llm.directives.DIRECTIVES``) change what it designs
or how long it answers; the designs are then measured by real backtests on real data.
The prompt line formats it reads are documented in ``stratlab.llm._offline_prompt``.

Token counts are estimated from text (``tokens_estimated=True``); latency is simulated
as output tokens x ``Settings.offline_ms_per_output_token`` (``latency_simulated=True``)
and never slept. An answer longer than the output-token cap is cut off at the cap, as a
real model's would be, and then fails parsing.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable

from pydantic import BaseModel

from stratlab.config import Settings
from stratlab.llm._offline_assess import assess
from stratlab.llm._offline_design import design
from stratlab.llm._offline_prompt import read_assessor, read_designer
from stratlab.llm.base import OFFLINE_MODEL, LlmRequestError
from stratlab.llm.directives import DIRECTIVES, Directive
from stratlab.llm.pricing import CHARS_PER_TOKEN, estimate_tokens, output_token_cap
from stratlab.models.llm import LlmRequest, LlmResponse

__all__ = ["DIRECTIVES", "OFFLINE_MODEL", "Directive", "OfflineProvider", "seeded_random"]


def seeded_random(system: str, prompt: str) -> random.Random:
    """A generator seeded only by the request text."""
    digest = hashlib.sha256(f"{system}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _designer(system: str, prompt: str) -> tuple[BaseModel, bool]:
    view = read_designer(system, prompt)
    return design(view, seeded_random(system, prompt)), "concise" in view.directives


def _assessor(system: str, prompt: str) -> tuple[BaseModel, bool]:
    view = read_assessor(system, prompt)
    return assess(view), "concise" in view.directives


_ROLES: dict[str, Callable[[str, str], tuple[BaseModel, bool]]] = {
    "designer": _designer,
    "assessor": _assessor,
}


class OfflineProvider:
    """Deterministic stand-in for an LLM (model ``offline-deterministic-v1``); not an AI."""

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def model_for(self, request: LlmRequest) -> str:
        return OFFLINE_MODEL

    async def complete(self, request: LlmRequest) -> LlmResponse:
        behaviour = _ROLES.get(request.role)
        if behaviour is None:
            raise LlmRequestError(f"offline provider has no behaviour for role {request.role}")
        answer, compact = behaviour(request.system, request.prompt)
        data = answer.model_dump(mode="json")
        # "Be concise" also shortens the JSON itself, as a model told so would.
        text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2)
        cap = output_token_cap(request, self._settings)
        if estimate_tokens(text) > cap:
            text = text[: cap * CHARS_PER_TOKEN]
        output_tokens = estimate_tokens(text)
        return LlmResponse(
            text=text,
            provider=self.name,
            model=OFFLINE_MODEL,
            input_tokens=estimate_tokens(request.system) + estimate_tokens(request.prompt),
            output_tokens=output_tokens,
            latency_ms=output_tokens * self._settings.offline_ms_per_output_token,
            latency_simulated=True,
            tokens_estimated=True,
        )
