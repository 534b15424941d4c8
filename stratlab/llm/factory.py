"""Build the configured provider from Settings.

``offline`` is the default and needs nothing. ``openai`` needs an API key or a base URL
(a local server needs no key); ``anthropic`` needs an API key. With
``STRATLAB_ROLE_MODELS`` set, the result is a ``RoutingProvider`` that sends each role
to its own provider and model (see ``stratlab.llm.roles``), each provider built once.
"""

from __future__ import annotations

from collections.abc import Callable

from stratlab.config import Settings
from stratlab.llm.base import LlmProvider
from stratlab.llm.limits import limited, parse_limits
from stratlab.llm.pricing import load_price_table
from stratlab.llm.roles import (
    RoleRoute,
    provider_settings,
    resolve_provider_name,
    role_plan,
)
from stratlab.llm.routing import Route, RoutingProvider


def _offline(settings: Settings) -> LlmProvider:
    from stratlab.llm.offline import OfflineProvider

    return OfflineProvider(settings)


def _openai(settings: Settings) -> LlmProvider:
    if not settings.openai_api_key and not settings.openai_base_url:
        raise ValueError(
            "llm_provider 'openai' needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server"
        )
    # Imported here so that the offline path never loads the SDK.
    from stratlab.llm.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider(settings)


def _anthropic(settings: Settings) -> LlmProvider:
    if not settings.anthropic_api_key:
        raise ValueError("llm_provider 'anthropic' needs ANTHROPIC_API_KEY")
    from stratlab.llm.anthropic_provider import AnthropicProvider

    return AnthropicProvider(settings)


_BUILDERS: dict[str, Callable[[Settings], LlmProvider]] = {
    "offline": _offline,
    "openai": _openai,
    "anthropic": _anthropic,
}
PROVIDER_NAMES = tuple(_BUILDERS)

__all__ = ["PROVIDER_NAMES", "build_provider", "resolve_provider_name", "role_plan"]


def build_provider(settings: Settings) -> LlmProvider:
    """The configured provider, or a router when roles have their own; ValueError for an
    unknown provider, a provider without its key, a bad role list or price table."""
    plan = role_plan(settings)
    load_price_table(settings)  # a bad STRATLAB_PRICES fails here, not at the first call
    by_provider: dict[str, list[RoleRoute]] = {}
    for route in plan:
        by_provider.setdefault(route.provider, []).append(route)
    limits = parse_limits(settings.provider_limits)
    # Limits sit on each provider, under the router, so two roles on one provider share
    # its limit; the response cache (workers/pools.py) sits above, so a hit never waits.
    built = {
        name: limited(_build(name, routes, settings), limits)
        for name, routes in by_provider.items()
    }
    if not any(r.from_role_models for r in plan):
        return built[resolve_provider_name(settings)]
    return RoutingProvider({r.role: Route(built[r.provider], r.model) for r in plan})


def _build(name: str, routes: list[RoleRoute], settings: Settings) -> LlmProvider:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(
            f"unknown llm_provider {name!r}; choices: {', '.join(PROVIDER_NAMES)}, auto"
        )
    problem = routes[0].problem
    if problem is not None:
        named_by_roles = any(r.from_role_models for r in routes)
        whose = f"{name} (roles: {', '.join(r.role for r in routes)})"
        raise ValueError(f"{whose if named_by_roles else f'llm_provider {name!r}'} {problem}")
    return builder(provider_settings(name, settings))
