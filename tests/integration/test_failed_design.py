"""A designer model that answers garbage: the cycle ends ``failed_design`` and loses nothing.

The llm pool talks to a local fake OpenAI-compatible server through the real ``openai``
SDK. Every answer is malformed, so the designer's one repair attempt fails too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.fake_llm_server import FakeOpenAIServer, FakeReply
from tests.fixtures.temporal import rows, save_history


@pytest.fixture
def fake_llm_prose() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(
        default=FakeReply(content="Sure! Here is a great strategy: buy low.")
    ) as s:
        yield s


@pytest.fixture
def lab_overrides(fake_llm_prose: FakeOpenAIServer) -> dict[str, Any]:
    return {
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "openai_base_url": fake_llm_prose.base_url,
        "openai_api_key": "sk-test-not-a-secret",
    }


async def test_malformed_designer_output_fails_the_design(
    lab: Any, fake_llm_prose: FakeOpenAIServer
) -> None:
    handle = await lab.start_cycle(symbol="sp500")
    result = await handle.result()
    await save_history(handle, "research_failed_design")

    assert result.outcome == "failed_design"
    (iteration,) = result.iterations
    assert "no JSON" in (iteration.error or "") or "JSON" in (iteration.error or "")
    assert len(fake_llm_prose.requests) == 2  # the answer and one repair attempt, no more
    repair = fake_llm_prose.requests[1].json()["messages"][-1]["content"]
    assert "previous answer was rejected" in repair

    actions = await rows(
        lab,
        "SELECT outcome, cost_usd FROM agent_actions WHERE session_id = %(s)s ORDER BY created_at",
        s=result.session_id,
    )
    assert [a["outcome"] for a in actions] == ["malformed", "malformed"]
    assert all(float(a["cost_usd"]) > 0 for a in actions)  # billed answers are charged
    assert (
        await rows(lab, "SELECT 1 FROM strategies WHERE session_id = %(s)s", s=result.session_id)
        == []
    )
    (session,) = await rows(
        lab, "SELECT outcome FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["outcome"] == "failed_design"
