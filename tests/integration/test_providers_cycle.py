"""A full research cycle through the real provider SDKs: Anthropic, OpenAI chat
completions and OpenAI responses, each pointed at the local fake server.

The fake answers every call with what the offline provider answers for the same request
(read back from the HTTP body), so the cycle through a provider must end exactly as the
same cycle on the offline provider does: same outcome, same strategies, same verdicts,
same out-of-sample Sharpe. What differs is what the provider path adds: each
``agent_actions`` row names the provider and model, and carries the usage the fake
reported and the cost of that usage at the model's price.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from stratlab.llm.pricing import cost_usd
from stratlab.models.research import ResearchCycleResult
from stratlab.store.db import make_pool
from tests.fixtures.fake_llm_server import FakeLlmServer, offline_responder
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.postgres import create_database, database_url_for, drop_database
from tests.fixtures.temporal import Lab, lab_settings, rows
from workers.pools import run_workers

CYCLE: dict[str, Any] = {
    "symbol": "sp500",
    "kind": "rules",
    "max_iterations": 2,
    "training_gate": OPEN_TRAINING_GATE,
    "backtest_gate": OPEN_BACKTEST_GATE,
    "statistical_gate": OPEN_STATISTICAL_GATE,
}
PROVIDERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # id: (provider name on the rows, model, Settings)
    "anthropic": (
        "anthropic",
        "claude-sonnet-4-5",
        {"llm_provider": "anthropic", "anthropic_api_key": "sk-ant-test-not-a-secret"},
    ),
    "openai-chat": (
        "openai",
        "gpt-4o-mini",
        {"llm_provider": "openai", "openai_api_key": "sk-test", "llm_model": "gpt-4o-mini"},
    ),
    "openai-responses": (
        "openai",
        "gpt-4o",
        {
            "llm_provider": "openai",
            "openai_api": "responses",
            "openai_api_key": "sk-test",
            "llm_model": "gpt-4o",
        },
    ),
}


def _shape(result: ResearchCycleResult) -> list[tuple[Any, ...]]:
    """What a cycle decided, without its ids: outcome, designs, verdicts, OOS Sharpe."""
    return [
        (result.outcome, len(result.iterations)),
        *(
            (
                i.strategy_name,
                i.kind,
                i.outcome,
                i.assessment.verdict if i.assessment else None,
                round(i.metrics.sharpe, 9) if i.metrics else None,
            )
            for i in result.iterations
        ),
    ]


@pytest.fixture(scope="module")
async def offline_reference(
    temporal_env: WorkflowEnvironment,
    postgres_url: str,
    postgres_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[ResearchCycleResult, list[dict[str, Any]]]]:
    """The same cycle on the offline provider, in a lab and database of its own."""
    name = f"stratlab_test_{uuid.uuid4().hex[:12]}"
    create_database(postgres_url, name, template=postgres_template)
    url = database_url_for(postgres_url, name)
    pool = make_pool(url, min_size=1, max_size=10)
    await pool.open(wait=True)
    settings = lab_settings(url, tmp_path_factory.mktemp("offline"), llm_provider="offline")
    stop = asyncio.Event()
    workers = asyncio.create_task(
        run_workers(("orchestrator", "llm", "compute"), temporal_env.client, pool, settings, stop)
    )
    try:
        lab = Lab(settings, temporal_env.client, pool)
        result = await lab.run_cycle(**CYCLE)
        specs = await rows(
            lab,
            "SELECT spec FROM strategies WHERE session_id = %(s)s ORDER BY iteration",
            s=result.session_id,
        )
        yield result, [s["spec"] for s in specs]
    finally:
        stop.set()
        await asyncio.wait_for(workers, timeout=60)
        await pool.close()
        drop_database(postgres_url, name)


@pytest.fixture(params=list(PROVIDERS))
def provider_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lab_overrides(fake_llm: FakeLlmServer, provider_id: str) -> dict[str, Any]:
    overrides = dict(PROVIDERS[provider_id][2])
    overrides["anthropic_base_url"] = fake_llm.anthropic_base_url
    overrides["openai_base_url"] = fake_llm.base_url
    return overrides


@pytest.fixture
def lab_pools() -> tuple[str, ...]:
    return ("orchestrator", "llm", "compute")  # no optimizer work in a research cycle


async def test_a_cycle_through_the_provider_ends_as_offline_does(
    lab: Any,
    fake_llm: FakeLlmServer,
    provider_id: str,
    offline_reference: tuple[ResearchCycleResult, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    provider, model, _ = PROVIDERS[provider_id]
    result = await lab.run_cycle(**CYCLE)

    expected, expected_specs = offline_reference
    assert expected.outcome == "success"  # the reference exercises design and assessment
    assert _shape(result) == _shape(expected)
    specs = await rows(
        lab,
        "SELECT spec FROM strategies WHERE session_id = %(s)s ORDER BY iteration",
        s=result.session_id,
    )
    assert [s["spec"] for s in specs] == expected_specs

    path = {"anthropic": "/v1/messages", "openai-chat": "/v1/chat/completions"}.get(
        provider_id, "/v1/responses"
    )
    calls = fake_llm.calls()
    assert calls and all(c.path == path for c in calls)
    actions = await rows(
        lab,
        "SELECT role, provider, model, input_tokens, output_tokens, cost_usd, outcome"
        " FROM agent_actions WHERE session_id = %(s)s",
        s=result.session_id,
    )
    assert len(actions) == len(calls)  # one row per HTTP call: no hidden retry
    assert {a["role"] for a in actions} == {"designer", "assessor"}
    for a in actions:
        assert (a["provider"], a["model"], a["outcome"]) == (provider, model, "ok")
        assert a["input_tokens"] > 0 and a["output_tokens"] > 0
        price = cost_usd(model, a["input_tokens"], a["output_tokens"], settings=lab.settings)
        assert float(a["cost_usd"]) == pytest.approx(price) and price > 0
    # The usage on each row is what the fake reported for one of the calls it answered.
    respond = offline_responder()
    reported = sorted(
        (r.prompt_tokens, r.completion_tokens)
        for r in (respond(c.call) for c in calls if c.call is not None)
    )
    assert sorted((a["input_tokens"], a["output_tokens"]) for a in actions) == reported
    spent = sum(float(a["cost_usd"]) for a in actions)
    assert result.cost_usd == pytest.approx(spent, rel=1e-6)
