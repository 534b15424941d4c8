"""Build the configured provider from Settings.

``offline`` is the default and needs nothing. ``openai`` needs an API key or a base URL
(a local server needs no key). Anthropic arrives in a later issue; register its builder
in ``_BUILDERS`` then.
"""

from __future__ import annotations

from collections.abc import Callable

from stratlab.config import Settings
from stratlab.llm.base import LlmProvider


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


_BUILDERS: dict[str, Callable[[Settings], LlmProvider]] = {
    "offline": _offline,
    "openai": _openai,
}
PROVIDER_NAMES = tuple(_BUILDERS)


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


def build_provider(settings: Settings) -> LlmProvider:
    """The provider named by ``settings.llm_provider``; ValueError for an unknown name."""
    name = resolve_provider_name(settings)
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(
            f"unknown llm_provider {settings.llm_provider!r}; choices: {', '.join(PROVIDER_NAMES)}"
        )
    return builder(settings)
