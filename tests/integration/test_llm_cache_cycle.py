"""The response cache end to end: the same isolated research cycle run twice against a
fake OpenAI server with ``STRATLAB_LLM_CACHE`` on. The second run asks the server nothing,
its calls are recorded as cached at no cost, and it reaches the same outcome."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.fake_llm_server import FakeLlmServer
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import rows

CALLS = "SELECT * FROM agent_actions WHERE session_id = %(s)s ORDER BY created_at, action_id"


@pytest.fixture
def lab_overrides(fake_llm: FakeLlmServer) -> dict[str, Any]:
    return {
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "openai_base_url": fake_llm.base_url,
        "openai_api_key": "sk-test-not-a-secret",
        "llm_cache": True,
    }


async def test_a_rerun_is_answered_from_the_cache_for_free(
    lab: Any, fake_llm: FakeLlmServer
) -> None:
    cycle = {
        "symbol": "sp500",
        "kind": "rules",
        "max_iterations": 1,
        # Isolated: the prompt does not mention the first run's strategy, so it repeats.
        "isolated": True,
        "training_gate": OPEN_TRAINING_GATE,
        "backtest_gate": OPEN_BACKTEST_GATE,
        "statistical_gate": OPEN_STATISTICAL_GATE,
    }
    first = await lab.run_cycle(**cycle)
    sent = len(fake_llm.calls())
    assert first.outcome == "success" and sent >= 2  # at least the designer and assessor
    first_calls = await rows(lab, CALLS, s=first.session_id)
    assert not any(c["cached"] for c in first_calls)
    assert all(c["provider"] == "openai" and float(c["cost_usd"]) > 0 for c in first_calls)
    (stored,) = await rows(lab, "SELECT count(*) AS n FROM llm_cache")
    assert stored["n"] == sent

    second = await lab.run_cycle(**cycle)
    assert len(fake_llm.calls()) == sent  # not one HTTP request
    second_calls = await rows(lab, CALLS, s=second.session_id)
    assert [c["role"] for c in second_calls] == [c["role"] for c in first_calls]
    assert all(c["cached"] and float(c["cost_usd"]) == 0 for c in second_calls)
    # The replayed answers carry the first answers' tokens and latency.
    assert [c["output_tokens"] for c in second_calls] == [c["output_tokens"] for c in first_calls]
    assert second.cost_usd == 0 and first.cost_usd > 0

    assert second.outcome == first.outcome
    (a,), (b,) = first.iterations, second.iterations
    assert b.metrics == a.metrics and b.assessment == a.assessment
    specs = await rows(
        lab,
        "SELECT spec FROM strategies WHERE session_id IN (%(a)s, %(b)s) ORDER BY created_at",
        a=first.session_id,
        b=second.session_id,
    )
    assert len(specs) == 2 and specs[0]["spec"] == specs[1]["spec"]
    (budget,) = await rows(lab, "SELECT spent_usd FROM agent_budget WHERE scope = 'research'")
    assert float(budget["spent_usd"]) == pytest.approx(first.cost_usd, rel=1e-6)
