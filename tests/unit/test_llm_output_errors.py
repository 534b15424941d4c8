"""Classified failures: an answer cut off at the output cap or refused is charged, labelled
on its row and raised as ``LlmOutputError`` without a repair call; and the one mapping of
the LLM layer's errors to Temporal's ``ApplicationError`` (retry-after included)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities._errors import MAX_RETRY_DELAY, llm_application_error
from stratlab.config import Settings
from stratlab.llm.anthropic_provider import AnthropicProvider
from stratlab.llm.base import LlmOutputError, LlmRequestError, LlmTransientError
from stratlab.llm.budgeted import BudgetedLlm, BudgetExhaustedError, CallContext
from stratlab.llm.parsing import parse_structured
from stratlab.llm.pricing import cost_usd
from stratlab.models.llm import LlmRequest
from stratlab.models.research import Assessment
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.db import Pool
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply

ANSWER = '{"verdict": "accept", "summary": "fine"}'


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(default=FakeReply(content=ANSWER)) as fake:
        yield fake


@pytest.fixture
def llm(server: FakeLlmServer, db_pool: Pool) -> BudgetedLlm:
    settings = Settings(
        llm_provider="anthropic",
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=server.anthropic_base_url,
        max_output_tokens=300,
        llm_timeout_seconds=5,
    )
    return BudgetedLlm(
        AnthropicProvider(settings), BudgetRepo(db_pool), ActionRepo(db_pool), settings
    )


def _request() -> LlmRequest:
    return LlmRequest(
        role="assessor",
        system="You assess.",
        prompt="Assess this.",
        schema_name="Assessment",
        json_schema=Assessment.model_json_schema(),
    )


def _ctx(n: int) -> CallContext:
    return CallContext(
        action_id=f"s1:1:assessor:1:{n}", session_id=None, iteration=1, prompt_id=None
    )


async def _rows(db: Pool) -> list[dict[str, Any]]:
    async with db.connection() as conn, conn.cursor() as cur:
        await cur.execute(
            "SELECT action_id, outcome, error, input_tokens, output_tokens, cost_usd"
            " FROM agent_actions ORDER BY action_id"
        )
        return list(await cur.fetchall())


async def _spent(db: BudgetRepo) -> float:
    day = await db.day_status("research", datetime.now(UTC).date())
    assert day.reserved_usd == 0  # every reservation was settled
    return day.spent_usd


@pytest.mark.parametrize(
    ("reply", "outcome", "message"),
    [
        (
            FakeReply(content='{"verdict": "acc', stop_reason="max_tokens", completion_tokens=300),
            "truncated",
            "assessor answer truncated at 300 output tokens",
        ),
        (
            FakeReply(refusal="I can't assess\nthat.", completion_tokens=12),
            "refused",
            "assessor refused to answer: I can't assess that.",
        ),
    ],
)
async def test_a_stopped_answer_is_charged_labelled_and_not_repaired(
    llm: BudgetedLlm,
    server: FakeLlmServer,
    db_pool: Pool,
    reply: FakeReply,
    outcome: str,
    message: str,
) -> None:
    server.script(reply)
    accepted: list[str] = []

    def accept(text: str) -> Assessment:
        accepted.append(text)
        return parse_structured(text, Assessment)

    with pytest.raises(LlmOutputError) as caught:
        await llm.ask(_request(), _ctx, accept)
    assert str(caught.value) == message and not caught.value.retryable
    assert len(server.calls()) == 1 and accepted == []  # no parse, no repair call

    [row] = await _rows(db_pool)
    assert (row["outcome"], row["error"]) == (outcome, message)
    expected = cost_usd(
        "claude-sonnet-4-5", reply.prompt_tokens, reply.completion_tokens, settings=Settings()
    )
    assert float(row["cost_usd"]) == pytest.approx(expected) and expected > 0
    assert await _spent(BudgetRepo(db_pool)) == pytest.approx(expected)


async def test_a_malformed_answer_still_gets_one_repair(
    llm: BudgetedLlm, server: FakeLlmServer, db_pool: Pool
) -> None:
    server.script(FakeReply(content="Sure! {not json"))
    answer = await llm.ask(_request(), _ctx, lambda t: parse_structured(t, Assessment))
    assert answer.value.verdict == "accept"
    assert len(server.calls()) == 2
    assert [r["outcome"] for r in await _rows(db_pool)] == ["malformed", "ok"]
    repair = server.calls()[1].call
    assert repair is not None and "previous answer was rejected" in repair.prompt


def test_a_transient_error_retries_after_the_servers_hint() -> None:
    error = llm_application_error(LlmTransientError("429", retry_after=3.5), "X")
    assert (error.type, error.non_retryable) == ("LlmTransientError", False)
    assert error.next_retry_delay == timedelta(seconds=3.5)


@pytest.mark.parametrize("retry_after", [None, 0.0])
def test_without_a_hint_the_retry_policy_decides(retry_after: float | None) -> None:
    error = llm_application_error(LlmTransientError("timeout", retry_after=retry_after), "X")
    assert not error.non_retryable and error.next_retry_delay is None


def test_a_runaway_hint_is_capped() -> None:
    error = llm_application_error(LlmTransientError("429", retry_after=86_400), "X")
    assert error.next_retry_delay == MAX_RETRY_DELAY


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (LlmRequestError("401", status_code=401), "LlmRequestError"),
        (LlmOutputError("designer answer truncated at 2048 output tokens"), "LlmOutputError"),
        (BudgetExhaustedError("no budget"), "BudgetExhaustedError"),
        (ValueError("designer answer rejected"), "StrategyDesignError"),
    ],
)
def test_everything_else_is_final(err: Exception, kind: str) -> None:
    error = llm_application_error(err, "StrategyDesignError")
    assert (error.type, error.non_retryable, error.message) == (kind, True, str(err))
