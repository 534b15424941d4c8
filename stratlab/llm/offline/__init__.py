"""The offline provider: a deterministic stand-in for an LLM. It is not an AI.

Its model name is ``offline-deterministic-v1``. It answers the designer and assessor
roles, the optimizer's mutator and sanity roles and the paper-trading composer with
valid structured JSON whose content depends only on the request text (system plus
prompt): a ``random.Random`` seeded from the SHA-256 of what it reads there makes its
choices, never the clock or global randomness, so the same prompt always gets the same
answer (``temperature`` is ignored). For the designer that is the task (symbol, kind,
round, data summary, feedback, history: ``DesignerView.fingerprint``), not the wording
of the prompt, and the directives then act on those choices: a rephrased prompt with the
same directives designs the same strategy and differs only in tokens, while a directive changes the
designs it applies to, the same way wherever it appears. That consistency is what gives
the prompt optimizer a landscape to climb. Directives in the prompt (``DIRECTIVES``:
instructions of the optimizer's vocabulary, ``stratlab.evolution.vocabulary``, with
what the stand-in does for each) change what it designs or how long it answers; the
designs are then measured by real backtests on real data. The prompt line formats it
reads are documented in the private modules ``_prompt`` (designer, assessor),
``_optimizer`` (mutator), ``_sanity`` (sanity) and ``_composer`` (composer: a fixed trend
rule).

Public API: ``OfflineProvider``, ``OFFLINE_MODEL``, the directive table (``DIRECTIVES``,
``Directive``) and ``find_directives`` (which directives a prompt holds). Tests and
benchmarks that need to read the stand-in's choices back use
``stratlab.llm.offline.inspect``; nothing outside this package imports its ``_`` modules.

The mutator maps the failure summary to directives and answers whole templates, each
with one instruction line added or removed; it answers only as many of the requested
variations as fit under the output-token cap (at least one). The sanity checker rejects
injection phrases, nonsense, drastic length changes and templates that lost the lines
the offline designer or assessor reads.

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
from stratlab.llm.base import OFFLINE_MODEL, LlmRequestError
from stratlab.llm.offline._assess import assess
from stratlab.llm.offline._composer import compose
from stratlab.llm.offline._design import design
from stratlab.llm.offline._directives import DIRECTIVES, Directive, find_directives
from stratlab.llm.offline._optimizer import fit_variations, mutate, read_mutator
from stratlab.llm.offline._prompt import read_assessor, read_designer
from stratlab.llm.offline._sanity import check_sanity, read_sanity
from stratlab.llm.pricing import CHARS_PER_TOKEN, estimate_tokens, output_token_cap
from stratlab.models.llm import LlmRequest, LlmResponse

__all__ = ["DIRECTIVES", "OFFLINE_MODEL", "Directive", "OfflineProvider", "find_directives"]


def _seeded_random(system: str, prompt: str) -> random.Random:
    """A generator seeded only by the request text."""
    digest = hashlib.sha256(f"{system}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


# A role's behaviour: (system, prompt, output-token cap) -> (answer, compact JSON?).
Behaviour = Callable[[str, str, int], tuple[BaseModel, bool]]


def _designer(system: str, prompt: str, _cap: int) -> tuple[BaseModel, bool]:
    view = read_designer(system, prompt)
    rng = _seeded_random("designer", view.fingerprint())
    return design(view, rng), "concise" in view.directives


def _assessor(system: str, prompt: str, _cap: int) -> tuple[BaseModel, bool]:
    view = read_assessor(system, prompt)
    return assess(view), "concise" in view.directives


def _mutator(system: str, prompt: str, cap: int) -> tuple[BaseModel, bool]:
    role, template, failures, count = read_mutator(prompt)
    answer = mutate(role, template, failures, count, _seeded_random(system, prompt))
    return fit_variations(answer, cap), True  # compact: whole templates are long already


def _sanity(system: str, prompt: str, _cap: int) -> tuple[BaseModel, bool]:
    return check_sanity(*read_sanity(prompt)), True


def _composer(_system: str, prompt: str, _cap: int) -> tuple[BaseModel, bool]:
    return compose(prompt), True


_ROLES: dict[str, Behaviour] = {
    "composer": _composer,
    "designer": _designer,
    "assessor": _assessor,
    "mutator": _mutator,
    "sanity": _sanity,
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
        cap = output_token_cap(request, self._settings)
        answer, compact = behaviour(request.system, request.prompt, cap)
        data = answer.model_dump(mode="json")
        # "Be concise" also shortens the JSON itself, as a model told so would.
        text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2)
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
