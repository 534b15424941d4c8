"""The provider fault matrix: what each fault of a real provider does to a research cycle,
counted in HTTP requests.

Every cycle runs through the real Temporal workers, the real Anthropic or OpenAI SDK and
Postgres; the local fake server answers like the offline provider except for the faults
scripted for the designer. The cycle is one design round without assessment, so the
designer's requests are all the LLM requests there are. Temporal is the only retry layer
(the SDKs' retries are off): a transient fault costs one more activity attempt (one more
row, one more request), a final one ends the cycle ``failed_design`` with nothing partial
stored, and every billed answer is charged whatever happens to it afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from stratlab.models.research import ResearchCycleResult
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import rows

KEYS = {"anthropic_api_key": "sk-ant-test-not-a-secret", "openai_api_key": "sk-test-not-a-secret"}
SETTINGS: dict[str, dict[str, Any]] = {
    "anthropic": {"llm_provider": "anthropic"},
    "openai": {"llm_provider": "openai", "llm_model": "gpt-4o-mini"},
}
BOTH = list(SETTINGS)
TIMEOUT_SECONDS = 1.0
POLICY_FIRST_RETRY = 2.0  # workflows.constants.LLM_RETRY.initial_interval


@pytest.fixture
def provider_id() -> str:
    return "anthropic"  # tests parametrize it


@pytest.fixture
def lab_overrides(fake_llm: FakeLlmServer, provider_id: str) -> dict[str, Any]:
    return {
        **SETTINGS[provider_id],
        **KEYS,
        "anthropic_base_url": fake_llm.anthropic_base_url,
        "openai_base_url": fake_llm.base_url,
        "llm_timeout_seconds": TIMEOUT_SECONDS,
    }


@pytest.fixture
def lab_pools() -> tuple[str, ...]:
    return ("orchestrator", "llm", "compute")


async def _design_once(lab: Any) -> ResearchCycleResult:
    """One design round, trained and backtested behind open gates, no assessment."""
    return await lab.run_cycle(
        symbol="sp500",
        kind="rules",
        max_iterations=1,
        assess=False,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )


@dataclass(frozen=True)
class Seen:
    """What the cycle left behind: the designer's HTTP requests and its rows."""

    requests: int
    actions: list[dict[str, Any]]
    strategies: int
    later_rows: int  # training runs and backtests
    spent: float
    reserved: float


async def _seen(lab: Any, fake: FakeLlmServer, result: ResearchCycleResult) -> Seen:
    s = result.session_id
    actions = await rows(
        lab,
        "SELECT action_id, outcome, error, cost_usd, input_tokens, output_tokens"
        " FROM agent_actions WHERE session_id = %(s)s ORDER BY created_at, action_id",
        s=s,
    )
    strategies = await rows(lab, "SELECT 1 FROM strategies WHERE session_id = %(s)s", s=s)
    later = await rows(
        lab,
        "SELECT 1 FROM training_runs WHERE session_id = %(s)s"
        " UNION ALL SELECT 1 FROM backtests WHERE session_id = %(s)s",
        s=s,
    )
    (budget,) = await rows(lab, "SELECT * FROM agent_budget WHERE scope = 'research'")
    assert fake.calls() == fake.calls("designer")  # nothing but the designer was asked
    return Seen(
        requests=len(fake.calls("designer")),
        actions=actions,
        strategies=len(strategies),
        later_rows=len(later),
        spent=float(budget["spent_usd"]),
        reserved=float(budget["reserved_usd"]),
    )


def _assert_charged_exactly(seen: Seen) -> None:
    """Billed answers cost money, failed requests none, and the budget agrees."""
    for action in seen.actions:
        billed = action["output_tokens"] > 0
        assert (float(action["cost_usd"]) > 0) == billed, action
    assert seen.spent == pytest.approx(sum(float(a["cost_usd"]) for a in seen.actions))
    assert seen.reserved == pytest.approx(0.0, abs=1e-9)


async def _assert_failed_design(lab: Any, result: ResearchCycleResult, seen: Seen) -> str:
    """Outcome failed_design with nothing partial stored; returns the iteration's error."""
    assert result.outcome == "failed_design"
    assert (seen.strategies, seen.later_rows) == (0, 0)
    (session,) = await rows(
        lab,
        "SELECT outcome FROM agent_sessions WHERE session_id = %(s)s",
        s=result.session_id,
    )
    assert session["outcome"] == "failed_design"
    (iteration,) = result.iterations
    return iteration.error or ""


# --- transient faults: Temporal retries, the second attempt succeeds -------------------

TRANSIENT = {
    "429-retry-after": FakeReply(status=429, headers={"retry-after": "3"}),
    "529-overloaded": FakeReply(status=529),
    "500": FakeReply(status=500, raw="<html>internal error</html>"),
    "read-timeout": FakeReply(delay_seconds=3 * TIMEOUT_SECONDS),
    "connection-reset": FakeReply(reset=True),
}


@pytest.mark.parametrize(
    ("fault", "provider_id"),
    [
        ("429-retry-after", "anthropic"),
        ("429-retry-after", "openai"),
        ("529-overloaded", "anthropic"),
        ("500", "openai"),
        ("read-timeout", "anthropic"),
        ("read-timeout", "openai"),
        ("connection-reset", "anthropic"),
        ("connection-reset", "openai"),
    ],
)
async def test_a_transient_fault_succeeds_on_temporals_retry(
    lab: Any, fake_llm: FakeLlmServer, fault: str, provider_id: str
) -> None:
    fake_llm.script(TRANSIENT[fault], role="designer")
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert result.outcome == "success"
    assert seen.requests == 2  # the fault, then Temporal's second activity attempt
    first, second = seen.actions
    assert first["action_id"].endswith(":designer:1:1") and first["outcome"] == "error"
    assert second["action_id"].endswith(":designer:2:1") and second["outcome"] == "ok"
    assert "sk-" not in first["error"] and "\n" not in first["error"]
    assert seen.strategies == 1
    _assert_charged_exactly(seen)
    calls = fake_llm.calls()
    waited = calls[1].at - calls[0].at
    if fault == "429-retry-after":
        # Temporal waited for the server's retry-after (3 s), not its own 2 s backoff.
        assert waited >= 2.9, waited
    else:
        assert waited >= POLICY_FIRST_RETRY - 0.1, waited


