"""Token estimates, prices, reservations and the provider factory."""

from __future__ import annotations

import pytest

from stratlab.config import Settings
from stratlab.llm.base import OFFLINE_MODEL, LlmRequestError, LlmTransientError
from stratlab.llm.factory import build_provider
from stratlab.llm.offline import OfflineProvider
from stratlab.llm.pricing import (
    DEFAULT_PRICE,
    PRICES,
    cost_usd,
    estimate_tokens,
    price_for,
    worst_case_cost,
)
from stratlab.models.llm import LlmRequest


def test_estimate_tokens_rounds_up_at_four_chars() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000


def test_prices_match_exact_then_longest_prefix_then_default() -> None:
    settings = Settings()
    assert price_for("gpt-4o", settings=settings) == PRICES["gpt-4o"]
    assert price_for("gpt-4o-mini-2024-07-18", settings=settings) == PRICES["gpt-4o-mini"]
    assert price_for("claude-sonnet-4-5-20250929", settings=settings) == PRICES["claude-sonnet-4-5"]
    assert price_for("llama3.1:8b", settings=settings) == DEFAULT_PRICE
    assert DEFAULT_PRICE.output_usd_per_mtok >= max(p.output_usd_per_mtok for p in PRICES.values())


def test_offline_shadow_price_comes_from_settings() -> None:
    settings = Settings(offline_input_usd_per_mtok=1.0, offline_output_usd_per_mtok=2.0)
    assert cost_usd(OFFLINE_MODEL, 1_000_000, 500_000, settings=settings) == pytest.approx(2.0)


def test_cost_usd() -> None:
    cost = cost_usd("gpt-4o", 1000, 2000, settings=Settings())
    assert cost == pytest.approx((1000 * 2.5 + 2000 * 10.0) / 1e6)


def test_worst_case_cost_reserves_input_plus_full_output_cap() -> None:
    settings = Settings(max_output_tokens=1000)
    request = LlmRequest(
        role="designer",
        system="s" * 400,
        prompt="p" * 4000,
        schema_name="StrategySpec",
        json_schema={},
        max_output_tokens=4096,
    )
    expected = cost_usd("gpt-4o", 100 + 1000, 1000, settings=settings)
    assert worst_case_cost(request, "gpt-4o", settings=settings) == pytest.approx(expected)
    with_schema = request.model_copy(update={"json_schema": {"type": "object", "x": "y" * 400}})
    assert worst_case_cost(with_schema, "gpt-4o", settings=settings) > expected


def test_factory_defaults_to_offline() -> None:
    provider = build_provider(Settings())
    assert isinstance(provider, OfflineProvider)
    assert provider.name == "offline"


def test_factory_builds_openai_when_configured() -> None:
    provider = build_provider(
        Settings(llm_provider="openai", openai_base_url="http://127.0.0.1:1/v1")
    )
    assert provider.name == "openai"


def test_factory_rejects_openai_without_key_or_url() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_provider(Settings(llm_provider="openai"))


def test_factory_lists_choices_for_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="choices: offline, openai"):
        build_provider(Settings(llm_provider="gemini"))


def test_errors_say_whether_to_retry_and_survive_pickling() -> None:
    import pickle

    transient = LlmTransientError("rate limited", status_code=429, retry_after=2.5)
    copy = pickle.loads(pickle.dumps(transient))
    assert copy.retryable and copy.retry_after == 2.5 and copy.status_code == 429
    assert str(copy) == "rate limited"
    assert not LlmRequestError("bad", status_code=400).retryable
