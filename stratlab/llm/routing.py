"""A provider that sends each role to its own provider and model (``STRATLAB_ROLE_MODELS``).

The factory builds one ``RoutingProvider`` from the role plan, with each distinct
provider built once. A request without a model gets its role's model; the answer keeps
the provider's own name, so every ``agent_actions`` row says which provider answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stratlab.llm.base import LlmProvider
from stratlab.models.llm import LlmRequest, LlmResponse, Role


@dataclass(frozen=True)
class Route:
    provider: LlmProvider
    model: str


class RoutingProvider:
    """Dispatches ``complete`` and ``model_for`` by ``request.role``."""

    def __init__(self, routes: Mapping[Role, Route]) -> None:
        self._routes = dict(routes)  # every role: the plan has a route for each
        names = {r.provider.name for r in self._routes.values()}
        # Used where no answer names its provider (a failed call's row): one name when
        # every role goes to the same provider, else all of them, e.g. "anthropic+openai".
        self.name = "+".join(sorted(names))

    def route(self, request: LlmRequest) -> tuple[LlmProvider, LlmRequest]:
        """The provider for the request's role and the request with its model set."""
        route = self._routes[request.role]
        if request.model is None:
            request = request.model_copy(update={"model": route.model})
        return route.provider, request

    def provider_name_for(self, request: LlmRequest) -> str:
        return self.route(request)[0].name

    def model_for(self, request: LlmRequest) -> str:
        provider, routed = self.route(request)
        return provider.model_for(routed)

    async def complete(self, request: LlmRequest) -> LlmResponse:
        provider, routed = self.route(request)
        return await provider.complete(routed)