# --- rejected requests: one request, no retry -------------------------------------------


@pytest.mark.parametrize("provider_id", BOTH)
@pytest.mark.parametrize("status", [400, 401, 413])
async def test_a_rejected_request_is_sent_once_and_fails_the_design(
    lab: Any, fake_llm: FakeLlmServer, status: int, provider_id: str
) -> None:
    fake_llm.script(FakeReply(status=status), role="designer")
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert seen.requests == 1
    error = await _assert_failed_design(lab, result, seen)
    assert str(status) in error and "sk-" not in error
    [action] = seen.actions
    assert action["outcome"] == "error" and float(action["cost_usd"]) == 0
    _assert_charged_exactly(seen)


# --- answers that stopped early: charged, labelled, no repair ----------------------------


@pytest.mark.parametrize("provider_id", BOTH)
@pytest.mark.parametrize(
    ("reply", "label", "message"),
    [
        (
            FakeReply(content='{"name": "cut', stop_reason="max_tokens", completion_tokens=2048),
            "truncated",
            "designer answer truncated at 2048 output tokens",
        ),
        (
            FakeReply(refusal="I can't design trading strategies.", completion_tokens=9),
            "refused",
            "designer refused to answer: I can't design trading strategies.",
        ),
    ],
    ids=["max-tokens", "refusal"],
)
async def test_a_stopped_answer_is_charged_and_fails_without_repair(
    lab: Any,
    fake_llm: FakeLlmServer,
    reply: FakeReply,
    label: str,
    message: str,
    provider_id: str,
) -> None:
    fake_llm.script(reply, role="designer")
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert seen.requests == 1
    error = await _assert_failed_design(lab, result, seen)
    assert error == f"StrategyDesignError: {message}"
    [action] = seen.actions
    assert (action["outcome"], action["error"]) == (label, message)
    assert action["output_tokens"] == reply.completion_tokens
    _assert_charged_exactly(seen)


# --- bad structured output: one repair, then failed_design -------------------------------

MEGABYTE = '{"name": "' + "x" * 1_000_000 + '"}'
BAD = {
    "malformed-json": FakeReply(content='{"name": "momentum", "entry": "close > sma('),
    "missing-fields": FakeReply(
        transform=lambda text: json.dumps(
            {k: v for k, v in json.loads(text).items() if k != "name"}
        )
    ),
    "empty-content": FakeReply(content=""),
    "1mb-body": FakeReply(content=MEGABYTE),
}
PROBLEM = {
    "malformed-json": "invalid JSON",
    "missing-fields": "name: Field required",
    "empty-content": "the output is empty",
    "1mb-body": "the limit is 1,000,000",
}


@pytest.mark.parametrize("provider_id", BOTH)
@pytest.mark.parametrize("fault", list(BAD))
async def test_a_bad_answer_gets_one_repair_then_fails_the_design(
    lab: Any, fake_llm: FakeLlmServer, fault: str, provider_id: str
) -> None:
    fake_llm.script(BAD[fault], BAD[fault], role="designer")  # the repair is bad too
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert seen.requests == 2  # the answer and one repair, no more
    repair = fake_llm.calls()[1].call
    assert repair is not None and "previous answer was rejected" in repair.prompt
    error = await _assert_failed_design(lab, result, seen)
    assert PROBLEM[fault] in error
    assert [a["outcome"] for a in seen.actions] == ["malformed", "malformed"]
    assert all(float(a["cost_usd"]) > 0 for a in seen.actions)  # both were billed
    _assert_charged_exactly(seen)


@pytest.mark.parametrize("provider_id", BOTH)
async def test_a_bad_answer_repaired_on_the_second_call_succeeds(
    lab: Any, fake_llm: FakeLlmServer, provider_id: str
) -> None:
    fake_llm.script(BAD["malformed-json"], role="designer")  # the repair is answered well
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert result.outcome == "success" and seen.requests == 2
    assert [a["outcome"] for a in seen.actions] == ["malformed", "ok"]
    assert seen.strategies == 1
    _assert_charged_exactly(seen)


# --- variants the parser accepts: honest successes, one request ---------------------------

ACCEPTED = {
    # parse_structured finds a JSON object inside a ```json fence: no repair needed.
    "json-in-code-fence": FakeReply(transform=lambda text: f"Here it is:\n```json\n{text}\n```"),
    # StrategySpec ignores fields it does not know.
    "extra-fields": FakeReply(
        transform=lambda text: json.dumps({**json.loads(text), "confidence": 0.9, "notes": "x"})
    ),
}


@pytest.mark.parametrize("provider_id", BOTH)
@pytest.mark.parametrize("variant", list(ACCEPTED))
async def test_an_answer_the_parser_accepts_needs_no_repair(
    lab: Any, fake_llm: FakeLlmServer, variant: str, provider_id: str
) -> None:
    fake_llm.script(ACCEPTED[variant], role="designer")
    result = await _design_once(lab)
    seen = await _seen(lab, fake_llm, result)

    assert result.outcome == "success" and seen.requests == 1
    assert [a["outcome"] for a in seen.actions] == ["ok"]
    assert seen.strategies == 1
    _assert_charged_exactly(seen)
