"""Which provider and model answer each role: ``STRATLAB_ROLE_MODELS`` and the defaults.

``STRATLAB_ROLE_MODELS`` is a comma-separated list of ``role=[provider:]model``, e.g.
``designer=anthropic:claude-sonnet-4-5,sanity=openai:gpt-4o-mini,assessor=gpt-4o-mini``.
Without a provider the role uses the default provider (``STRATLAB_LLM_PROVIDER``, ``auto``
resolved); a bare provider (``sanity=offline``) takes that provider's default model. A
prefix before ``:`` counts as a provider only when it is one (``offline``, ``openai``,
``anthropic``), so Ollama tags such as ``llama3.1:8b`` are model names; to be explicit,
write ``openai:llama3.1:8b``. Roles not listed use the default provider and
``STRATLAB_LLM_MODEL`` (or that provider's default model).

Everything here is pure: ``role_plan`` reads Settings and never builds a client or opens
a connection, so ``stratlab doctor`` can show the plan even when a provider is broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from stratlab.config import Settings
from stratlab.llm.base import OFFLINE_MODEL
from stratlab.models.llm import Role

ROLES: tuple[Role, ...] = get_args(Role)
KNOWN_PROVIDERS = ("offline", "openai", "anthropic")
DEFAULT_MODELS: dict[str, str] = {
    "offline": OFFLINE_MODEL,
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
}
"""The model a provider gets when neither the role nor ``STRATLAB_LLM_MODEL`` names one.
The factory passes it to the provider explicitly, so this table is the one source."""

DEFAULT_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


@dataclass(frozen=True)
class RoleChoice:
    """One parsed ``STRATLAB_ROLE_MODELS`` entry; ``None`` means "the default"."""

    provider: str | None
    model: str | None


@dataclass(frozen=True)
class RoleRoute:
    """What a role will use, and whether that provider is configured. Never holds a key."""

    role: Role
    provider: str
    model: str
    from_role_models: bool
    key_set: bool | None  # None: the provider needs no key
    endpoint: str | None  # base URL; None for the built-in offline provider
    problem: str | None = None  # why the provider cannot be used as configured
    note: str | None = None

    @property
    def configured(self) -> bool:
        return self.problem is None


def resolve_provider_name(settings: Settings) -> str:
    """``auto`` becomes the provider whose key is set: anthropic, then openai, else offline."""
    name = settings.llm_provider.strip().lower()
    if name != "auto":
        return name
    if settings.anthropic_api_key:
        return "anthropic"
    if settings.openai_api_key or settings.openai_base_url:
        return "openai"
    return "offline"


def parse_role_models(text: str | None) -> dict[Role, RoleChoice]:
    """Parse ``STRATLAB_ROLE_MODELS``; ValueError naming the first bad entry."""
    choices: dict[Role, RoleChoice] = {}
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        role_text, sep, value = (part.strip() for part in entry.partition("="))
        if not sep or not value:
            raise _bad(entry, "expected role=[provider:]model")
        role = _role(role_text, entry)
        if role in choices:
            raise _bad(entry, f"role {role} is listed twice")
        choices[role] = _choice(value, entry)
    return choices


def _role(text: str, entry: str) -> Role:
    for role in ROLES:
        if role == text.lower():
            return role
    raise _bad(entry, f"unknown role {text!r}; roles: {', '.join(ROLES)}")


def _choice(value: str, entry: str) -> RoleChoice:
    if value.lower() in KNOWN_PROVIDERS:
        return RoleChoice(provider=value.lower(), model=None)
    prefix, sep, model = value.partition(":")
    if not sep or prefix.strip().lower() not in KNOWN_PROVIDERS:
        return RoleChoice(provider=None, model=value)
    provider, model = prefix.strip().lower(), model.strip()
    if provider == "offline" and model and model != OFFLINE_MODEL:
        raise _bad(entry, f"the offline provider has one model, {OFFLINE_MODEL}; write 'offline'")
    return RoleChoice(provider=provider, model=model or None)


def _bad(entry: str, why: str) -> ValueError:
    return ValueError(f"STRATLAB_ROLE_MODELS entry {entry!r}: {why}")


def role_plan(settings: Settings) -> list[RoleRoute]:
    """For every role: provider, model, key and endpoint configured or not.

    ValueError for a malformed ``STRATLAB_ROLE_MODELS`` or an unknown provider name.
    """
    default = resolve_provider_name(settings)
    if default not in KNOWN_PROVIDERS:
        raise ValueError(
            f"unknown llm_provider {settings.llm_provider!r}; "
            f"choices: {', '.join(KNOWN_PROVIDERS)}, auto"
        )
    choices = parse_role_models(settings.role_models)
    return [_route(role, choices.get(role), default, settings) for role in ROLES]


def _route(role: Role, choice: RoleChoice | None, default: str, settings: Settings) -> RoleRoute:
    provider = (choice.provider if choice else None) or default
    wanted = choice.model if choice else None
    if wanted is None and provider == default:
        wanted = settings.llm_model
    model, note = wanted or DEFAULT_MODELS[provider], None
    if provider == "offline" and model != OFFLINE_MODEL:
        if choice is not None and choice.model is not None:
            note = f"model {model} ignored: the offline provider answers as {OFFLINE_MODEL}"
        model = OFFLINE_MODEL
    key_set, problem = _credentials(provider, settings)
    return RoleRoute(
        role=role,
        provider=provider,
        model=model,
        from_role_models=choice is not None,
        key_set=key_set,
        endpoint=endpoint_of(provider, settings),
        problem=problem,
        note=note,
    )


def _credentials(provider: str, settings: Settings) -> tuple[bool | None, str | None]:
    if provider == "openai":
        key = bool(settings.openai_api_key)
        # A local OpenAI-compatible server (Ollama, vLLM) needs no key.
        ok = key or bool(settings.openai_base_url)
        return key, None if ok else "needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server"
    if provider == "anthropic":
        key = bool(settings.anthropic_api_key)
        return key, None if key else "needs ANTHROPIC_API_KEY"
    return None, None


def endpoint_of(provider: str, settings: Settings) -> str | None:
    """The base URL a provider calls (the public API unless a base URL is configured)."""
    if provider == "openai":
        return settings.openai_base_url or DEFAULT_ENDPOINTS["openai"]
    if provider == "anthropic":
        return settings.anthropic_base_url or DEFAULT_ENDPOINTS["anthropic"]
    return None


def provider_settings(provider: str, settings: Settings) -> Settings:
    """Settings for building ``provider``: ``llm_model`` becomes the model it falls back
    to, so a role routed to a second provider never inherits the default provider's
    ``STRATLAB_LLM_MODEL``, and every provider's fallback is ``DEFAULT_MODELS``."""
    own = settings.llm_model if provider == resolve_provider_name(settings) else None
    return settings.model_copy(update={"llm_model": own or DEFAULT_MODELS[provider]})
