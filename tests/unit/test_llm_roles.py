"""Per-role providers and models: parsing STRATLAB_ROLE_MODELS, the plan, the router."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stratlab.config import Settings
from stratlab.llm.base import OFFLINE_MODEL
from stratlab.llm.factory import build_provider
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.roles import DEFAULT_MODELS, RoleChoice, parse_role_models, role_plan
from stratlab.llm.routing import RoutingProvider
from stratlab.models.llm import LlmRequest, Role
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply
from tests.fixtures.offline_requests import designer_request


def request(role: Role, prompt: str = "p") -> LlmRequest:
    return LlmRequest(role=role, system="s", prompt=prompt, schema_name="X", json_schema={})


def test_parse_provider_and_model_with_the_provider_optional() -> None:
    parsed = parse_role_models(
        " designer=anthropic:claude-sonnet-4-5 , sanity=openai:gpt-4o-mini,"
        "assessor=gpt-4o-mini,mutator=openai,coder=llama3.1:8b,composer=openai:llama3.1:8b,"
    )
    assert parsed == {
        "designer": RoleChoice("anthropic", "claude-sonnet-4-5"),
        "sanity": RoleChoice("openai", "gpt-4o-mini"),
        "assessor": RoleChoice(None, "gpt-4o-mini"),
        "mutator": RoleChoice("openai", None),
        # An Ollama tag is a model name: "llama3.1" is no provider.
        "coder": RoleChoice(None, "llama3.1:8b"),
        "composer": RoleChoice("openai", "llama3.1:8b"),
    }
    assert parse_role_models(None) == {} and parse_role_models(" , ") == {}


@pytest.mark.parametrize(
    ("text", "entry", "why"),
    [
        ("designer", "designer", "expected role=[provider:]model"),
        ("designer=", "designer=", "expected role=[provider:]model"),
        ("designer=gpt-4o,painter=gpt-4o", "painter=gpt-4o", "unknown role 'painter'"),
        ("sanity=gpt-4o,sanity=openai:gpt-4o", "sanity=openai:gpt-4o", "listed twice"),
        ("coder=offline:gpt-4o", "coder=offline:gpt-4o", "offline provider has one model"),
    ],
)
def test_a_bad_entry_is_named_in_the_error(text: str, entry: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_role_models(text)
    assert f"STRATLAB_ROLE_MODELS entry {entry!r}" in str(err.value)
    assert why in str(err.value)


def test_default_plan_is_offline_for_every_role() -> None:
    plan = role_plan(Settings())
    assert [r.role for r in plan] == [
        "designer",
        "assessor",
        "mutator",
        "composer",
        "coder",
        "sanity",
    ]
    assert {(r.provider, r.model, r.key_set, r.configured) for r in plan} == {
        ("offline", OFFLINE_MODEL, None, True)
    }


def test_plan_says_provider_model_and_whether_its_key_is_set() -> None:
    settings = Settings(
        openai_api_key="sk-test-plan",
        llm_model="gpt-4.1",
        role_models="designer=anthropic:claude-opus-4-5,sanity=anthropic,assessor=gpt-4o",
    )
    plan = {r.role: r for r in role_plan(settings)}
    # auto: the OpenAI key makes openai the default, and STRATLAB_LLM_MODEL its model.
    assert (plan["mutator"].provider, plan["mutator"].model) == ("openai", "gpt-4.1")
    assert not plan["mutator"].from_role_models
    assert plan["mutator"].key_set is True and plan["mutator"].configured
    assert plan["mutator"].endpoint == "https://api.openai.com/v1"
    assert (plan["assessor"].provider, plan["assessor"].model) == ("openai", "gpt-4o")
    assert (plan["designer"].provider, plan["designer"].model) == ("anthropic", "claude-opus-4-5")
    # A second provider takes its own default model, not the default provider's.
    assert plan["sanity"].model == DEFAULT_MODELS["anthropic"]
    assert plan["designer"].key_set is False and not plan["designer"].configured
    assert "ANTHROPIC_API_KEY" in (plan["designer"].problem or "")
    assert "sk-test-plan" not in repr(plan)


def test_a_local_openai_server_needs_no_key() -> None:
    (route, *_) = role_plan(Settings(openai_base_url="http://127.0.0.1:9/v1"))
    assert route.provider == "openai" and route.key_set is False and route.configured
    assert route.endpoint == "http://127.0.0.1:9/v1"


def test_a_model_for_the_offline_default_is_noted_as_ignored() -> None:
    plan = {r.role: r for r in role_plan(Settings(role_models="designer=claude-sonnet-4-5"))}
    assert plan["designer"].model == OFFLINE_MODEL
    assert "claude-sonnet-4-5 ignored" in (plan["designer"].note or "")
    assert plan["assessor"].note is None


def test_unknown_default_provider_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown llm_provider 'gemini'; choices: offline"):
        role_plan(Settings(llm_provider="gemini"))


@pytest.fixture
def fake_llm_ok() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(default=FakeReply(content='{"ok": true}')) as server:
        yield server


async def test_router_sends_each_role_to_its_provider_and_model(fake_llm_ok: FakeLlmServer) -> None:
    settings = Settings(
        llm_provider="offline",
        llm_model="ignored-by-offline",
        openai_base_url=fake_llm_ok.base_url,
        anthropic_base_url=fake_llm_ok.anthropic_base_url,
        anthropic_api_key="sk-ant-test-router",
        role_models="sanity=openai:gpt-4.1-mini,mutator=openai,assessor=anthropic:claude-haiku-4-5",
    )
    router = build_provider(settings)
    assert isinstance(router, RoutingProvider)
    assert router.name == "anthropic+offline+openai"

    sanity = await router.complete(request("sanity"))
    assessed = await router.complete(request("assessor"))
    assert (sanity.provider, sanity.model) == ("openai", "gpt-4.1-mini")
    assert (assessed.provider, assessed.model) == ("anthropic", "claude-haiku-4-5")
    sent = [(r.path, r.json()["model"]) for r in fake_llm_ok.requests]
    assert sent == [("/v1/chat/completions", "gpt-4.1-mini"), ("/v1/messages", "claude-haiku-4-5")]
    # Not STRATLAB_LLM_MODEL: that names the default provider's model.
    assert router.model_for(request("mutator")) == DEFAULT_MODELS["openai"]

    designed = await router.complete(designer_request())
    assert (designed.provider, designed.model) == ("offline", OFFLINE_MODEL)
    assert router.model_for(designer_request()) == OFFLINE_MODEL
    assert len(fake_llm_ok.requests) == 2  # the designer never reached the server

    # One provider per name, shared by its roles.
    (sanity_provider, _), (mutator_provider, _) = (
        router.route(request("sanity")),
        router.route(request("mutator")),
    )
    assert sanity_provider is mutator_provider
    # A request that names its own model keeps it.
    explicit = request("sanity").model_copy(update={"model": "gpt-4o"})
    assert router.model_for(explicit) == "gpt-4o"


def test_without_role_models_the_provider_is_not_wrapped() -> None:
    assert isinstance(build_provider(Settings()), OfflineProvider)
    # Role models that repeat the default still route (the model may differ per role).
    assert isinstance(build_provider(Settings(role_models="designer=offline")), RoutingProvider)


@pytest.mark.parametrize(
    ("role_models", "named", "needs"),
    [
        (
            "designer=openai:gpt-4o,coder=openai",
            "openai (roles: designer, coder)",
            "OPENAI_API_KEY",
        ),
        ("sanity=anthropic", "anthropic (roles: sanity)", "ANTHROPIC_API_KEY"),
    ],
)
def test_a_role_on_a_provider_without_its_key_fails_at_build_naming_the_roles(
    role_models: str, named: str, needs: str
) -> None:
    with pytest.raises(ValueError) as err:
        build_provider(Settings(role_models=role_models))
    assert named in str(err.value) and needs in str(err.value)
